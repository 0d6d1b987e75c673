"""Question answering features (issue 54): windows over long contexts with character offsets,
answer labels, the max-context rule, and decoding logits back to the exact answer text."""

from __future__ import annotations

import numpy as np
import pytest
from serving_helpers import serve_without_electra_tf

from electra_tf.data.qa_features import QAPreprocessor, best_answers
from electra_tf.data.squad import QuestionsAndContexts
from electra_tf.data.tokenizer import WordPieceTokenizer
from electra_tf.data.vocab import SPECIAL_TOKENS

WORDS = ["what", "is", "the", "code", "?", "we", "met", "in", "cafe", "paris", ".", "it",
         "was", "late", "x", "##y", "##z", "and", "cold", ","]


def _data():
    filler = "We met in Paris . It was late and cold . " * 6
    context = filler + "The code is XYZ , Café Paris ." + " It was late ." * 3
    start = context.index("XYZ , Café")
    return QuestionsAndContexts(
        ["q1", "q2"], ["What is the code?", "What is the code?"], [context, "It was late ."],
        [[("XYZ , Café", start)], []])


def test_long_contexts_become_overlapping_windows_that_map_back_to_the_text():
    tokenizer = WordPieceTokenizer(list(SPECIAL_TOKENS) + WORDS)
    preprocessor = QAPreprocessor(tokenizer, max_seq_length=24, max_question_pieces=4,
                                  doc_stride=8)
    data = _data()
    windows = preprocessor.windows(data)
    ids = preprocessor.special_ids
    first = [w for w, k in enumerate(windows.example) if k == 0]
    assert len(first) > 3 and windows.example.count(1) == 1
    question = tokenizer.tokenize(["What is the code?"]).to_list()[0][:4]
    for w in first:
        tokens = list(windows.token_ids[w])
        assert len(tokens) <= 24 and tokens[:6] == [ids.cls, *question, ids.sep]
        assert tokens[-1] == ids.sep and windows.context_start[w] == 6
    # Consecutive windows start 8 context pieces apart: their character offsets overlap.
    assert windows.char_starts[first[1]][0] == windows.char_starts[first[0]][8]
    # Every context piece is the best-context piece of exactly one window.
    starts = np.concatenate([windows.char_starts[w][windows.max_context[w]] for w in first])
    assert sorted(starts) == sorted(set(starts)) and len(starts) == len(set(
        np.concatenate([windows.char_starts[w] for w in first])))
    # The windows that hold the whole answer point at it; the others (and q2) at [CLS].
    labelled = [w for w in first if windows.positions[w] != (0, 0)]
    assert labelled and windows.positions[windows.example.index(1)] == (0, 0)
    context = data.contexts[0]
    for w in labelled:
        s, e = (p - windows.context_start[w] for p in windows.positions[w])
        assert context[windows.char_starts[w][s]:windows.char_ends[w][e]] == "XYZ , Café"


def test_logits_decode_to_the_exact_text_and_a_no_answer_score():
    tokenizer = WordPieceTokenizer(list(SPECIAL_TOKENS) + WORDS)
    preprocessor = QAPreprocessor(tokenizer, max_seq_length=24, max_question_pieces=4,
                                  doc_stride=8)
    data = _data()
    windows = preprocessor.windows(data)
    logits = [np.zeros((len(t), 2)) for t in windows.token_ids]
    answer_window = next(w for w in range(len(logits)) if windows.positions[w] != (0, 0)
                         and windows.max_context[w][windows.positions[w][0]
                                                    - windows.context_start[w]])
    start, end = windows.positions[answer_window]
    logits[answer_window][start, 0] = logits[answer_window][end, 1] = 5.0
    q2 = windows.example.index(1)
    logits[q2][0] = 4.0  # [CLS]: no answer
    answers, no_answer = best_answers(data, windows, logits)
    assert answers["q1"] == "XYZ , Café" and no_answer["q1"] == -10.0
    assert no_answer["q2"] > 0
    # An end before its start (9 + 8 here), or a span longer than allowed ("XYZ , Café" is 5
    # pieces), is never chosen: of the one-piece spans, "Café" (9 + 5) beats "X" (5 + 8).
    logits[answer_window][start, 1] = 8.0
    logits[answer_window][end, 0] = 9.0
    answers, _ = best_answers(data, windows, logits, max_answer_pieces=1)
    assert answers["q1"] == "Café"


def _reading_questions(path, seed, count):
    """A learnable reading task: "what is the rating ?" about four filler sentences, with the
    answer in "my rating is N ." in three questions of four, else unanswerable."""
    import json
    import random

    rng = random.Random(seed)
    filler = ["the film was good .", "i liked the acting .", "the plot was slow .",
              "it was a long movie .", "the music was great .", "we saw it last night ."]
    with open(path, "w", encoding="utf-8") as f:
        for i in range(count):
            parts = rng.sample(filler, 4)
            answers = []
            if rng.random() < 0.75:
                rating = rng.choice(["seven", "eight", "nine", "two", "three", "ten"])
                parts.insert(rng.randrange(5), f"my rating is {rating} .")
            context = " ".join(parts)
            if "rating is" in context:
                answers = [{"text": rating, "answer_start": context.index("rating is ") + 10}]
            f.write(json.dumps({"id": f"q{i}", "question": "what is the rating ?",
                                "context": context, "answers": answers}) + "\n")


@pytest.mark.slow(seconds=30)
def test_a_reader_fine_tunes_over_windows_and_scores_with_the_squad_metric(tiny_pretrained_run,
                                                                           tmp_path, capsys):
    import json

    from electra_tf.cli import main

    _reading_questions(tmp_path / "train.jsonl", 0, 240)
    _reading_questions(tmp_path / "test.jsonl", 1, 60)
    out = tmp_path / "reader"
    command = ["finetune", "--task", "squad", "--data", str(tmp_path / "{split}.jsonl"),
               "--pretrained", tiny_pretrained_run, "--out-dir", str(out), "--quiet"]
    # 32 pieces with an 8-piece stride: every context spans several windows.
    for setting in ("preprocessing.max_seq_length=32", "preprocessing.max_question_pieces=8",
                    "preprocessing.doc_stride=8", "training.epochs=4", "training.batch_size=16",
                    "training.learning_rate=2e-3", "training.layerwise_decay=1.0"):
        command += ["--set", setting]
    assert main(command) == 0
    validation = json.loads((out / "metrics.json").read_text())["validation"]
    assert validation["windows"] > validation["examples"] > 0
    assert main(["evaluate", "--model", str(out), "--split", "test"]) == 0
    test = json.loads((out / "metrics.json").read_text())["test"]
    assert test["total"] == 60 and test["has_ans_total"] + test["no_ans_total"] == 60
    assert test["exact_match"] > 90 and test["has_ans_f1"] > 90 and test["no_ans_exact_match"] > 80

    # Exported, it answers raw question/context pairs where electra_tf cannot be imported,
    # as the Python decoding does -- including an answer only the second window holds.
    assert main(["export", "--model", str(out), "--out", str(tmp_path / "export")]) == 0
    from electra_tf.data.squad import load_squad

    test_data = load_squad(str(tmp_path / "test.jsonl"))
    long_context = ("the film was good . i liked the acting . the plot was slow . it was a "
                    "long movie . the music was great . my  rating is nine .")
    questions = [*test_data.questions, "what is the rating ?"]
    contexts = [*test_data.contexts, long_context]
    served = serve_without_electra_tf(tmp_path / "export",
                                      {"question": questions, "context": contexts}, tmp_path)
    assert served["answer"][-1] == "nine"
    assert long_context[served["answer_start"][-1]:served["answer_end"][-1]] == "nine"
    from electra_tf.pretrained import load_finetuned
    from electra_tf.tasks import get_task

    model, preprocessor, _, config = load_finetuned(str(out))
    task = get_task(config.task)
    windows = preprocessor.windows(test_data)
    assert any(windows.example.count(k) > 1 and test_data.answers[k] for k in range(60))
    logits = [model({"token_ids": ids[None], "segment_ids": (np.arange(len(ids)) >= start)
                     .astype("int32")[None]}, training=False).numpy()[0]
              for ids, start in zip(windows.token_ids, windows.context_start)]
    answers, no_answer = best_answers(test_data, windows, logits)
    expected = [("" if no_answer[q] > task.config.no_answer_threshold else answers[q])
                for q in test_data.ids]
    assert served["answer"][:60] == expected
    np.testing.assert_allclose(served["no_answer_score"][:60],
                               [no_answer[q] for q in test_data.ids], atol=1e-4)

    # `predict` reads JSON lines (or QUESTION<TAB>CONTEXT), from the export or the run.
    (tmp_path / "questions.jsonl").write_text(json.dumps(
        {"question": "what is the rating ?", "context": long_context}) + "\n"
        + "what is the rating ?\tthe music was great .\n", encoding="utf-8")
    for model_path in (tmp_path / "export", out):
        capsys.readouterr()
        assert main(["predict", "--model", str(model_path), "--file",
                     str(tmp_path / "questions.jsonl"), "--jsonl", "--quiet"]) == 0
        printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert printed[0]["answer"] == "nine" and printed[1]["answer"] == ""



def test_a_question_that_leaves_no_room_for_the_context_is_one_line(tiny_pretrained_run, tmp_path,
                                                                     capsys):
    from electra_tf.cli import main

    _reading_questions(tmp_path / "train.jsonl", 0, 20)
    assert main(["finetune", "--task", "squad", "--data", str(tmp_path / "{split}.jsonl"),
                 "--pretrained", tiny_pretrained_run, "--out-dir", str(tmp_path / "out"),
                 "--set", "preprocessing.max_seq_length=32"]) == 2  # 64 question pieces
    error = capsys.readouterr().err.strip()
    assert "preprocessing.max_question_pieces" in error and "\n" not in error
