"""Strategies, precision and compilation settings (issue 6), as far as a 2-core CPU allows.

The Mirrored and multi-worker cases run in fresh processes (tests/distributed_cases.py): the
logical-device layout and a cluster can only be set up before TensorFlow runs its first op.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from conftest import REPO_ROOT, TINY_MODEL_CONFIG, TINY_PRETRAINING_CONFIG
from electra_tf import ElectraConfig, ElectraPretrainer, FinetuneConfig, create_optimizer
from electra_tf.data import synthetic_dataset
from electra_tf.distribute import (
    compile_options,
    resolve_strategy,
    set_precision,
    with_precision,
)
from electra_tf.errors import ConfigError

CASES = os.path.join(REPO_ROOT, "tests", "distributed_cases.py")


def _run_case(*args, timeout=300):
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    return subprocess.run([sys.executable, CASES, *map(str, args)], env=env, timeout=timeout,
                          capture_output=True, text=True)


# ------------------------------------------------------------------------------ configuration


def test_strategy_names_and_settings_are_validated(monkeypatch):
    with pytest.raises(ConfigError, match="Unknown strategy 'gpu'"):
        resolve_strategy("gpu")
    with pytest.raises(ConfigError, match="only applies to --strategy tpu"):
        resolve_strategy("mirrored", tpu="my-tpu")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="needs the cluster in the TF_CONFIG"):
        resolve_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {}}')
    with pytest.raises(ConfigError, match="TF_CONFIG is not a valid cluster description"):
        resolve_strategy("multi_worker")
    with pytest.raises(ConfigError, match="Unknown precision"):
        set_precision("float16")
    with pytest.raises(ConfigError, match="steps-per-execution"):
        compile_options(steps_per_execution=0)
    assert compile_options(True, 4) == {"jit_compile": True, "steps_per_execution": 4}
    # This machine has no accelerator: auto is the CPU, one replica.
    strategy = resolve_strategy("auto")
    assert strategy.num_replicas_in_sync == 1
    assert "CPU" in strategy.extended.worker_devices[0]


@pytest.mark.parametrize("tpu", [None, "no-such-tpu"])
def test_tpu_path_without_a_tpu_gives_a_clear_error(tpu):
    # The TPU branch really runs: TPUClusterResolver, connect, initialize_tpu_system.
    with pytest.raises(ConfigError, match="--strategy tpu: no TPU could be reached") as error:
        resolve_strategy("tpu", tpu=tpu)
    assert "--strategy auto" in str(error.value)
    with pytest.raises(ConfigError, match="needs a port"):
        resolve_strategy("tpu", tpu="grpc://10.0.0.1")


def test_with_precision_keeps_weights_and_switches_compute_dtype(token_batch):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        pretrainer = ElectraPretrainer(TINY_MODEL_CONFIG, TINY_PRETRAINING_CONFIG, seed=0)
        pretrainer.build({"token_ids": (None, 12)})
    finally:
        keras.config.set_dtype_policy(previous)
    bf16 = pretrainer.discriminator
    fp32 = with_precision(bf16, "float32")
    assert fp32.encoder.transformer_layers[0].compute_dtype == "float32"
    assert bf16.encoder.transformer_layers[0].compute_dtype == "bfloat16"
    for a, b in zip(bf16.get_weights(), fp32.get_weights()):
        np.testing.assert_array_equal(a, b)
    inputs = {k: v for k, v in token_batch.items()}
    logits16, logits32 = np.asarray(bf16(inputs)), np.asarray(fp32(inputs))
    # Same weights, different arithmetic: bfloat16 keeps ~3 significant digits.
    assert np.max(np.abs(logits16 - logits32)) < 0.05
    assert with_precision(fp32, "float32") is fp32


# ------------------------------------------------------------------------------ strategies


@pytest.mark.slow(seconds=55)
def test_mirrored_step_equals_one_device_step(tmp_path):
    """(a) One step on a global batch of 8, over 2 logical CPUs vs one device.

    Tolerance 1e-6 on every updated weight (the step itself moves weights by up to 1e-3). It
    holds only because replicas draw the global batch's masks and samples, normalise losses by
    the global token count, and clip the summed gradient: with Keras' per-replica clipping the
    difference was 1.6e-3; with per-replica loss means, 1.4e-3."""
    result_path = tmp_path / "mirrored.json"
    run = _run_case("mirrored", result_path)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(result_path.read_text())
    assert result["replicas"] == 2
    assert result["initial_max_abs_diff"] == 0.0
    assert result["grad_norm_before_clipping"] > 2.0  # clipping at 1.0 is active
    assert result["max_abs_update"] > 5e-4
    assert result["max_abs_diff"] < 1e-6
    assert result["loss_mirrored"] == pytest.approx(result["loss_one_device"], rel=1e-6)
    assert result["disc_loss_mirrored"] == pytest.approx(result["disc_loss_one_device"],
                                                         rel=1e-6)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _start_workers(root, out_dir, steps, stall_at=None):
    ports = ",".join(map(str, _free_ports(2)))
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    workers = []
    for index in range(2):
        args = [sys.executable, CASES, "worker", str(index), ports, str(out_dir),
                str(root / "reviews.txt"), str(root / "vocab.txt"), str(steps)]
        if stall_at is not None:
            args.append(str(stall_at))
        log = open(root / f"worker-{index}-{'stall' if stall_at else 'run'}.log", "w")
        workers.append(subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True))
    return workers


def _wait(workers, root, timeout=240):
    deadline = time.time() + timeout
    for worker in workers:
        worker.wait(timeout=max(1, deadline - time.time()))
    logs = "".join((root / name).read_text()[-2000:] for name in sorted(os.listdir(root))
                   if name.endswith(".log"))
    assert all(worker.returncode == 0 for worker in workers), logs


@pytest.mark.slow(seconds=155)
def test_multi_worker_pretraining_survives_killing_both_workers(tmp_path):
    """(b) Two worker processes on 127.0.0.1 (TF_CONFIG) pretrain 12 steps; both are killed with
    SIGKILL after the step-4 checkpoint, restarted, and finish. Both end with bit-identical
    weights, equal to an uninterrupted two-worker run's."""
    from electra_tf.data import SAMPLE_CORPUS
    from electra_tf.data.vocab import save_vocabulary
    from electra_tf.data.vocab_learning import learn_vocabulary

    with open(SAMPLE_CORPUS, encoding="utf-8") as f:
        texts = [next(f) for _ in range(80)]
    (tmp_path / "reviews.txt").write_text("".join(texts), encoding="utf-8")
    save_vocabulary(learn_vocabulary(texts, vocab_size=600), str(tmp_path / "vocab.txt"))

    # The uninterrupted reference run.
    reference = tmp_path / "reference" / "run"
    reference.parent.mkdir()
    _wait(_start_workers(tmp_path, reference, 12), tmp_path)
    expected = json.loads((reference.parent / "worker-0.json").read_text())

    # Killed after the chief saved step 4 (it then stalls, so the kill lands at a known step).
    resumed = tmp_path / "resumed" / "run"
    resumed.parent.mkdir()
    workers = _start_workers(tmp_path, resumed, 12, stall_at=4)
    deadline = time.time() + 240
    while not (resumed / "checkpoints" / "ckpt-4.index").exists():
        assert time.time() < deadline and all(w.poll() is None for w in workers), \
            (tmp_path / "worker-0-stall.log").read_text()[-3000:]
        time.sleep(0.5)
    time.sleep(1.0)  # let the chief finish writing the checkpoint's index file
    for worker in workers:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    assert not (resumed / "metrics.json").exists()  # the run really was cut short

    _wait(_start_workers(tmp_path, resumed, 12), tmp_path)
    chief = json.loads((resumed.parent / "worker-0.json").read_text())
    other = json.loads((resumed.parent / "worker-1.json").read_text())
    assert chief["distribution"]["strategy"] == "MultiWorkerMirroredStrategy"
    assert chief["distribution"]["replicas"] == 2
    assert chief["resumed_from_step"] == 4 and chief["steps"] == 12
    assert chief["weights_sha256"] == other["weights_sha256"]
    assert chief["weights_sha256"] == expected["weights_sha256"]
    # Only the chief wrote into the run directory.
    assert (resumed / "discriminator.keras").exists()
    assert sorted(os.listdir(resumed / "checkpoints"))[-1].startswith("ckpt-")


# ------------------------------------------------------------------------------ precision


@pytest.mark.slow(seconds=80)
def test_bfloat16_training_reaches_the_float32_losses():
    """bf16 vs fp32 pretraining on the synthetic corpus, same seeds, 300 steps.

    Tolerance: the last interval's mlm_loss within 0.4 (10%) and disc_loss within 0.04 of
    float32's, and both runs learn. The two runs do not follow the same path step by step
    (bfloat16 logits change which tokens get sampled), so the tolerance is the size of
    run-to-run variation. Measured: float32 mlm 4.77 -> 3.90, disc 0.422 -> 0.353;
    mixed_bfloat16 mlm 4.78 -> 3.62, disc 0.423 -> 0.377."""
    steps = 300
    config = ElectraConfig.from_dict({
        "model": dict(vocab_size=128, embedding_size=64, hidden_size=64, num_layers=2,
                      num_heads=1, intermediate_size=256, generator_hidden_fraction=0.25),
        "pretraining": dict(TINY_PRETRAINING_CONFIG, max_seq_length=32),
        "optimizer": dict(learning_rate=2e-3, warmup_steps=20, train_steps=steps),
    })
    histories = {}
    for precision in ("float32", "mixed_bfloat16"):
        previous = keras.config.dtype_policy()
        set_precision(precision)
        try:
            keras.utils.set_random_seed(3)
            pretrainer = ElectraPretrainer(config.model, config.pretraining, seed=0)
            pretrainer.compile(optimizer=create_optimizer(config.optimizer))
            histories[precision] = pretrainer.fit(
                synthetic_dataset(2000, 32, 128, 32, seed=0), steps_per_epoch=steps // 3,
                epochs=3, verbose=0).history
        finally:
            keras.config.set_dtype_policy(previous)
        if precision != "float32":
            layer = pretrainer.discriminator.encoder.transformer_layers[0]
            assert layer.compute_dtype == "bfloat16"
    fp32, bf16 = histories["float32"], histories["mixed_bfloat16"]
    for history in (fp32, bf16):  # both learn
        assert history["mlm_loss"][-1] < history["mlm_loss"][0] - 0.5
        assert history["disc_loss"][-1] < history["disc_loss"][0] - 0.02
    assert abs(bf16["mlm_loss"][-1] - fp32["mlm_loss"][-1]) < 0.4
    assert abs(bf16["disc_loss"][-1] - fp32["disc_loss"][-1]) < 0.04


# ------------------------------------------------------------------------------ vocabulary


def test_a_worker_takes_the_chiefs_learned_vocabulary(tmp_path):
    """A non-chief worker of a run without --vocab waits for the vocabulary the chief learns
    and saves, rather than learning one of its own (which can differ: tests/test_data.py)."""
    import threading

    from electra_tf.data.vocab import SPECIAL_TOKENS, save_vocabulary, wait_for_vocabulary
    from electra_tf.errors import DataError
    from electra_tf.runs.layouts import FinetunePaths, PretrainPaths
    from electra_tf.training.finetune_setup import run_vocabulary as finetune_vocabulary
    from electra_tf.training.pretrain_setup import run_vocabulary as pretrain_vocabulary

    chiefs = [*SPECIAL_TOKENS, "the", "movie", "##s"]
    for i, paths in enumerate([PretrainPaths(str(tmp_path / "p")),
                               FinetunePaths(str(tmp_path / "f"))]):
        threading.Timer(0.5, save_vocabulary, (chiefs, paths.vocab)).start()
        if i == 0:  # no corpus: a worker that tried to learn would fail
            run = {"lower_case": True}
            vocabulary = pretrain_vocabulary(paths, None, None, run, ElectraConfig(),
                                             write=False)
            assert run["vocab_learned"]
        else:
            model_config = ElectraConfig.from_dict({"model": TINY_MODEL_CONFIG, "pretraining":
                                                    TINY_PRETRAINING_CONFIG}).model
            vocabulary, _, model_config = finetune_vocabulary(
                paths, False, None, None, FinetuneConfig().preprocessing, None, model_config,
                chief=False)
            assert model_config.vocab_size == len(chiefs)
        assert vocabulary == chiefs
    with pytest.raises(DataError, match="No vocabulary appeared at .* within 0 s"):
        wait_for_vocabulary(str(tmp_path / "never" / "vocab.txt"), timeout_s=0.2, poll_s=0.05)
