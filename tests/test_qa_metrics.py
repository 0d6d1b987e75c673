"""SQuAD's official metric and the SQuAD readers (issue 54): cases worked by hand, and the 1,407
real SQuAD 2.0 development questions in ../shared/data scored with known predictions against
values computed here another way."""

from __future__ import annotations

import json
import os
import re
import string

import pytest

from electra_tf.data.squad import load_squad
from electra_tf.errors import DataError
from electra_tf.tasks.qa_metrics import f1_score, normalize_answer, question_scores, squad_metrics

REAL = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                    "shared", "data", "squad2_dev_5articles.json")


def test_answers_are_normalised_and_scored_as_squad_does():
    assert normalize_answer("The  Quick, brown fox!") == "quick brown fox"
    assert normalize_answer("An apple a day") == "apple day"
    assert normalize_answer("theory") == "theory"  # articles are whole words only
    # "the cat sat" vs "cat sat down": 2 shared words, precision 2/3, recall 1 -> F1 0.8.
    assert f1_score("the cat sat", "cat sat down") == pytest.approx(0.8)
    assert f1_score("cat cat", "cat") == pytest.approx(2 * 1.0 * 0.5 / 1.5)  # counted words
    assert f1_score("Paris", "London") == 0.0
    # The best over the references; a reference that normalises to nothing is no answer.
    assert question_scores(["Paris", "the city of Paris"], "city of paris") == (1.0, 1.0)
    assert question_scores([], "") == (1.0, 1.0)
    assert question_scores(["a"], "") == (1.0, 1.0)
    assert question_scores([], "Paris") == (0.0, 0.0)


def test_the_no_answer_threshold_and_its_best_value_worked_by_hand():
    references = {"q1": ["Paris"], "q2": [], "q3": ["Rome"], "q4": []}
    predictions = {"q1": "Paris", "q2": "Berlin", "q3": "Milan", "q4": ""}
    probabilities = {"q1": 0.1, "q2": 0.9, "q3": 0.6, "q4": 0.3}
    plain = squad_metrics(references, predictions, probabilities)  # threshold 1.0: answers kept
    assert plain["exact_match"] == 50.0 and plain["total"] == 4  # q1 and q4 right
    assert (plain["has_ans_exact_match"], plain["no_ans_exact_match"]) == (50.0, 50.0)
    # At 0.5, q2 (0.9) and q3 (0.6) become "no answer": q2 right, q3 wrong.
    assert squad_metrics(references, predictions, probabilities, 0.5)["exact_match"] == 75.0
    # Sweep by rising probability from "all no answer" (2 right): q1 +1 -> 3 (best, at 0.1),
    # q4 0, q3 +0, q2 -1.
    assert plain["best_exact_match"] == 75.0 and plain["best_exact_match_threshold"] == 0.1
    with pytest.raises(ValueError, match="no prediction"):
        squad_metrics(references, {"q1": "Paris"})


def _independent_f1(reference: str, prediction: str) -> float:
    """F1 by another route: the normalisation restated, the shared words counted by walking
    two sorted lists."""
    def words(text):
        text = text.lower().translate(str.maketrans("", "", string.punctuation))
        return sorted(re.sub(r"\b(a|an|the)\b", " ", text).split())

    a, b = words(reference), words(prediction)
    if not a or not b:
        return float(a == b)
    i = j = shared = 0
    while i < len(a) and j < len(b):
        if a[i] == b[j]:
            shared, i, j = shared + 1, i + 1, j + 1
        elif a[i] < b[j]:
            i += 1
        else:
            j += 1
    return 0.0 if not shared else 2 * shared / (len(a) + len(b))


def test_real_squad2_questions_with_known_predictions():
    questions = load_squad(REAL)
    with open(REAL, encoding="utf-8") as f:
        raw = [qa for article in json.load(f)["data"] for p in article["paragraphs"]
               for qa in p["qas"]]
    impossible = sum(qa["is_impossible"] for qa in raw)
    assert len(questions) == len(raw) == 1407 and 0 < impossible < 1407
    assert sum(questions.answerable) == 1407 - impossible
    references = questions.references()

    # The first reference answer (or no answer): everything right.
    first = {qid: (answers[0] if answers else "") for qid, answers in references.items()}
    perfect = squad_metrics(references, first)
    assert (perfect["exact_match"], perfect["f1"]) == (100.0, 100.0)
    assert (perfect["has_ans_total"], perfect["no_ans_total"]) == (1407 - impossible, impossible)

    # "No answer" everywhere: right exactly on the unanswerable questions.
    empty = squad_metrics(references, {qid: "" for qid in references})
    assert empty["exact_match"] == pytest.approx(100.0 * impossible / 1407)
    assert (empty["has_ans_f1"], empty["no_ans_f1"]) == (0.0, 100.0)

    # Each answer's span extended by the context's next word: F1 against every reference,
    # computed the other way; unanswerable questions answered "no answer".
    shifted = {}
    for qid, context, answers in zip(questions.ids, questions.contexts, questions.answers):
        if not answers:
            shifted[qid] = ""
            continue
        text, start = answers[0]
        end = start + len(text)
        following = context[end:].split()
        shifted[qid] = context[start:end] + (" " + following[0] if following else "")
    expected = [max(_independent_f1(r, shifted[qid]) for r in refs) if refs else 1.0
                for qid, refs in references.items()]
    scores = squad_metrics(references, shifted)
    assert scores["f1"] == pytest.approx(100.0 * sum(expected) / 1407, abs=1e-9)
    assert 50.0 < scores["has_ans_f1"] < 100.0 and scores["no_ans_f1"] == 100.0

    # No-answer probabilities that separate the two kinds perfectly: the best threshold gets
    # everything right even though every unanswerable question was given an answer.
    wrong = dict(first, **{qid: "Normandy" for qid, refs in references.items() if not refs})
    probabilities = {qid: 0.0 if refs else 1.0 for qid, refs in references.items()}
    best = squad_metrics(references, wrong, probabilities)
    assert best["no_ans_exact_match"] == 0.0
    assert (best["best_exact_match"], best["best_exact_match_threshold"]) == (100.0, 0.0)


def test_squad_files_and_json_lines_read_with_one_line_errors(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text(json.dumps({"id": "a", "question": "Who?", "context": "Ann met Bo.",
                                "answers": [{"text": "Ann", "answer_start": 0}]}) + "\n"
                    + json.dumps({"question": "Why?", "context": "No reason given.",
                                  "answers": []}) + "\n", encoding="utf-8")
    data = load_squad(str(path))
    assert data.ids == ["a", "line-2"] and data.answers == [[("Ann", 0)], []]
    path.write_text(json.dumps({"id": "q7", "question": "Who?", "context": "Ann met Bo.",
                                "answers": [{"text": "Bo", "answer_start": 3}]}) + "\n",
                    encoding="utf-8")
    with pytest.raises(DataError, match="question q7: the answer 'Bo' is not at answer_start 3"):
        load_squad(str(path))
    path.write_text(json.dumps({"id": "q8", "question": "Who?", "context": " ",
                                "answers": []}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="question q8 has an empty context"):
        load_squad(str(path))
    (tmp_path / "bad.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(DataError, match="not SQuAD JSON"):
        load_squad(str(tmp_path / "bad.json"))
    with pytest.raises(DataError, match="not found"):
        load_squad(str(tmp_path / "missing.json"))
