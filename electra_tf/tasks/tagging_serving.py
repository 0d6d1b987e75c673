"""The serving side of a token classifier: raw text in, per-word tags and entity spans with
character offsets out, all in the graph (no Python at serving time), so that a SavedModel
answers where `import electra_tf` fails.

    text --regex split--> words (byte offsets -> character offsets)
         --WordPiece----> pieces per word (at most a window's worth; a word of no piece: [UNK])
         --greedy pack--> windows of <= max_seq_length - 2 pieces, cut between words, as in
                          training (`TaggingPreprocessor.windows`)
         --encoder------> each word's tag from the logits at its first piece
         --IOB2 decode--> entities with conlleval's rules (an I- after O or another type opens one)
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_text as tf_text

from electra_tf.data.preprocessor import encoder_inputs
from electra_tf.data.tokenizer import char_offsets
from electra_tf.tasks.serving import TEXT_SPEC, ServingModule

# A word: letters/digits, joined by inner punctuation ("U.S", "O'Neill", "1996-08-22",
# "AT&T"), or any other single visible character (",", "(", an emoji). CoNLL-2003 splits
# punctuation off words the same way, so served words look like the words a tagger was trained
# on. RE2 syntax (tensorflow-text's regex ops).
WORD_PATTERN = r"[\p{L}\p{N}\p{M}]+(?:[.'’&/-][\p{L}\p{N}\p{M}]+)*|\S"


def split_words(text):
    """Raw strings `[batch]` -> `(words, starts, ends)`, ragged `[batch, (words)]`: the words
    and their character offsets (`text[start:end]` in Python is the word)."""
    words, byte_starts, byte_ends = tf_text.regex_split_with_offsets(
        text, r"\s+|" + WORD_PATTERN, WORD_PATTERN)
    return words, char_offsets(text, byte_starts), char_offsets(text, byte_ends)


class TaggerServing(ServingModule):
    """Signature `serving_default` (`tag_text`): `text` string `[batch]` ->
        `words` string `[batch, W]`, `word_start` / `word_end` int32 `[batch, W]` (character
        offsets into the text, end exclusive), `tags` string `[batch, W]`, `tag_scores` float32
        `[batch, W]` (the tag's probability), `word_count` int32 `[batch]`;
        `entity_text`, `entity_type` string `[batch, E]`, `entity_start` / `entity_end` int32
        `[batch, E]` (character offsets), `entity_score` float32 `[batch, E]` (the mean tag
        probability of its words), `entity_count` int32 `[batch]`.
    W and E are the batch's largest counts; shorter rows are padded with "" and -1.
    """

    def __init__(self, model, preprocessor, vocab_path):
        super().__init__(model, preprocessor, vocab_path)
        self.tokenizer = preprocessor.tokenizer  # tracked: its tables go into the SavedModel
        ids = preprocessor.special_ids
        self._cls, self._sep, self._pad, self._unk = ids.cls, ids.sep, ids.pad, ids.unk
        names = list(model.tag_names)
        self.tag_names = tf.Variable(names, trainable=False, name="tag_names")
        # Per tag id: its entity type's index (-1 for O) and whether it opens an entity (B-).
        types = sorted({name[2:] for name in names if name != "O"})
        self.entity_types = tf.Variable(types or [""], trainable=False, name="entity_types")
        self._type_of = tf.constant([types.index(n[2:]) if n != "O" else -1 for n in names],
                                    tf.int32)
        self._opens = tf.constant([n.startswith("B-") for n in names])

    @tf.function(input_signature=[TEXT_SPEC])
    def tag_text(self, text):
        words, starts, ends = split_words(text)
        rows = words.value_rowids()  # [n_words]: the text of each word
        first_word = tf.concat([[True], rows[1:] != rows[:-1]], axis=0)[:tf.size(rows)]
        tag_ids, scores = self._tag_words(words.flat_values, first_word)
        outputs = self._word_outputs(words, starts, ends, tag_ids, scores)
        outputs.update(self._entities(text, words, starts, ends, first_word, tag_ids, scores))
        return outputs

    def signatures(self):
        return {"serving_default": self.tag_text}

    # ------------------------------------------------------------------ words -> tags

    def _tag_words(self, flat_words, first_word):
        """Words string `[n_words]` (`first_word`: bool, where a text begins) -> tag ids int32
        `[n_words]` and their probabilities float32 `[n_words]`."""
        budget = self.preprocessor.max_seq_length - 2
        pieces = self.tokenizer.tokenize(flat_words)  # [n_words, (pieces)]
        # A word of no piece (a lone control or unknown character) is [UNK], so every word
        # gets a tag; a word of more pieces than a window keeps its first pieces (as training).
        length = tf.minimum(tf.maximum(pieces.row_lengths(), 1), budget)
        padded = tf.concat([pieces, tf.fill([tf.shape(flat_words)[0], 1], self._unk)], axis=1)
        keep = tf.ragged.range(padded.row_lengths()) < length[:, None]
        pieces = tf.ragged.boolean_mask(padded, keep)
        length = tf.cast(length, tf.int32)

        # Greedy packing, cut between words: a new window at each text's first word and where
        # the next word would not fit.
        def pack(state, word):
            window, used = state
            size, first = word
            new = tf.logical_or(first, used + size > budget)
            return (tf.where(new, window + 1, window), tf.where(new, size, used + size))

        window_of_word, _ = tf.scan(pack, (length, first_word),
                                    initializer=(tf.constant(-1), tf.constant(0)))
        n_windows = tf.reduce_max(tf.concat([[-1], window_of_word], axis=0)) + 1
        windows = tf.RaggedTensor.from_value_rowids(
            pieces.flat_values, tf.repeat(window_of_word, length),
            nrows=n_windows)  # [n_windows, (pieces)]
        ids = tf.concat([tf.fill([windows.nrows(), 1], self._cls), windows,
                         tf.fill([windows.nrows(), 1], self._sep)], axis=1)
        logits = self.model(encoder_inputs(ids.to_tensor(self._pad), self._pad), training=False)
        probabilities = tf.nn.softmax(tf.cast(logits, tf.float32))  # [n_windows, len, tags]

        # Each word's first piece: 1 ([CLS]) + the pieces of the window's earlier words.
        offset = tf.cumsum(length, exclusive=True)
        window_start = tf.math.unsorted_segment_min(offset, window_of_word, n_windows)
        position = 1 + offset - tf.gather(window_start, window_of_word)
        word_probabilities = tf.gather_nd(probabilities,
                                          tf.stack([window_of_word, position], axis=1))
        tag_ids = tf.argmax(word_probabilities, axis=-1, output_type=tf.int32)
        return tag_ids, tf.reduce_max(word_probabilities, axis=-1)

    def _word_outputs(self, words, starts, ends, tag_ids, scores):
        def rows(values):
            return words.with_flat_values(values)

        return {"words": words.to_tensor(""),
                "word_start": starts.to_tensor(-1), "word_end": ends.to_tensor(-1),
                "tags": rows(tf.gather(self.tag_names, tag_ids)).to_tensor(""),
                "tag_scores": rows(scores).to_tensor(-1.0),
                "word_count": tf.cast(words.row_lengths(), tf.int32)}

    # ------------------------------------------------------------------ tags -> entities

    def _entities(self, text, words, starts, ends, first_word, tag_ids, scores):
        """IOB2 decoding with conlleval's rules, in the graph."""
        kind = tf.gather(self._type_of, tag_ids)  # [n_words], -1 for O
        previous = tf.where(first_word, -1, tf.concat([[-1], kind[:-1]], axis=0))
        inside = kind >= 0
        opens = inside & (tf.gather(self._opens, tag_ids) | (previous != kind))
        entity_of_word = tf.cumsum(tf.cast(opens, tf.int32)) - 1
        member = tf.where(inside)[:, 0]  # the words that belong to an entity
        entity = tf.gather(entity_of_word, member)
        count = tf.reduce_sum(tf.cast(opens, tf.int32))

        def per_entity(reduce, values):
            return reduce(tf.gather(values, member), entity, count)

        row = per_entity(tf.math.unsorted_segment_max, words.value_rowids())
        start = per_entity(tf.math.unsorted_segment_min, starts.flat_values)
        end = per_entity(tf.math.unsorted_segment_max, ends.flat_values)
        score = per_entity(tf.math.unsorted_segment_mean, scores)
        entity_type = tf.gather(self.entity_types, per_entity(tf.math.unsorted_segment_max,
                                                                kind))
        # The entity's text, cut from the input by character offsets.
        chars = tf.strings.unicode_split(tf.gather(text, row), "UTF-8", errors="replace")
        span = tf.ragged.range(start, end)
        entity_text = tf.strings.reduce_join(
            tf.gather(chars, span, batch_dims=1), axis=-1)

        def rows(values, default):
            return tf.RaggedTensor.from_value_rowids(values, row, nrows=tf.shape(text,
                                                     out_type=tf.int64)[0]).to_tensor(default)

        return {"entity_text": rows(entity_text, ""), "entity_type": rows(entity_type, ""),
                "entity_start": rows(start, -1), "entity_end": rows(end, -1),
                "entity_score": rows(score, -1.0),
                "entity_count": tf.math.bincount(tf.cast(row, tf.int32),
                                                 minlength=tf.shape(text)[0],
                                                 maxlength=tf.shape(text)[0])}
