"""Subprocess entry points of tests/test_distribute.py.

Each case runs in a fresh process because the device layout (two logical CPUs) and a
multi-worker cluster can only be configured before TensorFlow runs its first op.

    python distributed_cases.py mirrored RESULT.json
    python distributed_cases.py worker INDEX PORT0,PORT1 OUT_DIR CORPUS VOCAB STEPS [STALL_AT]
"""

import json
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def mirrored(result_path):
    """One `fit` step on a global batch of 8: `MirroredStrategy` over 2 logical CPUs vs one
    device, same seeds, dropout off (every replica draws the same dropout masks; masking and
    sampling are made replica-independent by `replica_uniform`)."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import numpy as np

    from conftest import TINY_MODEL_CONFIG, TINY_PRETRAINING_CONFIG
    from electra_tf import ElectraPretrainer, OptimizerConfig, create_optimizer
    from electra_tf.distribute import resolve_strategy

    rng = np.random.default_rng(0)
    token_ids = rng.integers(5, 50, size=(8, 16)).astype("int32")
    token_ids[:, 0], token_ids[:, -1] = 2, 3
    token_ids[5, 10:] = 0  # replicas then hold different numbers of real tokens
    padding = (token_ids != 0).astype("int32")
    batch = {"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids),
             "padding_mask": padding}
    model_config = dict(TINY_MODEL_CONFIG, dropout=0.0, attention_dropout=0.0)

    def one_step(strategy):
        with strategy.scope():
            keras.utils.set_random_seed(1)
            model = ElectraPretrainer(model_config, TINY_PRETRAINING_CONFIG, seed=3)
            model.compile(optimizer=create_optimizer(OptimizerConfig(
                learning_rate=1e-3, warmup_steps=0, train_steps=100)))
            model.build({"token_ids": (None, 16)})
            model.optimizer.build(model.trainable_variables)
        initial = [np.asarray(v) for v in model.trainable_variables]
        # The gradient's global norm before clipping (clipping at 1.0 must be active for the
        # comparison to cover where Keras would clip per replica).
        with tf.GradientTape() as tape:
            loss = model(batch, training=True)["loss"]
        grad_norm = float(tf.linalg.global_norm(tape.gradient(loss, model.trainable_variables)))
        model.seed_generator.state.assign(np.array([3, 0]))  # undo the draws of that probe
        history = model.fit(tf.data.Dataset.from_tensors(batch).repeat(), steps_per_epoch=1,
                            epochs=1, verbose=0).history
        updated = [np.asarray(v) for v in model.trainable_variables]
        return initial, updated, history, grad_norm, strategy.num_replicas_in_sync

    init_a, one, hist_one, norm, _ = one_step(resolve_strategy("one_device"))
    init_b, two, hist_two, _, replicas = one_step(resolve_strategy("mirrored"))
    result = {
        "replicas": replicas,
        "grad_norm_before_clipping": norm,
        "initial_max_abs_diff": max(float(np.max(np.abs(a - b))) for a, b in zip(init_a, init_b)),
        "max_abs_update": max(float(np.max(np.abs(u - i))) for u, i in zip(one, init_a)),
        "max_abs_diff": max(float(np.max(np.abs(a - b))) for a, b in zip(one, two)),
        "loss_one_device": hist_one["loss"][0], "loss_mirrored": hist_two["loss"][0],
        "disc_loss_one_device": hist_one["disc_loss"][0],
        "disc_loss_mirrored": hist_two["disc_loss"][0],
    }
    with open(result_path, "w") as f:
        json.dump(result, f)


def worker(index, ports, out_dir, corpus, vocab, steps, stall_at=None):
    """One worker of a two-worker `MultiWorkerMirroredStrategy` pretraining run on 127.0.0.1.

    With `stall_at`, the chief stops making progress right after saving the checkpoint of that
    step (so the test can `kill -9` both workers at a known point instead of racing them)."""
    index, steps = int(index), int(steps)
    os.environ["TF_CONFIG"] = json.dumps({
        "cluster": {"worker": [f"127.0.0.1:{port}" for port in ports.split(",")]},
        "task": {"type": "worker", "index": index}})
    import importlib

    from electra_tf import load_config

    # The module (electra_tf.training re-exports the function under the same name).
    pretrain_module = importlib.import_module("electra_tf.training.pretrain")

    if stall_at is not None and index == 0:
        class StallAfterCheckpoint(pretrain_module.PeriodicCheckpoint):
            def on_epoch_end(self, epoch, logs=None):
                super().on_epoch_end(epoch, logs)
                if self.checkpointer.step >= int(stall_at):
                    print("STALLED", flush=True)
                    time.sleep(600)

        pretrain_module.PeriodicCheckpoint = StallAfterCheckpoint

    from conftest import CONFIG_DIR

    config = load_config(os.path.join(CONFIG_DIR, "electra_tiny.yaml"), [
        "model.num_layers=1", "model.hidden_size=32", "model.embedding_size=32",
        "model.intermediate_size=64", "model.num_heads=1", "pretraining.max_seq_length=32",
        f"model.vocab_size={sum(1 for _ in open(vocab, encoding='utf-8'))}"])
    metrics = pretrain_module.pretrain(
        config, corpus, out_dir, vocab=vocab, steps=steps, batch_size=8, save_every=2,
        log_every=2, seed=0, strategy="multi_worker", verbose=0)
    with open(os.path.join(os.path.dirname(out_dir), f"worker-{index}.json"), "w") as f:
        json.dump(metrics, f)


if __name__ == "__main__":
    case, *arguments = sys.argv[1:]
    {"mirrored": mirrored, "worker": worker}[case](*arguments)
