"""Words to WordPiece windows for token classification, and predictions back to words.

Each word is tokenized on its own; its tag sits on its first piece and the other pieces are
ignored by the loss and the metrics (label -1), as in the authors' `finetune/tagging/`. A
sentence longer than `max_seq_length - 2` pieces is cut, between words, into consecutive
windows, so that no word is dropped and every word is predicted exactly once (a single word of
more pieces than a window keeps its first pieces).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from electra_tf.data.preprocessor import encoder_inputs
from electra_tf.data.tagging import TaggedSentences
from electra_tf.data.vocab import special_token_ids
from electra_tf.errors import DataError

IGNORED = -1  # the label of [CLS], [SEP] and every piece after a word's first
_CONTINUATION, _UNLABELLED = -2, -3  # while building a window: a later piece, a word to predict


@dataclasses.dataclass
class TaggingWindows:
    """The model's view of some sentences.

    Attributes:
        token_ids: one int32 array per window, `[CLS] pieces [SEP]`.
        labels: one int32 array per window, the tag id at each word's first piece, else -1.
        starts: one array per window, the position of each word's first piece.
        sentence: for each window, the index of its sentence.
        first_word: for each window, the index (in its sentence) of its first word.
    """

    token_ids: list
    labels: list
    starts: list
    sentence: list
    first_word: list


class TaggingPreprocessor:
    """Aligns `TaggedSentences` to windows of at most `max_seq_length` pieces.

    Args:
        tokenizer: a `WordPieceTokenizer`.
        max_seq_length: pieces per window, [CLS] and [SEP] included.
    """

    def __init__(self, tokenizer, max_seq_length: int):
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        self.special_ids = special_token_ids(tokenizer.vocabulary)

    def windows(self, sentences: TaggedSentences, tag_names=None,
                strict: bool = True) -> TaggingWindows:
        """The windows of `sentences`, labelled with the ids of `tag_names` (None: unlabelled,
        all -1). A tag outside `tag_names` is an error when `strict` (training data), else
        left out of the loss (a type the model never saw, in data it is scored on).

        Raises:
            DataError: a word that tokenizes to no piece, or (strict) an unknown tag.
        """
        pieces = self._word_pieces(sentences)
        with_labels = tag_names is not None
        tag_ids = {name: i for i, name in enumerate(tag_names or ())}
        budget = self.max_seq_length - 2
        result = TaggingWindows([], [], [], [], [])
        position = 0
        for s, words in enumerate(sentences.words):
            window, labels, first = [], [], 0
            for w in range(len(words)):
                word_pieces = pieces[position][:budget]
                position += 1
                if len(window) + len(word_pieces) > budget:
                    self._close(result, window, labels, s, first)
                    window, labels, first = [], [], w
                label = _UNLABELLED
                if with_labels:
                    tag = sentences.tags[s][w]
                    if tag not in tag_ids and strict:
                        raise DataError(f"{sentences.source}: sentence {s + 1} has the tag "
                                        f"{tag!r}, which the training data never had "
                                        f"({list(tag_ids)}).")
                    label = tag_ids.get(tag, IGNORED)
                window += word_pieces
                labels += [label] + [_CONTINUATION] * (len(word_pieces) - 1)
            self._close(result, window, labels, s, first)
        return result

    def _close(self, result, window, labels, sentence, first):
        if not window:
            return
        ids = self.special_ids
        result.token_ids.append(np.array([ids.cls, *window, ids.sep], np.int32))
        result.labels.append(np.array([IGNORED, *(max(label, IGNORED) for label in labels),
                                       IGNORED], np.int32))
        result.starts.append(np.array([1 + i for i, label in enumerate(labels)
                                       if label != _CONTINUATION], np.int64))
        result.sentence.append(sentence)
        result.first_word.append(first)

    def _word_pieces(self, sentences: TaggedSentences) -> list:
        flat = [word for words in sentences.words for word in words]
        pieces = []
        for start in range(0, len(flat), 50_000):
            pieces += self.tokenizer.tokenize(tf.constant(flat[start:start + 50_000])).to_list()
        empty = next((i for i, p in enumerate(pieces) if not p), None)
        if empty is not None:
            s, w = _locate(sentences, empty)
            raise DataError(f"{sentences.source}: sentence {s + 1}, word {w + 1} "
                            f"({flat[empty]!r}) tokenizes to nothing (only control or "
                            "unknown characters); remove or replace it.")
        return pieces

    def dataset(self, windows: TaggingWindows, batch_size: int, *, shuffle=False, seed=0,
                repeat=False) -> tf.data.Dataset:
        """`(encoder inputs, labels [batch, len])` batches, padded to their longest window."""
        pad = self.special_ids.pad
        data = tf.data.Dataset.from_tensor_slices((
            tf.ragged.constant(windows.token_ids, dtype=tf.int32),
            tf.ragged.constant(windows.labels, dtype=tf.int32)))
        # The map is not idle: slices of a ragged tensor arrive as ragged rows, and a map
        # gives them back as plain tensors, which `padded_batch` needs.
        data = data.map(lambda ids, labels: (ids, labels)).cache()
        if shuffle:
            data = data.shuffle(len(windows.token_ids), seed=seed, reshuffle_each_iteration=True)
        if repeat:
            data = data.repeat()
        data = data.padded_batch(batch_size, padded_shapes=([None], [None]),
                                 padding_values=(pad, IGNORED))
        return data.map(lambda ids, labels: (encoder_inputs(ids, pad), labels),
                        num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    def word_predictions(self, sentences: TaggedSentences, windows: TaggingWindows,
                         window_predictions, tag_names) -> list[list[str]]:
        """Tag ids predicted for each window's pieces (in window order) -> one tag name (of
        `tag_names`) per input word."""
        predicted = [["O"] * len(words) for words in sentences.words]
        for k, prediction in enumerate(window_predictions):
            words = predicted[windows.sentence[k]]
            for offset, position in enumerate(windows.starts[k]):
                words[windows.first_word[k] + offset] = tag_names[int(prediction[position])]
        return predicted


def _locate(sentences: TaggedSentences, flat_index: int) -> tuple[int, int]:
    for s, words in enumerate(sentences.words):
        if flat_index < len(words):
            return s, flat_index
        flat_index -= len(words)
    raise IndexError(flat_index)
