"""Token classification (named entities): the readers and tag schemes, the word/piece
alignment, the CoNLL metrics against seqeval, and fine-tuning + evaluating a tagger."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from serving_helpers import serve_without_electra_tf

from electra_tf.cli import main
from electra_tf.data.tagging import TaggedSentences, entity_spans, load_tagged_sentences, to_iob2
from electra_tf.data.tagging_features import IGNORED, TaggingPreprocessor
from electra_tf.data.tokenizer import WordPieceTokenizer
from electra_tf.data.vocab import SPECIAL_TOKENS
from electra_tf.errors import DataError
from electra_tf.tasks.tagging_metrics import tagging_metrics


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_conll_columns_jsonl_and_the_three_schemes_read_as_iob2(tmp_path):
    conll = write(tmp_path / "train.txt", "-DOCSTART- -X- O O\n\nEU NNP B-NP I-ORG\n"
                  "rejects VBZ B-VP O\nPeter NNP B-NP I-PER\nBlackburn NNP I-NP I-PER\n\n"
                  "Paris NNP B-NP I-LOC\nBerlin NNP B-NP B-LOC\n")
    sentences = load_tagged_sentences("conll", str(tmp_path / "{split}.txt"), "train",
                                      scheme="iob1")
    assert sentences.words == [["EU", "rejects", "Peter", "Blackburn"], ["Paris", "Berlin"]]
    assert sentences.tags == [["B-ORG", "O", "B-PER", "I-PER"], ["B-LOC", "B-LOC"]]
    assert sentences.tag_names() == ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    assert to_iob2(["S-PER", "B-LOC", "E-LOC", "S-LOC", "O", "I-ORG"], "bioes", "x") == [
        "B-PER", "B-LOC", "I-LOC", "B-LOC", "O", "B-ORG"]
    jsonl = write(tmp_path / "data.jsonl", json.dumps({"tokens": ["Ann", "runs"],
                                                       "tags": ["B-PER", "O"]}) + "\n")
    assert load_tagged_sentences("jsonl", jsonl, "train").tags == [["B-PER", "O"]]
    # A slice of a split, as the CoNLL development split is carved (valid[:50%]).
    assert load_tagged_sentences("conll", conll, "train[1:]", scheme="iob1").words == [
        ["Paris", "Berlin"]]
    assert load_tagged_sentences("conll", conll, "train[:50%]", scheme="iob1").words == [
        ["EU", "rejects", "Peter", "Blackburn"]]


@pytest.mark.parametrize("content, says", [
    ("EU B-ORG\nrejects X-TAG\n", "line 1: 'X-TAG' is not a tag of the IOB2 scheme"),
    ("EU B-ORG\nrejects\n", "line 2: 'rejects' has no tag column"),
    ("\n\n", "holds no tagged sentences"),
    ("EU B-ORG 0\n", "'0' is not a tag of the IOB2 scheme (O, or B/I-TYPE); set "
                     "task.tag_scheme, or task.tag_column"),
])
def test_bad_tagged_files_are_one_clear_line(tmp_path, content, says):
    path = write(tmp_path / "bad.txt", content)
    with pytest.raises(DataError, match=says.replace("(", r"\(").replace(")", r"\)")):
        load_tagged_sentences("conll", path, "train")


def test_entities_are_read_as_conlleval_and_scored_as_seqeval():
    seqeval = pytest.importorskip("seqeval.metrics")
    # An I- with no B-, adjacent entities of one type, entities at the sentence end.
    assert entity_spans(["I-PER", "I-PER", "B-PER", "O", "I-LOC", "B-LOC", "I-ORG"]) == [
        ("PER", 0, 2), ("PER", 2, 3), ("LOC", 4, 5), ("LOC", 5, 6), ("ORG", 6, 7)]
    rng = random.Random(0)
    tags = ["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "I-ORG", "B-ORG"]
    for _ in range(200):
        lengths = [rng.randint(1, 8) for _ in range(rng.randint(1, 5))]
        truth = [[rng.choice(tags) for _ in range(n)] for n in lengths]
        predicted = [[rng.choice(tags) for _ in range(n)] for n in lengths]
        ours = tagging_metrics(truth, predicted)
        for key, theirs in (("f1", seqeval.f1_score), ("precision", seqeval.precision_score),
                            ("recall", seqeval.recall_score)):
            assert ours[key] == pytest.approx(theirs(truth, predicted, zero_division=0),
                                              abs=1e-12), (truth, predicted)
    perfect = tagging_metrics([["B-PER", "I-PER", "O"]], [["B-PER", "I-PER", "O"]])
    assert (perfect["f1"], perfect["token_accuracy"], perfect["per_type"]["PER"]["support"]) \
        == (1.0, 1.0, 1)


def test_long_sentences_become_windows_that_predict_every_word_once():
    vocabulary = [*SPECIAL_TOKENS, "new", "york", "##er", "is", "big", "a", "city"]
    preprocessor = TaggingPreprocessor(WordPieceTokenizer(vocabulary), max_seq_length=6)
    words = ["New", "Yorker", "is", "a", "big", "city", "in", "New", "York"]
    tags = ["B-MISC", "I-MISC", "O", "O", "O", "O", "O", "B-LOC", "I-LOC"]
    sentences = TaggedSentences([words], [tags], "fixture")
    names = ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
    windows = preprocessor.windows(sentences, names)
    assert all(len(ids) <= 6 for ids in windows.token_ids) and len(windows.token_ids) == 3
    # "Yorker" is two pieces: only the first carries its tag; [CLS]/[SEP] are ignored.
    first = windows.labels[0]
    assert first[0] == first[-1] == IGNORED and list(first[1:-1]) == [3, 4, IGNORED, 0]
    assert sum(len(starts) for starts in windows.starts) == len(words)
    # Predicting each window's own labels gives back the words' tags, in order.
    predicted = [np.maximum(labels, 0) for labels in windows.labels]
    assert preprocessor.word_predictions(sentences, windows, predicted, names) == [tags]
    unknown = TaggedSentences([["Ann"]], [["B-PER"]], "test data")
    with pytest.raises(DataError, match="tag 'B-PER', which the training data never had"):
        preprocessor.windows(unknown, names)
    assert list(preprocessor.windows(unknown, names, strict=False).labels[0]) == [-1, -1, -1]
    with pytest.raises(DataError, match="word 1 .* tokenizes to nothing"):
        preprocessor.windows(TaggedSentences([["\x00"]], [["O"]], "odd"), names)


def _entity_sentences(count, seed):
    """Sentences in which who and where are learnable from the words themselves."""
    rng = random.Random(seed)
    people, places = ["anna", "peter", "maria", "john"], ["paris", "berlin", "london", "rome"]
    lines = []
    for _ in range(count):
        person, place = rng.choice(people), rng.choice(places)
        words, tags = ([person, "smith", "visited", place, "."],
                       ["B-PER", "I-PER", "O", "B-LOC", "O"])
        lines += [f"{w} {t}" for w, t in zip(words, tags)] + [""]
    return "\n".join(lines) + "\n"


@pytest.mark.slow(seconds=45)
def test_a_tagger_fine_tunes_evaluates_exports_and_serves_entities(tiny_pretrained_run, tmp_path,
                                                                  capsys):
    write(tmp_path / "train.txt", _entity_sentences(160, seed=0))
    write(tmp_path / "test.txt", _entity_sentences(40, seed=1))
    out = tmp_path / "ner"
    command = ["finetune", "--task", "conll", "--data", str(tmp_path / "{split}.txt"),
               "--pretrained", tiny_pretrained_run, "--out-dir", str(out), "--quiet"]
    for setting in ("preprocessing.max_seq_length=32", "training.epochs=3",
                    "training.batch_size=16", "training.learning_rate=2e-3",
                    "training.layerwise_decay=1.0"):
        command += ["--set", setting]
    assert main(command) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["tag_names"] == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    validation = json.loads((out / "metrics.json").read_text())["validation"]
    assert validation["examples"] == 16 and validation["f1"] > 0.9, validation
    assert main(["evaluate", "--model", str(out), "--split", "test"]) == 0
    test = json.loads((out / "metrics.json").read_text())["test"]
    assert test["examples"] == 40 and test["f1"] > 0.9 and set(test["per_type"]) == {"LOC", "PER"}

    # Exported, it answers raw text from a process that cannot import electra_tf: the words
    # and entities with character offsets (accents, emoji, runs of spaces, a text longer than
    # one window), and the tags the Python path gives for the same words.
    assert main(["export", "--model", str(out), "--out", str(tmp_path / "export")]) == 0
    texts = ["Anna  Smith visited Paris.", "", "😀 maría smith  visited rome , then berlin ."
             + " peter smith visited london ." * 4, "Société Générale"]
    served = serve_without_electra_tf(tmp_path / "export", {"text": texts}, tmp_path)
    assert served["word_count"] == [5, 0, 29, 2]
    for i, text in enumerate(texts):
        count = served["word_count"][i]
        words = served["words"][i][:count]
        assert [text[s:e] for s, e in zip(served["word_start"][i][:count],
                                          served["word_end"][i][:count])] == words
        entities = served["entity_text"][i][:served["entity_count"][i]]
        assert [text[s:e] for s, e in zip(served["entity_start"][i], served["entity_end"][i])
                ][:len(entities)] == entities
    assert served["words"][0][:5] == ["Anna", "Smith", "visited", "Paris", "."]
    assert served["entity_text"][0][:2] == ["Anna  Smith", "Paris"]
    assert served["entity_type"][0][:2] == ["PER", "LOC"]
    assert served["entity_start"][0][:2] == [0, 20] and served["entity_end"][0][:2] == [11, 25]
    assert "maría smith" in served["entity_text"][2] and "berlin" in served["entity_text"][2]
    # Windows of 32 pieces: the third text is cut between words, as in training and scoring.
    from electra_tf.pretrained import load_finetuned

    model, preprocessor, _, _ = load_finetuned(str(out))
    words = [served["words"][i][:served["word_count"][i]] for i in range(len(texts))]
    sentences = TaggedSentences([w for w in words if w], [["O"] * len(w) for w in words if w])
    windows = preprocessor.windows(sentences)
    assert len(windows.token_ids) > 4  # the long text needed more than one window
    logits = [model({"token_ids": ids[None]}, training=False).numpy()[0]
              for ids in windows.token_ids]
    expected = preprocessor.word_predictions(sentences, windows,
                                             [np.argmax(x, axis=-1) for x in logits],
                                             model.tag_names)
    assert [served["tags"][i][:len(w)] for i, w in enumerate(words) if w] == expected

    # `predict` prints the entities, from the export or the run folder alike.
    (tmp_path / "texts.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    for model_path in (tmp_path / "export", out):
        capsys.readouterr()
        assert main(["predict", "--model", str(model_path), "--file",
                     str(tmp_path / "texts.txt"), "--jsonl", "--quiet"]) == 0
        printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [[e["text"] for e in p["entities"]] for p in printed] == [
            served["entity_text"][i][:served["entity_count"][i]] for i in range(len(texts))]
        assert printed[0]["entities"][0] == {"text": "Anna  Smith", "type": "PER", "start": 0,
                                             "end": 11, "score": pytest.approx(
                                                 served["entity_score"][0][0], abs=1e-5)}
    assert main(["predict", "--model", str(out), "Maria Smith visited Rome ."]) == 0
    assert capsys.readouterr().out.startswith("PER 'Maria Smith' [0:11]; LOC 'Rome' [20:24]\t")

