"""Keeping N replicas equivalent to one device: random draws and gradient sums.

Under a `tf.distribute` strategy each replica runs the same `train_step` on its slice of the
global batch. Two things would make that differ from one device running the whole batch: every
replica would draw the *same* random numbers (its copy of the seed state is identical), and
Keras sums gradients over replicas only *after* clipping each replica's share. The helpers here
fix both; with one replica (no strategy) they are no-ops.
"""

from __future__ import annotations

import contextlib
import threading

import keras
import tensorflow as tf

from electra_tf.compat import BuildFromElementSpec, in_multi_worker_mode


def replica_uniform(shape, seed):
    """`keras.random.uniform(shape)` in `[0, 1)`, the same numbers with or without replicas.

    Under a `tf.distribute` strategy every replica holds an identical copy of the seed state, so a
    plain draw would give each replica the *same* masks and samples. Instead each replica draws
    the numbers of the global batch (`num_replicas * shape[0]` rows) and keeps the rows of its own
    slice of that batch: replica r of N gets rows `[r * b, (r + 1) * b)`, exactly the rows
    `MirroredStrategy` gives it. One step on N replicas then masks and samples as one device
    does on the whole batch. The overdraw costs N times a `[batch, seq_len]` draw: negligible.

    Args:
        shape: the per-replica shape, batch first (int tensor or list).
        seed: a `keras.random.SeedGenerator`.

    Returns:
        float32 tensor of `shape`.
    """
    replica = tf.distribute.get_replica_context()
    replicas = replica.num_replicas_in_sync if replica is not None else 1
    if replicas == 1:
        return keras.random.uniform(shape, seed=seed)
    shape = tf.convert_to_tensor(shape, tf.int32)
    rows = shape[0]
    values = keras.random.uniform(tf.concat([[rows * replicas], shape[1:]], axis=0), seed=seed)
    start = tf.cast(replica.replica_id_in_sync_group, tf.int32) * rows
    return values[start:start + rows]


_REPLICA_STATE = threading.local()


def sum_over_replicas(grads: list) -> list:
    """Sums per-replica gradients over all replicas (all-reduce); unchanged with one replica.

    Called in a replica context (inside `train_step`). `None` entries stay `None`.
    """
    replica = tf.distribute.get_replica_context()
    if replica is None or replica.num_replicas_in_sync == 1:
        return list(grads)
    present = [g for g in grads if g is not None]
    summed = iter(replica.all_reduce(tf.distribute.ReduceOp.SUM, present) if present else [])
    return [None if g is None else next(summed) for g in grads]


def gradients_are_summed() -> bool:
    """True while tracing inside `gradients_already_summed()`."""
    return getattr(_REPLICA_STATE, "summed", False)


@contextlib.contextmanager
def gradients_already_summed():
    """Tells `ElectraAdamW.apply` (traced inside this block) that the gradients it receives were
    summed over replicas by the caller.

    A custom `train_step` sums before calling the optimizer when a `LossScaleOptimizer` wraps it:
    the loss-scale optimizer decides per replica whether the gradients are finite, and replicas
    that decided differently would wait forever on each other's all-reduce.
    """
    previous = gradients_are_summed()
    _REPLICA_STATE.summed = True
    try:
        yield
    finally:
        _REPLICA_STATE.summed = previous


class DistributedFitFixes(BuildFromElementSpec):
    """Mixin for our `keras.Model`s: two work-arounds that make `fit` run under every strategy
    (keras 3.15, `backend/tensorflow/trainer.py`).

    1. Symbolic build from the dataset's `element_spec` instead of a batch pulled off the
       training iterator (`electra_tf.compat.BuildFromElementSpec` says why).
    2. Reducing the step's logs: under `MultiWorkerMirroredStrategy` Keras reduces each
       replica's logs with `strategy.reduce("MEAN", value, axis=0)`, which fails on scalars
       ("Invalid reduction dimension 0 for input with 0 dimensions"). Every replica's metric
       results are already global (metric variables are aggregated over replicas), so the
       steps return them as shape-[1] tensors there, whose mean over replicas is the value.
    """

    def train_step(self, data):
        return self.logs_for_distribution(super().train_step(data))

    def test_step(self, data):
        return self.logs_for_distribution(super().test_step(data))

    def logs_for_distribution(self, logs: dict) -> dict:
        """`logs` unchanged, or each scalar as shape [1] under a multi-worker strategy."""
        if not in_multi_worker_mode(self.distribute_strategy):
            return logs
        return {name: tf.reshape(value, [1]) if value.shape.rank == 0 else value
                for name, value in logs.items()}
