"""Extractive question answering: questions and contexts -> windows of WordPiece pieces, and the
model's start/end logits back to answer text (the authors' `finetune/qa/`, after BERT's SQuAD
code).

    [CLS] question [SEP] context window [SEP]

The question keeps at most `max_question_pieces` pieces (authors: 64). The context is cut into
windows of the pieces that fit beside it, each window starting `doc_stride` pieces after the
previous one (authors: 128) until one reaches the end, so long contexts overlap. Every context
piece keeps its character offsets into the context, so an answer maps back to the exact text
as written. A window that holds the whole reference answer is labelled with its first and last
pieces; any other window, and every window of an unanswerable question, points at [CLS]
(position 0): "no answer here".

Decoding (`best_answers`) takes, over all windows of a question, the best pair of a start and an
end context piece by the sum of their logits, among the pairs with end >= start, at most
`max_answer_pieces` pieces, and a start scored in the window where it has the most context on
both sides; it answers with that span's characters. The no-answer score is the smallest
[CLS] start + end logit over the windows minus the best span's score: SQuAD 2.0 answers ""
where it is above a threshold chosen on validation (BERT's rule; the authors' extra
answerability classifier is not used).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from electra_tf.data.preprocessor import encoder_inputs
from electra_tf.data.squad import QuestionsAndContexts
from electra_tf.data.vocab import special_token_ids
from electra_tf.errors import ConfigError


@dataclasses.dataclass
class QAWindows:
    """The model's view of some questions: one entry per window.

    Attributes:
        token_ids: int32 arrays, `[CLS] question [SEP] context part [SEP]`.
        example: the index of each window's question.
        context_start: the position of each window's first context piece.
        char_starts, char_ends: per window, int arrays of each context piece's character
            offsets into the context.
        max_context: per window, bool arrays: whether this window gives the piece the most
            context on both sides among the windows that hold it.
        positions: per window, `(start, end)` of the answer's pieces, `(0, 0)` for none.
    """

    token_ids: list
    example: list
    context_start: list
    char_starts: list
    char_ends: list
    max_context: list
    positions: list


class QAPreprocessor:
    """Questions and contexts -> `QAWindows` -> batches, and logits -> answers.

    Args:
        tokenizer: a `WordPieceTokenizer` (its offsets map pieces back to the text).
        max_seq_length: pieces per window, [CLS] and both [SEP]s included.
        max_question_pieces: the question's pieces kept (the first ones).
        doc_stride: pieces between the starts of consecutive windows of one context.
    """

    def __init__(self, tokenizer, max_seq_length: int = 384, max_question_pieces: int = 64,
                 doc_stride: int = 128):
        if max_seq_length - max_question_pieces - 3 < 8:
            raise ConfigError(f"preprocessing.max_seq_length={max_seq_length} leaves fewer than "
                              f"8 context pieces beside a question of up to "
                              f"{max_question_pieces} pieces (preprocessing.max_question_pieces); "
                              "raise the first or lower the second.")
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        self.max_question_pieces = max_question_pieces
        self.doc_stride = doc_stride
        self.special_ids = special_token_ids(tokenizer.vocabulary)

    def windows(self, data: QuestionsAndContexts) -> QAWindows:
        questions = _batched(self.tokenizer.tokenize, data.questions)
        contexts = _batched(self.tokenizer.tokenize_with_offsets, data.contexts)
        ids = self.special_ids
        result = QAWindows([], [], [], [], [], [], [])
        for k, question in enumerate(questions):
            question = question[0][:self.max_question_pieces]
            pieces, starts, ends = (np.asarray(x, np.int64) for x in contexts[k])
            room = self.max_seq_length - len(question) - 3
            spans = _window_spans(len(pieces), room, self.doc_stride)
            best = _max_context(spans, len(pieces))
            answer = _answer_pieces(data.answers[k][:1], starts, ends)
            for w, (first, length) in enumerate(spans):
                last = first + length - 1
                offset = len(question) + 2  # [CLS] question [SEP]
                inside = answer is not None and first <= answer[0] and answer[1] <= last
                result.token_ids.append(np.array(
                    [ids.cls, *question, ids.sep, *pieces[first:last + 1], ids.sep], np.int32))
                result.example.append(k)
                result.context_start.append(offset)
                result.char_starts.append(starts[first:last + 1])
                result.char_ends.append(ends[first:last + 1])
                result.max_context.append(best[first:last + 1] == w)
                result.positions.append((answer[0] - first + offset, answer[1] - first + offset)
                                        if inside else (0, 0))
        return result

    def dataset(self, windows: QAWindows, batch_size: int, *, shuffle=False, seed=0,
                repeat=False) -> tf.data.Dataset:
        """`(encoder inputs, positions int32 [batch, 2])` batches, padded to their longest
        window; segment id 1 on the context and its [SEP]."""
        pad = self.special_ids.pad
        data = tf.data.Dataset.from_tensor_slices((
            tf.ragged.constant(windows.token_ids, dtype=tf.int32),
            tf.constant(np.asarray(windows.positions, np.int32).reshape(-1, 2))))
        data = data.map(lambda ids, positions: (ids, positions)).cache()  # ragged rows -> dense
        if shuffle:
            data = data.shuffle(len(windows.token_ids), seed=seed, reshuffle_each_iteration=True)
        if repeat:
            data = data.repeat()
        data = data.padded_batch(batch_size, padded_shapes=([None], [2]),
                                 padding_values=(pad, 0))
        sep = self.special_ids.sep
        return data.map(lambda ids, positions: (encoder_inputs(ids, pad, sep_id=sep), positions),
                        num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def best_answers(data: QuestionsAndContexts, windows: QAWindows, logits,
                 max_answer_pieces: int = 30) -> tuple[dict, dict]:
    """`logits`: per window (in `windows` order) float `[length, 2]` start/end logits.
    Returns `({question id: answer text}, {question id: no-answer score})`: the best span's
    text (see the module docstring) and `null score - best span score` (higher: more likely
    unanswerable; a question with no valid span gets +inf and the answer "")."""
    best = {}  # question index -> (score, text)
    null = {}  # question index -> the smallest [CLS] score
    for w, window_logits in enumerate(logits):
        k = windows.example[w]
        window_logits = np.asarray(window_logits, np.float64)
        null[k] = min(null.get(k, np.inf), window_logits[0, 0] + window_logits[0, 1])
        offset, count = windows.context_start[w], len(windows.char_starts[w])
        scores = span_scores(window_logits[offset:offset + count], windows.max_context[w],
                             max_answer_pieces)
        if not scores.size:
            continue
        s, e = np.unravel_index(np.argmax(scores), scores.shape)
        if scores[s, e] > best.get(k, (-np.inf, ""))[0]:
            text = data.contexts[k][windows.char_starts[w][s]:windows.char_ends[w][e]]
            best[k] = (scores[s, e], text)
    answers, no_answer = {}, {}
    for k, qid in enumerate(data.ids):
        score, text = best.get(k, (-np.inf, ""))
        answers[qid] = text
        no_answer[qid] = float(null.get(k, np.inf) - score)
    return answers, no_answer


def span_scores(context_logits, max_context, max_answer_pieces: int) -> np.ndarray:
    """`[count, count]` scores of every span (start i, end j) of a window's context pieces:
    start logit + end logit where j >= i, the span has at most `max_answer_pieces` pieces and
    the window gives piece i the most context; -inf elsewhere. (BERT only looks at the 20
    best starts and ends, which can miss the best valid pair, never add one.)"""
    count = len(context_logits)
    i, j = np.arange(count)[:, None], np.arange(count)[None, :]
    valid = (j >= i) & (j - i < max_answer_pieces) & np.asarray(max_context, bool)[:, None]
    scores = context_logits[:, 0][:, None] + context_logits[:, 1][None, :]
    return np.where(valid, scores, -np.inf)


# ------------------------------------------------------------------ helpers

def _batched(tokenize, texts, size: int = 2048) -> list:
    """`tokenize` over `texts` in batches; per text, a tuple of lists (one per output)."""
    rows = []
    for start in range(0, len(texts), size):
        outputs = tokenize(tf.constant(texts[start:start + size]))
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        rows += list(zip(*(output.to_list() for output in outputs)))
    return rows


def _window_spans(count: int, room: int, stride: int) -> list[tuple[int, int]]:
    """`(first piece, length)` of each window over `count` context pieces."""
    spans, first = [], 0
    while True:
        length = min(count - first, room)
        spans.append((first, length))
        if first + length >= count:
            return spans
        first += min(length, stride)


def _max_context(spans, count: int) -> np.ndarray:
    """For each context piece, the window that gives it the most context: the largest
    min(pieces to its left, pieces to its right) in the window, ties to the longer window."""
    best, best_score = np.full(count, -1), np.full(count, -np.inf)
    for w, (first, length) in enumerate(spans):
        position = np.arange(first, first + length)
        score = np.minimum(position - first, first + length - 1 - position) + 0.01 * length
        better = score > best_score[position]
        best[position[better]], best_score[position[better]] = w, score[better]
    return best


def _answer_pieces(answers, starts, ends):
    """`(first piece, last piece)` of the first reference answer, or None (no answer, or one
    that covers no piece)."""
    if not answers:
        return None
    text, begin = answers[0]
    end = begin + len(text)
    inside = np.flatnonzero((ends > begin) & (starts < end))
    return (int(inside[0]), int(inside[-1])) if inside.size else None
