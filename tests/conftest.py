import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The suite starts dozens of Python processes (xdist workers, CLI subprocesses, notebook kernels)
# that import TensorFlow. The test command installs without compiling bytecode (`pip install
# --no-compile`, 2x faster), so let the first import of each module cache it, even where the
# environment says not to (PYTHONDONTWRITEBYTECODE): without a cache every process compiles
# TensorFlow again (`import electra_tf` 21.9 s instead of 12.3 s on 2 cores).
sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_DIR = os.path.join(REPO_ROOT, "configs")

# A model small enough that every test builds and runs it in well under a second.
TINY_ENCODER = dict(vocab_size=50, embedding_size=16, hidden_size=24, num_layers=2, num_heads=2,
                    intermediate_size=48, max_position_embeddings=32)
TINY_MODEL_CONFIG = dict(vocab_size=50, embedding_size=16, hidden_size=32, num_layers=2,
                         num_heads=2, intermediate_size=64, max_position_embeddings=32,
                         generator_hidden_fraction=0.5)
TINY_PRETRAINING_CONFIG = dict(max_seq_length=16, pad_id=0, cls_id=2, sep_id=3, mask_id=4)


def pytest_collection_modifyitems(items):
    """The longest tests run first, longest first (`@pytest.mark.slow(seconds=N)`, N measured
    on 2 workers): pytest-xdist deals them out to its workers in turn, and the many short tests
    fill the end, instead of one worker finishing a three-minute test while the other idles."""
    def expected_seconds(item):
        marker = item.get_closest_marker("slow")
        return marker.kwargs.get("seconds", 20) if marker else 0

    items.sort(key=expected_seconds, reverse=True)


@pytest.fixture
def token_batch():
    """A batch of 3 sequences of length 12 with padding, ids < 50, [CLS]=2 [SEP]=3 [PAD]=0."""
    rng = np.random.default_rng(0)
    token_ids = rng.integers(5, 50, size=(3, 12)).astype("int32")
    lengths = [12, 9, 5]
    padding_mask = np.zeros((3, 12), dtype="int32")
    for row, length in enumerate(lengths):
        token_ids[row, 0], token_ids[row, length - 1] = 2, 3
        token_ids[row, length:] = 0
        padding_mask[row, :length] = 1
    segment_ids = np.zeros_like(token_ids)
    segment_ids[0, 6:] = 1
    return {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask}


def built_once(tmp_path_factory, name, build):
    """`build(path)` run once per test session for all pytest-xdist workers: the first worker
    to get here builds into a folder they share, the others wait for it and reuse it (each
    worker would otherwise repeat a fixture that costs 15-30 s of CPU). Returns the path.
    Fixtures built this way must be treated as read-only by the tests."""
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # pytest-of-<user>/pytest-N/, shared by this run's workers
    path = root / f"shared-{name}"
    with FileLock(str(path) + ".lock"):
        if not (path / ".built").exists():
            if path.exists():  # a worker died mid-build
                import shutil
                shutil.rmtree(path)
            path.mkdir()
            build(path)
            (path / ".built").touch()
    return path


def _pretrain_tiny(root):
    from electra_tf.cli import main
    from electra_tf.data import SAMPLE_CORPUS
    from electra_tf.data.vocab import save_vocabulary
    from electra_tf.data.vocab_learning import learn_vocabulary

    with open(SAMPLE_CORPUS, encoding="utf-8") as f:
        texts = [next(f) for _ in range(80)]
    (root / "reviews.txt").write_text("".join(texts), encoding="utf-8")
    vocab = learn_vocabulary(texts, vocab_size=1200)
    save_vocabulary(vocab, str(root / "vocab.txt"))
    args = ["pretrain", "--config", "electra_tiny", "--corpus", str(root / "reviews.txt"),
            "--vocab", str(root / "vocab.txt"), "--out-dir", str(root / "pretrained"),
            "--steps", "30", "--batch-size", "8", "--save-every", "30", "--log-every", "10",
            "--quiet"]
    for item in ("model.num_layers=1", "model.hidden_size=64", "model.embedding_size=64",
                 "model.intermediate_size=128", "model.num_heads=1",
                 "pretraining.max_seq_length=64", f"model.vocab_size={len(vocab)}"):
        args += ["--set", item]
    assert main(args) == 0


@pytest.fixture(scope="session")
def tiny_pretrained_run(tmp_path_factory):
    """A 30-step pretraining run of a 1-layer model on 80 sample reviews (shared by the
    fine-tuning and export tests, and by all workers: read-only)."""
    return str(built_once(tmp_path_factory, "tiny_pretrained_run", _pretrain_tiny) / "pretrained")


def run_cli_until_then_sigkill(args, ready, timeout_s: float = 240):
    """Starts `python -m electra_tf.cli ARGS` and SIGKILLs it as soon as `ready()` is true (a
    checkpoint file appeared): the crash-and-resume tests' killed run."""
    import signal
    import subprocess
    import sys
    import time

    process = subprocess.Popen([sys.executable, "-m", "electra_tf.cli", *args],
                               env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout_s
    while not ready():
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.time() < deadline, f"not ready within {timeout_s:.0f} s"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
