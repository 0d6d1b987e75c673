"""A synthetic corpus with a learnable pattern, for tests, demos and smoke runs.

The ordinary tokens are split into `num_topics` equal ranges. Each sequence picks one topic and is
`[CLS] a, a+d, a+2d, ... [SEP] [PAD]...`, an arithmetic progression inside the topic's range
(modulo its size) with a random start `a`, step `d` in {1, ..., max_step} and length. A masked token is
predictable from its neighbours, and a replacement drawn by a still-untrained generator usually
comes from another topic, which a discriminator learns to spot within a few hundred steps (a
replacement that fits the topic but breaks the progression takes longer: the task hardens as the
generator improves, as in real ELECTRA training). Both losses fall clearly when the objective is
right and stay flat when it is broken.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def synthetic_token_arrays(num_sequences, seq_len, vocab_size, *, num_topics=8, max_step=1,
                           first_normal_id=5,
                           pad_id=0, cls_id=2, sep_id=3, min_len=None, seed=0):
    """Returns numpy arrays `token_ids`, `segment_ids`, `padding_mask`, each `[num, seq_len]`.

    Token ids of the progression lie in `[first_normal_id, vocab_size)`, so the specials below
    `first_normal_id` ([PAD] [UNK] [CLS] [SEP] [MASK] = 0..4 by default) never occur inside it.
    """
    topic_size = (vocab_size - first_normal_id) // num_topics
    if topic_size < 4:
        raise ValueError(f"vocab_size={vocab_size} leaves fewer than 4 ordinary tokens per topic; "
                         "raise vocab_size or lower num_topics.")
    rng = np.random.default_rng(seed)
    min_len = min_len or max(3, seq_len // 2)
    token_ids = np.full((num_sequences, seq_len), pad_id, dtype=np.int32)
    for row in range(num_sequences):
        length = int(rng.integers(min_len, seq_len + 1))  # including [CLS] and [SEP]
        topic, start = int(rng.integers(num_topics)), int(rng.integers(topic_size))
        step = int(rng.integers(1, max_step + 1))
        body = (first_normal_id + topic * topic_size
                + (start + step * np.arange(length - 2)) % topic_size)
        token_ids[row, :length] = np.concatenate([[cls_id], body, [sep_id]])
    padding_mask = (token_ids != pad_id).astype(np.int32)
    return {"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids),
            "padding_mask": padding_mask}


def synthetic_dataset(num_sequences, seq_len, vocab_size, batch_size, *, seed=0, repeat=True,
                      **kwargs) -> tf.data.Dataset:
    """A `tf.data.Dataset` of batched input dicts (see `synthetic_token_arrays`), ready for `fit`."""
    arrays = synthetic_token_arrays(num_sequences, seq_len, vocab_size, seed=seed, **kwargs)
    dataset = tf.data.Dataset.from_tensor_slices(arrays)
    if repeat:
        dataset = dataset.repeat().shuffle(min(num_sequences, 10000), seed=seed)
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
