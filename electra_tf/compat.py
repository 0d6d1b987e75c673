"""Every use of a private Keras or TensorFlow hook, in one place.

electra_tf overrides or calls a few methods that Keras and TensorFlow do not publish (their
names start with `_`). They can change in any release, and an override of a method that was
renamed is silently never called: training would still run, only differently. So each one is
listed in `PRIVATE_HOOKS`, and `check_private_hooks()` (run by tests/test_compat.py) fails with
the Keras version and the name of the missing hook. setup.cfg bounds Keras to the versions
checked here (`SUPPORTED_KERAS`).

Nothing else in the package touches a `_`-prefixed attribute of a Keras or TensorFlow object.
"""

from __future__ import annotations

import inspect

SUPPORTED_KERAS = ">=3.12,<3.16"  # the bound in setup.cfg


class GradientsSummedBeforeApply:
    """Optimizer mixin: Keras' TensorFlow optimizer sums the gradients over replicas inside
    `apply` (`_all_reduce_sum_gradients`, after clipping each replica's share). A subclass that
    sums them itself, before clipping, makes that hook pass them through."""

    def _all_reduce_sum_gradients(self, grads_and_vars):
        return list(grads_and_vars)


class PerVariableWeightDecay:
    """Optimizer mixin for a subclass that applies the decoupled weight decay itself, per
    variable in `update_step`: turns off Keras' own pass over all variables
    (`_apply_weight_decay`) and exposes the two per-variable look-ups that needs."""

    def _apply_weight_decay(self, variables):
        pass

    def variable_index(self, variable) -> int:
        """The variable's index in the optimizer's slot lists (as Adam finds its moments)."""
        return self._get_variable_index(variable)

    def decays(self, variable) -> bool:
        """False for the variables `exclude_from_weight_decay` named."""
        return self._use_weight_decay(variable)


class AdamSlots:
    """Optimizer mixin for a `keras.optimizers.Adam` subclass that updates a variable with its own
    kernel: the variable's first and second moment slots, as Adam's `update_step` finds them."""

    def adam_slots(self, variable):
        """`(momentum, velocity)`: the Keras variables holding Adam's moments of `variable`."""
        index = self._get_variable_index(variable)
        return self._momentums[index], self._velocities[index]


class BuildFromElementSpec:
    """`keras.Model` mixin: builds a model from its dataset's `element_spec` before `fit`.

    Keras (`backend/tensorflow/trainer.py`, `_maybe_symbolic_build`) builds a model made under a
    strategy from a batch it pulls off the training iterator and averages over replicas with
    `strategy.reduce`. Under `MultiWorkerMirroredStrategy` that fails on dict inputs ("Attempt
    to convert a value ({'token_ids': PerReplica ...})"), and everywhere it drops the first
    batch from training. Only shapes and dtypes are needed, so this builds from the dataset's
    `element_spec` and consumes nothing.
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        adapter = getattr(iterator, "data_adapter", None)
        if data_batch is None and adapter is not None:
            try:
                data_batch = adapter.get_tf_dataset().element_spec
            except (AttributeError, NotImplementedError, TypeError):
                pass  # not a tf.data-backed input: Keras' own way
            else:
                iterator = None
        if self._distribute_strategy is None:
            # Keras defers building to the first traced step when no strategy is set. Variables
            # created while tracing make `tf.function` trace the whole step a second time:
            # measured 27 s -> 13 s for a tiny pretrainer's first step.
            self._symbolic_build(iterator=iterator, data_batch=data_batch)
            return None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)


def in_multi_worker_mode(strategy) -> bool:
    """True for a `MultiWorkerMirroredStrategy` whose cluster has more than this one worker."""
    import tensorflow as tf

    return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode())


def op_determinism_enabled() -> bool:
    """Whether `tf.config.experimental.enable_op_determinism()` is in force (no public getter)."""
    from tensorflow.python.framework import config as tf_config

    return bool(tf_config.is_op_determinism_enabled())


# ------------------------------------------------------------------------------ the check


def private_hooks() -> list[tuple[str, object, str, tuple[str, ...]]]:
    """`[(where, owner, name, parameters)]`: every private hook used above, on the class or
    module that must have it, with the parameters we pass it by name."""
    import keras
    from tensorflow.python.distribute.collective_all_reduce_strategy import (
        CollectiveAllReduceExtended,
    )
    from tensorflow.python.framework import config as tf_config

    optimizer, model = keras.optimizers.AdamW, keras.Model
    built_adam = keras.optimizers.AdamW()
    built_adam.build([])  # the slot lists exist only once built
    return [
        ("keras.optimizers.AdamW", optimizer, "_all_reduce_sum_gradients", ("grads_and_vars",)),
        ("keras.optimizers.AdamW", optimizer, "_apply_weight_decay", ("variables",)),
        ("keras.optimizers.AdamW", optimizer, "_get_variable_index", ("variable",)),
        ("keras.optimizers.AdamW", optimizer, "_use_weight_decay", ("variable",)),
        ("a built keras.optimizers.AdamW", built_adam, "_momentums", ()),
        ("a built keras.optimizers.AdamW", built_adam, "_velocities", ()),
        ("keras.Model", model, "_maybe_symbolic_build", ("iterator", "data_batch")),
        ("keras.Model", model, "_symbolic_build", ("iterator", "data_batch")),
        ("a keras.Model instance", keras.Sequential(), "_distribute_strategy", ()),
        ("MultiWorkerMirroredStrategy.extended", CollectiveAllReduceExtended,
         "_in_multi_worker_mode", ()),
        ("tensorflow.python.framework.config", tf_config, "is_op_determinism_enabled", ()),
    ]


def missing_hooks(hooks=None) -> list[str]:
    """Descriptions of the hooks in `hooks` (default: `private_hooks()`) that are absent or no
    longer take the parameters we pass; empty when all are there."""
    missing = []
    for where, owner, name, parameters in private_hooks() if hooks is None else hooks:
        if not hasattr(owner, name):
            missing.append(f"{where}.{name}")
            continue
        if parameters:
            accepted = inspect.signature(getattr(owner, name)).parameters
            absent = [p for p in parameters if p not in accepted]
            if absent:
                missing.append(f"{where}.{name} (no parameter {', '.join(absent)})")
    return missing


def check_private_hooks(hooks=None) -> None:
    """Raises `RuntimeError` naming the Keras version and each missing hook, if any."""
    missing = missing_hooks(hooks)
    if missing:
        import keras

        raise RuntimeError(
            f"Keras {keras.__version__} lacks {'; '.join(missing)}, which electra_tf relies on "
            f"(electra_tf/compat.py says what for). electra_tf is tested with keras"
            f"{SUPPORTED_KERAS}: install a version in that range, or adapt electra_tf/compat.py.")
