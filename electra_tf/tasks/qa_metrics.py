"""SQuAD's official metric (the evaluation scripts of SQuAD 1.1 and 2.0), as a library function.

An answer is compared with each reference after normalisation -- lower case, punctuation
removed, the articles "a", "an" and "the" removed, runs of white space collapsed -- and scores
the best over the references: exact match (the normalised strings are equal) and F1 over
normalised words (a bag of words: a word counts as often as it occurs in both). A question with
no reference answer (SQuAD 2.0's unanswerable ones; references that normalise to nothing count
as none) is answered correctly only by the empty answer, for exact match and F1 alike.

With a no-answer probability per question, an answer whose probability exceeds the threshold
is replaced by "no answer"; `best_*` are the scores at the best threshold and the threshold
itself, found by sweeping the questions in order of that probability, as the 2.0 script does.
Scores are percentages (0-100), as SQuAD reports them.
"""

from __future__ import annotations

import collections
import re
import string
from typing import Mapping, Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (SQuAD's normalisation)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(reference: str, prediction: str) -> float:
    return float(normalize_answer(reference) == normalize_answer(prediction))


def f1_score(reference: str, prediction: str) -> float:
    """F1 of the normalised words of `prediction` against those of `reference`."""
    reference_words = normalize_answer(reference).split()
    predicted_words = normalize_answer(prediction).split()
    if not reference_words or not predicted_words:  # no answer: right only if both are empty
        return float(reference_words == predicted_words)
    shared = sum((collections.Counter(reference_words)
                  & collections.Counter(predicted_words)).values())
    if not shared:
        return 0.0
    precision, recall = shared / len(predicted_words), shared / len(reference_words)
    return 2 * precision * recall / (precision + recall)


def question_scores(references: Sequence[str], prediction: str) -> tuple[float, float]:
    """`(exact match, F1)` of one answer: the best over the references ("" when there are
    none that survive normalisation: the question has no answer)."""
    answers = [text for text in references if normalize_answer(text)] or [""]
    return (max(exact_match(a, prediction) for a in answers),
            max(f1_score(a, prediction) for a in answers))


def squad_metrics(references: Mapping[str, Sequence[str]], predictions: Mapping[str, str],
                  no_answer_probabilities: Mapping[str, float] | None = None,
                  threshold: float = 1.0) -> dict:
    """SQuAD 1.1 / 2.0 scores of `predictions` (question id -> answer text, "" for no
    answer) against `references` (question id -> reference answer texts; empty for an
    unanswerable question). A question without a prediction is an error.

    `no_answer_probabilities` (question id -> probability that there is no answer): an answer
    whose probability exceeds `threshold` counts as "no answer".

    Returns:
        {"exact_match", "f1", "total"}; for the answerable and the unanswerable questions (each
        kind present), "has_ans_exact_match", "has_ans_f1", "has_ans_total" and "no_ans_*"; with
        probabilities, "best_exact_match", "best_exact_match_threshold", "best_f1",
        "best_f1_threshold". Percentages.
    """
    missing = [qid for qid in references if qid not in predictions]
    if missing:
        raise ValueError(f"{len(missing)} question(s) have no prediction, e.g. {missing[0]!r}.")
    probabilities = dict(no_answer_probabilities or {})
    exact, f1 = {}, {}
    for qid, answers in references.items():
        exact[qid], f1[qid] = question_scores(answers, predictions[qid])
    has_answer = {qid: any(normalize_answer(a) for a in answers)
                  for qid, answers in references.items()}

    def thresholded(scores):
        return {qid: (float(not has_answer[qid]) if probabilities.get(qid, 0.0) > threshold
                      else score) for qid, score in scores.items()}

    exact_t, f1_t = thresholded(exact), thresholded(f1)
    result = _totals(exact_t, f1_t, list(references))
    for prefix, wanted in (("has_ans_", True), ("no_ans_", False)):
        ids = [qid for qid in references if has_answer[qid] == wanted]
        if ids:
            result.update({prefix + key: value
                           for key, value in _totals(exact_t, f1_t, ids).items()})
    if no_answer_probabilities is not None:
        for name, scores in (("exact_match", exact), ("f1", f1)):
            best, at = _best_threshold(predictions, scores, probabilities, has_answer)
            result[f"best_{name}"], result[f"best_{name}_threshold"] = best, at
    return result


def _totals(exact, f1, ids) -> dict:
    total = len(ids)
    return {"exact_match": 100.0 * sum(exact[q] for q in ids) / total if total else 0.0,
            "f1": 100.0 * sum(f1[q] for q in ids) / total if total else 0.0, "total": total}


def _best_threshold(predictions, scores, probabilities, has_answer) -> tuple[float, float]:
    """The best score over all no-answer thresholds, and that threshold: start with every
    question answered "no answer" (right for the unanswerable ones), then give questions back
    their answers in order of rising no-answer probability, keeping the best running total."""
    running = best = sum(not has_answer[qid] for qid in scores)
    best_at = 0.0
    for qid in sorted(scores, key=lambda q: probabilities.get(q, 0.0)):
        if has_answer[qid]:
            running += scores[qid]
        elif predictions[qid]:
            running -= 1  # an unanswerable question given an answer
        if running > best:
            best, best_at = running, probabilities.get(qid, 0.0)
    return 100.0 * best / len(scores), best_at
