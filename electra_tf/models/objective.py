"""The small in-graph helpers of the ELECTRA objective: mask, gather, scatter, sample.

Each mirrors one helper of the authors' `pretrain/pretrain_helpers.py`; they run inside the
`tf.function` of `train_step`, so masking is dynamic (new positions every step).
"""

from __future__ import annotations

import tensorflow as tf

from electra_tf.distribute.replicas import replica_uniform


def mask_tokens(token_ids, padding_mask, *, num_predictions, mask_prob, mask_token_rate, mask_id,
                special_ids, seed):
    """Chooses positions to predict and replaces most of them with [MASK] (the official rule).

    Per sequence, `max(1, min(num_predictions, round(mask_prob * n_real)))` positions are drawn
    uniformly *without replacement* among the candidates (real tokens other than `special_ids`;
    the authors sample with replacement, which occasionally picks a position twice -- without
    replacement avoids those duplicates and is otherwise the same distribution). A sequence with
    fewer candidates gets all of them. Each chosen position becomes [MASK] with probability
    `mask_token_rate` (0.85) and keeps its token otherwise; there are no random-token replacements.

    Args:
        token_ids: int32 `[batch, seq_len]`.
        padding_mask: bool/int `[batch, seq_len]`, 1 for real tokens.
        num_predictions: static P, at most seq_len.
        mask_prob: fraction of real tokens to predict (0.15).
        mask_token_rate: fraction of predicted positions shown as [MASK] (0.85).
        mask_id: id of [MASK].
        special_ids: ids never chosen ([CLS], [SEP], [MASK]; padding is excluded by the mask).
        seed: a `keras.random.SeedGenerator` (its state is saved with the model, so resumed
            training continues the same random stream).

    Returns:
        dict with
          `masked_token_ids` int32 `[batch, seq_len]`: the generator's input;
          `masked_positions` int32 `[batch, P]`: chosen positions (0 where unused);
          `masked_lm_ids` int32 `[batch, P]`: original tokens at those positions;
          `masked_lm_weights` float32 `[batch, P]`: 1 for used slots, 0 for padding slots.
    """
    token_ids = tf.cast(token_ids, tf.int32)
    padding_mask = tf.cast(padding_mask, tf.bool)
    is_candidate = padding_mask
    for special in special_ids:
        is_candidate &= tf.not_equal(token_ids, special)

    num_real = tf.reduce_sum(tf.cast(padding_mask, tf.float32), axis=1)
    num_to_predict = tf.cast(tf.round(num_real * mask_prob), tf.int32)
    num_to_predict = tf.maximum(1, tf.minimum(num_predictions, num_to_predict))

    # Uniform sampling without replacement = the top-P of i.i.d. uniform scores; non-candidates
    # score -1 so they are only picked when a sequence has fewer than P candidates, and then
    # they are dropped by `is_used` below.
    scores = replica_uniform(tf.shape(token_ids), seed)
    scores = tf.where(is_candidate, scores, -1.0)
    top_scores, positions = tf.math.top_k(scores, k=num_predictions)
    slot = tf.range(num_predictions)[None, :]
    is_used = (slot < num_to_predict[:, None]) & (top_scores >= 0.0)
    positions = tf.where(is_used, positions, 0)

    shown_as_mask = is_used & (
        replica_uniform(tf.shape(positions), seed) < mask_token_rate)
    masked_token_ids = scatter_positions(
        token_ids, positions, tf.fill(tf.shape(positions), mask_id), shown_as_mask)
    masked_lm_ids = tf.where(is_used, gather_positions(token_ids, positions), 0)
    return {
        "masked_token_ids": masked_token_ids,
        "masked_positions": positions,
        "masked_lm_ids": masked_lm_ids,
        "masked_lm_weights": tf.cast(is_used, tf.float32),
    }


def gather_positions(sequence, positions):
    """Picks `sequence[b, positions[b, p]]`.

    Args:
        sequence: `[batch, seq_len]` or `[batch, seq_len, dim]`.
        positions: int32 `[batch, P]`.

    Returns:
        `[batch, P]` or `[batch, P, dim]`.
    """
    return tf.gather(sequence, positions, batch_dims=1)


def scatter_positions(sequence, positions, values, update_mask):
    """Writes `values[b, p]` into `sequence[b, positions[b, p]]` wherever `update_mask[b, p]`.

    Args:
        sequence: int32 `[batch, seq_len]`.
        positions: int32 `[batch, P]`, distinct within a row where `update_mask` is set.
        values: int32 `[batch, P]`.
        update_mask: bool `[batch, P]`.

    Returns:
        int32 `[batch, seq_len]`.
    """
    batch = tf.shape(sequence)[0]
    batch_index = tf.broadcast_to(tf.range(batch)[:, None], tf.shape(positions))
    indices = tf.stack([batch_index, positions], axis=-1)
    indices = tf.boolean_mask(indices, update_mask)
    updates = tf.boolean_mask(tf.cast(values, sequence.dtype), update_mask)
    return tf.tensor_scatter_nd_update(sequence, indices, updates)


# Vocabulary block of the two-level inverse-CDF search in `sample_tokens`.
_SAMPLING_BLOCK = 128


def sample_tokens(logits, temperature, seed):
    """Draws one token per position from `softmax(logits / temperature)`, in float32.

    Inverse-CDF sampling: one uniform number per position, located in the cumulative
    (unnormalised) probabilities. It draws from exactly the distribution of the authors' Gumbel-max
    trick, but needs `[batch, P]` random numbers instead of `[batch, P, vocab]` (20 instead of
    610,000 per sequence for ELECTRA-Small), which matters twice: it is cheaper, and under a
    `tf.distribute` strategy each replica can draw the *global* batch's numbers and keep its own
    slice (`replica_uniform`), so N replicas sample what one device would.

    The search is two-level: the vocabulary is cut into blocks of 128, the target is located
    among the blocks' cumulative sums, then inside its one block. It is the same draw as one
    cumulative sum over the whole vocabulary, but TensorFlow's CPU `Cumsum` is slow (124 vs 29 ms
    per ELECTRA-Small step; docs/devices_and_precision.md), and summing in short runs is closer
    to exact in float32.

    Args:
        logits: `[batch, P, vocab]` (any float dtype; computed in float32).
        temperature: softmax temperature (1.0 in ELECTRA).
        seed: a `keras.random.SeedGenerator`.

    Returns:
        int32 `[batch, P]`, with no gradient (ELECTRA does not back-propagate through sampling).
    """
    logits = tf.stop_gradient(tf.cast(logits, tf.float32)) / temperature
    vocab = tf.shape(logits)[-1]
    flat = tf.reshape(logits, [-1, vocab])  # [N, V], N = batch * P
    # exp(logit - max) cannot overflow; padding to whole blocks adds zero probability.
    unnormalised = tf.exp(flat - tf.reduce_max(flat, axis=-1, keepdims=True))
    num_blocks = (vocab + _SAMPLING_BLOCK - 1) // _SAMPLING_BLOCK
    unnormalised = tf.pad(unnormalised, [[0, 0], [0, num_blocks * _SAMPLING_BLOCK - vocab]])
    blocks = tf.reshape(unnormalised, [-1, num_blocks, _SAMPLING_BLOCK])
    block_sums = tf.reduce_sum(blocks, axis=-1)  # [N, num_blocks]
    block_cdf = tf.cumsum(block_sums, axis=-1)
    targets = tf.reshape(replica_uniform(tf.shape(logits)[:-1], seed), [-1, 1]) * block_cdf[:, -1:]
    # The sample is the first index whose CDF exceeds the target: first its block ...
    block = tf.minimum(tf.searchsorted(block_cdf, targets, side="right", out_type=tf.int32),
                       num_blocks - 1)  # [N, 1]
    before = tf.gather(block_cdf - block_sums, block, batch_dims=1)  # mass of earlier blocks
    within = tf.cumsum(tf.gather(blocks, block[:, 0], batch_dims=1), axis=-1)  # [N, block]
    # ... then its place in the block. The clamps only matter when float rounding puts the
    # target a hair past the block's last entry.
    offset = tf.minimum(tf.searchsorted(within, targets - before, side="right",
                                        out_type=tf.int32), _SAMPLING_BLOCK - 1)
    index = tf.minimum(block * _SAMPLING_BLOCK + offset, vocab - 1)
    return tf.reshape(index, tf.shape(logits)[:-1])
