import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

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
