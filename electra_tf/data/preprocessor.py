"""Text -> encoder inputs, in the graph: `ClassificationPreprocessor` turns raw strings (or
string pairs) into `[CLS] a [SEP] (b [SEP])` ids with pure TF ops, so the same layer runs in
tf.data for training and evaluation and inside an exported SavedModel; `classification_dataset`
batches labelled or scored texts through it for `fit`/`evaluate`."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import keras
import numpy as np
import tensorflow as tf

if TYPE_CHECKING:
    from electra_tf.data.classification import LabelledTexts
    from electra_tf.data.regression import ScoredTexts


@keras.saving.register_keras_serializable(package="electra_tf")
class ClassificationPreprocessor(keras.layers.Layer):
    """Raw strings -> `[CLS] pieces [SEP]` token ids, or string pairs -> `[CLS] a [SEP] b [SEP]`,
    truncated to `max_seq_length`.

    Pure TF ops (tf-text tokenizer, ragged truncation), so it runs in tf.data and can be placed in
    front of a classifier inside an exported SavedModel.

    Args:
        tokenizer: a `WordPieceTokenizer` (or its config dict).
        max_seq_length: total length including [CLS] and the [SEP]s.
        truncation: for single texts, `head` keeps the first `max_seq_length - 2` pieces;
            `head_tail` keeps the first `round(head_fraction * budget)` and the last pieces for
            the rest of the budget. A pair is always cut as the ELECTRA/BERT authors cut it:
            pieces come off the end of the longer text, one at a time, until both fit.
        head_fraction: see `truncation`.

    Call args:
        texts: string `[batch]`.
        texts_b: None, or string `[batch]`: the second text of each pair.

    Returns:
        int32 ragged `[batch, (<= max_seq_length)]` ids, not padded (`pad_and_mask` pads and
        gives a pair's second text segment id 1).
    """

    def __init__(self, tokenizer, max_seq_length=256, truncation="head_tail", head_fraction=0.25,
                 **kwargs):
        kwargs.setdefault("trainable", False)
        kwargs["dtype"] = "string"
        super().__init__(**kwargs)
        if isinstance(tokenizer, dict):
            tokenizer = keras.saving.deserialize_keras_object(tokenizer)
        if truncation not in ("head", "head_tail"):
            raise ValueError(f"truncation must be 'head' or 'head_tail', got {truncation!r}.")
        self.tokenizer = tokenizer
        self.max_seq_length = int(max_seq_length)
        self.truncation = truncation
        self.head_fraction = float(head_fraction)
        self.special_ids = tokenizer.special_ids
        self.built = True

    @property
    def budget(self) -> int:
        return self.max_seq_length - 2

    def call(self, texts, texts_b=None):
        pieces = self.tokenizer.tokenize(tf.convert_to_tensor(texts, dtype=tf.string))
        batch = tf.shape(pieces.row_lengths())[0]
        cls = tf.fill([batch, 1], tf.constant(self.special_ids.cls, tf.int32))
        sep = tf.fill([batch, 1], tf.constant(self.special_ids.sep, tf.int32))
        if texts_b is None:
            pieces = truncate_pieces(pieces, self.budget, self.truncation, self.head_fraction)
            return tf.concat([cls, pieces, sep], axis=1)
        pieces_b = self.tokenizer.tokenize(tf.convert_to_tensor(texts_b, dtype=tf.string))
        pieces, pieces_b = truncate_pair(pieces, pieces_b, self.max_seq_length - 3)
        return tf.concat([cls, pieces, sep, pieces_b, sep], axis=1)

    def pad_and_mask(self, token_ids):
        """Ragged ids `[batch, (len)]` -> the encoder's input dict, padded to the longest row."""
        dense = token_ids.to_tensor(default_value=self.special_ids.pad)
        return encoder_inputs(dense, self.special_ids.pad, lengths=token_ids.row_lengths(),
                              sep_id=self.special_ids.sep)

    def compute_output_spec(self, texts, texts_b=None):
        return keras.KerasTensor((texts.shape[0], None), dtype="int32", ragged=True)

    def get_config(self):
        config = super().get_config()
        config.update(tokenizer=keras.saving.serialize_keras_object(self.tokenizer),
                      max_seq_length=self.max_seq_length, truncation=self.truncation,
                      head_fraction=self.head_fraction)
        return config


def truncate_pieces(pieces: tf.RaggedTensor, budget: int, truncation: str,
                    head_fraction: float = 0.25) -> tf.RaggedTensor:
    """Keeps at most `budget` pieces per row: the first ones (`head`) or the first
    `round(head_fraction * budget)` plus the last ones (`head_tail`). Rows within budget are
    unchanged. `pieces`: ragged `[batch, (len)]` -> ragged `[batch, (min(len, budget))]`."""
    if truncation == "head":
        return pieces[:, :budget]
    head = int(round(head_fraction * budget))
    tail = budget - head
    lengths = pieces.row_lengths()
    positions = tf.ragged.range(lengths)  # [batch, (len)]: 0 .. len-1 per row
    row_len = tf.expand_dims(lengths, 1)
    keep = (positions < head) | (positions >= row_len - tail) | (row_len <= budget)
    return tf.ragged.boolean_mask(pieces, keep)


def truncate_pair(pieces_a: tf.RaggedTensor, pieces_b: tf.RaggedTensor, budget: int):
    """Cuts each pair to at most `budget` pieces in all, taking pieces off the end of the longer
    text first (the BERT/ELECTRA authors' `_truncate_seq_pair`; on a tie, off the second).

    The loop's outcome in closed form: the second text keeps `min(len_b, max(budget - len_a,
    budget // 2))` pieces and the first the rest of the budget (at most `len_a`).
    `pieces_a`, `pieces_b`: ragged `[batch, (len)]` -> the same, cut."""
    length_a, length_b = pieces_a.row_lengths(), pieces_b.row_lengths()
    keep_b = tf.minimum(length_b, tf.maximum(budget - length_a, budget // 2))
    keep_a = tf.minimum(length_a, budget - keep_b)
    return (tf.ragged.boolean_mask(pieces_a, tf.ragged.range(length_a) < keep_a[:, None]),
            tf.ragged.boolean_mask(pieces_b, tf.ragged.range(length_b) < keep_b[:, None]))


def encoder_inputs(token_ids, pad_id: int, lengths=None, sep_id: int | None = None) -> dict:
    """Padded ids `[batch, seq_len]` -> the encoder's dict: `padding_mask` from `lengths`, or
    `token_ids != pad_id`; `segment_ids` 1 after a row's first [SEP] (`sep_id`: the second text
    of a pair) and 0 elsewhere, all 0 without `sep_id`."""
    if lengths is not None:
        mask = tf.sequence_mask(lengths, tf.shape(token_ids)[1])
    else:
        mask = tf.not_equal(token_ids, pad_id)
    segments = tf.zeros_like(token_ids)
    if sep_id is not None:
        # The tokenizer never emits [SEP] for text ("[SEP]" in a text is split into pieces), so
        # the [SEP]s are the packer's own: the ones before a token say which text it is in.
        is_sep = tf.cast(tf.equal(token_ids, sep_id), token_ids.dtype)
        before = tf.cumsum(is_sep, axis=1, exclusive=True)
        segments = tf.minimum(before, 1) * tf.cast(mask, token_ids.dtype)
    return {"token_ids": token_ids, "segment_ids": segments, "padding_mask": mask}


def classification_dataset(data: LabelledTexts | ScoredTexts,
                           preprocessor: ClassificationPreprocessor,
                           batch_size: int, *, shuffle: bool = False, seed: int = 0,
                           repeat: bool = False, bucket_by_length: bool = False,
                           sort_by_length: bool = False,
                           encode_batch: int = 256) -> tf.data.Dataset:
    """`(encoder inputs, target)` batches for `fit`/`evaluate`/`predict`: the label ids of
    `LabelledTexts` or the scores of `ScoredTexts` (`data.targets`), of single texts or pairs.

    Texts are tokenized once in tf.data and cached, then (optionally) shuffled with `seed` each
    pass. Batches are padded to their longest sequence, not to `max_seq_length`; with
    `bucket_by_length` training batches group sequences of similar length, which on CPU saves
    most of the padding compute (IMDB reviews range from 10 to over 2,000 pieces).
    `sort_by_length` is the evaluation counterpart: the examples go in order of their token
    count, so each batch pads only to its neighbours' length. The order of the examples then
    differs from `data`'s (labels travel with their texts; `LabelledTexts.subset(
    length_order(data, preprocessor))` is the order the batches follow).

    Returns:
        dataset of `({"token_ids", "segment_ids", "padding_mask"}: [batch, len],
        target: [batch])`.
    """
    if sort_by_length:
        if shuffle or bucket_by_length:
            raise ValueError("sort_by_length orders the examples itself: it excludes shuffle "
                             "and bucket_by_length.")
        data = data.subset(length_order(data, preprocessor, encode_batch))
    pad, sep = preprocessor.special_ids.pad, preprocessor.special_ids.sep
    texts = tf.data.Dataset.from_tensor_slices((_text_columns(data), data.targets))
    no_target = tf.zeros([], tf.as_dtype(data.targets.dtype))  # padded_batch's value for it

    def encode(text, target):  # ragged rows cannot be unbatched into tensors: go via dense
        ids = preprocessor(*text)
        return ids.to_tensor(default_value=pad), ids.row_lengths(), target

    encoded = (texts.batch(encode_batch)
               .map(encode, num_parallel_calls=tf.data.AUTOTUNE)
               .unbatch()
               .map(lambda ids, length, label: (ids[:length], label))
               .cache())
    if shuffle:
        encoded = encoded.shuffle(min(len(data), 50_000), seed=seed,
                                  reshuffle_each_iteration=True)
    if repeat:
        encoded = encoded.repeat()
    if bucket_by_length:
        limit = preprocessor.max_seq_length
        boundaries = [b for b in (64, 96, 128, 192, 256, 320, 384, 448) if b < limit] + [limit + 1]
        batched = encoded.bucket_by_sequence_length(
            lambda ids, y: tf.shape(ids)[0], boundaries, [batch_size] * (len(boundaries) + 1),
            padded_shapes=([None], []), padding_values=(pad, no_target),
            drop_remainder=False)
    else:
        batched = encoded.padded_batch(batch_size, padded_shapes=([None], []),
                                       padding_values=(pad, no_target))
        if not repeat:  # unbatch() hides the size; Keras warns at the end of such a dataset
            batched = batched.apply(tf.data.experimental.assert_cardinality(
                math.ceil(len(data) / batch_size)))
    return batched.map(lambda ids, y: (encoder_inputs(ids, pad, sep_id=sep), y),
                       num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _text_columns(data) -> tuple:
    """`(texts,)` or `(texts, texts_b)` as string tensors: the preprocessor's arguments."""
    columns = (data.texts,) if data.texts_b is None else (data.texts, data.texts_b)
    return tuple(tf.constant(column, dtype=tf.string) for column in columns)


def length_order(data: LabelledTexts | ScoredTexts, preprocessor: ClassificationPreprocessor,
                 encode_batch: int = 256) -> np.ndarray:
    """Indices that order `data` by token count after truncation (stable: ties keep their order).

    Tokenizes every text once more than the dataset itself does (the dataset streams and caches
    its own tokens; this pass only needs their counts), which is cheap beside the encoder work
    it saves: with the IMDB experiment's 8,192-piece vocabulary and a 512-piece cap, half the
    reviews are under 235 pieces and 15% reach the cap, so nearly every arrival-order batch of
    64 pads to 512.

    Returns:
        int64 `[N]` indices into `data`.
    """
    texts = tf.data.Dataset.from_tensor_slices(_text_columns(data))
    lengths = texts.batch(encode_batch).map(lambda *text: preprocessor(*text).row_lengths(),
                                            num_parallel_calls=tf.data.AUTOTUNE)
    counts = np.concatenate([batch.numpy() for batch in lengths]) if len(data) else np.zeros(0)
    return np.argsort(counts, kind="stable")
