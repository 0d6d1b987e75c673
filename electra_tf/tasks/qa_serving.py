"""The serving side of a reader: a question and a context as raw strings in, the answer's text,
character offsets and score (or no answer) out -- windows, offsets and decoding in the graph,
exactly as `electra_tf.data.qa_features` does them in Python, so that a SavedModel answers
where `import electra_tf` fails."""

from __future__ import annotations

import tensorflow as tf

from electra_tf.data.preprocessor import encoder_inputs
from electra_tf.tasks.serving import ServingModule

QUESTION_SPEC = tf.TensorSpec([None], tf.string, name="question")
CONTEXT_SPEC = tf.TensorSpec([None], tf.string, name="context")


class ReaderServing(ServingModule):
    """Signature `serving_default` (`answer`): `question`, `context` string `[batch]` ->
        `answer` string `[batch]` ("" for no answer), `answer_start` / `answer_end` int32
        `[batch]` (character offsets into the context, end exclusive; -1 for no answer),
        `score` float32 `[batch]` (the span's start + end logit), `no_answer_score` float32
        `[batch]` (the [CLS] score minus the span's; above `no_answer_threshold`, no answer),
        `has_answer` bool `[batch]`.
    """

    def __init__(self, model, preprocessor, vocab_path, no_answer_threshold: float = 0.0,
                 max_answer_pieces: int = 30):
        super().__init__(model, preprocessor, vocab_path)
        self.tokenizer = preprocessor.tokenizer  # tracked: its tables go into the SavedModel
        ids = preprocessor.special_ids
        self._cls, self._sep, self._pad = ids.cls, ids.sep, ids.pad
        self._max_length = preprocessor.max_seq_length
        self._max_question = preprocessor.max_question_pieces
        self._stride = preprocessor.doc_stride
        self._max_answer = max_answer_pieces
        self.no_answer_threshold = tf.Variable(float(no_answer_threshold), trainable=False,
                                               name="no_answer_threshold")

    @tf.function(input_signature=[QUESTION_SPEC, CONTEXT_SPEC])
    def answer(self, question, context):
        question_ids = self.tokenizer.tokenize(question)[:, :self._max_question]
        pieces, starts, ends = self.tokenizer.tokenize_with_offsets(context)
        window = self._windows(question_ids, pieces)
        windows = tf.size(window["example"])
        ids = tf.concat([tf.fill([windows, 1], self._cls),
                         tf.gather(question_ids, window["example"]),
                         tf.fill([windows, 1], self._sep),
                         _take(pieces, window["example"], window["first"], window["length"]),
                         tf.fill([windows, 1], self._sep)], axis=1)
        logits = self.model(encoder_inputs(ids.to_tensor(self._pad), self._pad,
                                           sep_id=self._sep), training=False)
        return self._decode(context, tf.cast(logits, tf.float32), window, starts, ends)

    def signatures(self):
        return {"serving_default": self.answer}

    def _windows(self, question_ids, pieces) -> dict:
        """The windows of each example, cut as `electra_tf.data.qa_features._window_spans`
        cuts them: per window (int64 `[windows]`) its example, first context piece, length,
        and the position of its first context piece in the sequence."""
        count = pieces.row_lengths()  # [batch]
        question_length = question_ids.row_lengths()
        room = self._max_length - 3 - question_length  # [batch]
        step = tf.minimum(room, self._stride)
        per_example = 1 + (tf.maximum(count - room, 0) + step - 1) // step  # [batch]
        example = tf.repeat(tf.range(tf.size(count, out_type=tf.int64)), per_example)
        first = tf.ragged.range(per_example).flat_values * tf.gather(step, example)
        length = tf.minimum(tf.gather(count, example) - first, tf.gather(room, example))
        return {"example": example, "first": first, "length": length,
                "offset": tf.gather(question_length, example) + 2,
                "longest": tf.reduce_max(tf.concat([[0], count], axis=0))}

    def _decode(self, context, logits, window, starts, ends) -> dict:
        """Logits `[windows, len, 2]` -> the outputs, as `qa_features.best_answers` decodes."""
        example, first, length = window["example"], window["first"], window["length"]
        batch = tf.shape(context, out_type=tf.int64)[0]
        n = tf.shape(logits, out_type=tf.int64)[1]
        j = tf.range(n)[None, :]  # a context piece's index within its window
        inside = j < length[:, None]  # [windows, n]
        # Each window's context logits from position 0: [windows, n, 2], -inf past its end.
        context_logits = tf.gather(logits, tf.minimum(window["offset"][:, None] + j, n - 1),
                                   batch_dims=1)
        context_logits = tf.where(inside[..., None], context_logits, -float("inf"))
        max_context = self._max_context(example, first, length, j, inside, window["longest"],
                                        batch)
        # Every valid span of every window: [windows, n, n].
        i, e = j[:, :, None], j[:, None, :]
        valid = (e >= i) & (e - i < self._max_answer) & max_context[:, :, None] \
            & inside[:, None, :]
        span = tf.where(valid, context_logits[:, :, 0][:, :, None]
                        + context_logits[:, :, 1][:, None, :], -float("inf"))
        flat = tf.reshape(span, [tf.size(example), -1])
        window_best, at = tf.reduce_max(flat, axis=1), tf.argmax(flat, axis=1)
        # Each example's best window (ties: the earlier one), and its [CLS] null score.
        example_best = tf.math.unsorted_segment_max(window_best, example, batch)
        index = tf.range(tf.size(example, out_type=tf.int64))
        chosen = tf.math.unsorted_segment_min(
            tf.where(tf.equal(window_best, tf.gather(example_best, example)), index,
                     tf.int64.max), example, batch)  # [batch]
        null = tf.math.unsorted_segment_min(logits[:, 0, 0] + logits[:, 0, 1], example, batch)
        span_score = tf.gather(window_best, chosen)
        no_answer_score = null - span_score
        has_answer = tf.math.is_finite(span_score) & (no_answer_score
                                                      <= self.no_answer_threshold)
        start_piece = tf.gather(first, chosen) + tf.gather(at, chosen) // n
        end_piece = tf.gather(first, chosen) + tf.gather(at, chosen) % n
        begin = tf.where(has_answer, _at(starts, start_piece), -1)
        finish = tf.where(has_answer, _at(ends, end_piece), -1)
        chars = tf.strings.unicode_split(context, "UTF-8", errors="replace")
        text = tf.strings.reduce_join(tf.gather(chars, tf.ragged.range(
            tf.maximum(begin, 0), tf.maximum(finish, 0)), batch_dims=1), axis=-1)
        return {"answer": text, "answer_start": begin, "answer_end": finish,
                "score": span_score, "no_answer_score": no_answer_score,
                "has_answer": has_answer}

    @staticmethod
    def _max_context(example, first, length, j, inside, longest, batch):
        """bool `[windows, n]`: whether each window gives each of its context pieces the most
        context on both sides (ties: the earlier window), as `qa_features._max_context`."""
        score = tf.cast(tf.minimum(j, length[:, None] - 1 - j), tf.float32) \
            + 0.01 * tf.cast(length[:, None], tf.float32)  # [windows, n]
        # One key per (example, piece of its context).
        key = tf.boolean_mask(example[:, None] * (longest + 1) + first[:, None] + j, inside)
        segments = batch * (longest + 1)
        score = tf.boolean_mask(score, inside)
        window = tf.boolean_mask(tf.broadcast_to(tf.range(tf.size(example, out_type=tf.int64))
                                                 [:, None], tf.shape(inside, tf.int64)), inside)
        best = tf.gather(tf.math.unsorted_segment_max(score, key, segments), key)
        winner = tf.math.unsorted_segment_min(tf.where(tf.equal(score, best), window,
                                                       tf.int64.max), key, segments)
        return tf.scatter_nd(tf.where(inside), tf.equal(window, tf.gather(winner, key)),
                             tf.shape(inside, tf.int64))


def _take(pieces, example, first, length):
    """`pieces[example][first:first + length]` for every window: ragged `[windows, (length)]`."""
    rows = tf.gather(pieces, example)
    return tf.gather(rows, tf.ragged.range(first, first + length), batch_dims=1)


def _at(offsets, index):
    """`offsets[b][index[b]]` for ragged `offsets` `[batch, (n)]` (0 where a row is empty)."""
    dense = tf.concat([offsets.to_tensor(0), tf.zeros([offsets.nrows(), 1], offsets.dtype)],
                      axis=1)
    return tf.gather(dense, tf.minimum(index, tf.shape(dense, out_type=tf.int64)[1] - 1),
                     batch_dims=1)
