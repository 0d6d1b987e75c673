"""Extractive question answering data: SQuAD 1.1 / 2.0 JSON, JSON lines, and `tfds:squad`.

    SQuAD JSON   {"version", "data": [{"title", "paragraphs": [{"context", "qas": [{"id",
                 "question", "answers": [{"text", "answer_start"}], "is_impossible"}]}]}]}
    JSON lines   {"id"?, "question", "context", "answers": [{"text", "answer_start"}]} per line
                 (no answers, or "is_impossible": true: unanswerable)

Every reference answer is checked against its context (`context[answer_start:][:len(text)]`
must be the text): a mismatch is one error line naming the question, as is an empty context or
question.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Optional

from electra_tf.data.text_tables import read_decoded_text, text_lines
from electra_tf.errors import DataError


@dataclasses.dataclass
class QuestionsAndContexts:
    """Questions about contexts, with their reference answers.

    Attributes:
        ids: N question ids (strings).
        questions, contexts: N strings each.
        answers: N lists of `(text, start)` reference answers (character offsets into the
            context); an empty list: the question has no answer in its context (SQuAD 2.0).
        source: where they came from.
    """

    ids: list
    questions: list
    contexts: list
    answers: list
    source: str = ""

    def __len__(self):
        return len(self.ids)

    @property
    def answerable(self) -> list[bool]:
        return [bool(answers) for answers in self.answers]

    def references(self) -> dict[str, list[str]]:
        """`{id: [reference texts]}`, what `squad_metrics` scores against."""
        return {qid: [text for text, _ in answers] for qid, answers in zip(self.ids,
                                                                          self.answers)}

    def subset(self, indices) -> "QuestionsAndContexts":
        return QuestionsAndContexts(*([field[i] for i in indices] for field in (
            self.ids, self.questions, self.contexts, self.answers)), source=self.source)


def load_squad(path: Optional[str], split: str = "train") -> QuestionsAndContexts:
    """Loads SQuAD JSON (1.1 or 2.0), JSON lines, or (`path` None or `tfds:NAME`) a tfds
    dataset (`squad`, `squad/v2.0`; online). `{split}` in `path` is replaced by `split`.

    Raises:
        DataError: a missing or malformed file, an empty context or question, an answer that
            is not where its `answer_start` says (naming the question).
    """
    if path is None or path.startswith("tfds:"):
        return _load_tfds(path[len("tfds:"):] if path else "squad", split)
    path = path.replace("{split}", split)
    if not os.path.isfile(path):
        raise DataError(f"Question-answering data not found: {path!r}. Give a SQuAD JSON file, "
                        "a JSON-lines file, or tfds:squad online.")
    text = read_decoded_text(path)
    if path.endswith(".jsonl"):
        records = [_json_line(path, number, line)
                   for number, line in enumerate(text_lines(text), 1) if line.strip()]
    else:
        records = list(_squad_records(path, text))
    if not records:
        raise DataError(f"{path} holds no questions.")
    return _checked(records, path)


def _json_line(path, number, line) -> dict:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        record = None
    if not isinstance(record, dict) or not {"question", "context"} <= set(record):
        raise DataError(f"{path} line {number}: give one JSON object per line with \"question\", "
                        "\"context\" and \"answers\": [{\"text\", \"answer_start\"}].")
    record.setdefault("id", f"line-{number}")
    return record


def _squad_records(path, text):
    try:
        document = json.loads(text)
        articles = document["data"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise DataError(f"{path} is not SQuAD JSON ({{\"data\": [articles]}}); for one question "
                        "per line, name the file .jsonl.") from None
    for article in articles:
        for paragraph in article.get("paragraphs", []):
            for qa in paragraph.get("qas", []):
                yield dict(qa, context=paragraph.get("context", ""))


def _checked(records, source) -> QuestionsAndContexts:
    result = QuestionsAndContexts([], [], [], [], source)
    for record in records:
        qid, context = str(record.get("id")), record.get("context") or ""
        question = (record.get("question") or "").strip()
        if not context.strip() or not question:
            raise DataError(f"{source}: question {qid} has an empty "
                            f"{'context' if question else 'question'}.")
        answers = [] if record.get("is_impossible") else record.get("answers") or []
        checked = []
        for answer in answers:
            text, start = answer.get("text", ""), answer.get("answer_start")
            if not isinstance(start, int) or context[start:start + len(text)] != text:
                found = context[start:start + len(text)] if isinstance(start, int) else None
                raise DataError(f"{source}: question {qid}: the answer {text!r} is not at "
                                f"answer_start {start} of its context (found {found!r}); fix "
                                "answer_start (a character offset).")
            checked.append((text, start))
        result.ids.append(qid)
        result.questions.append(question)
        result.contexts.append(context)
        result.answers.append(checked)
    return result


def _load_tfds(name, split) -> QuestionsAndContexts:
    import tensorflow_datasets as tfds

    try:
        dataset = tfds.load(name, split=split)
    except Exception as err:  # tfds raises many types: offline, unknown name, unknown split
        raise DataError(f"Cannot load tfds:{name} split {split!r} ({type(err).__name__}: {err}). "
                        "Offline? Pass a SQuAD JSON file instead.") from None
    records = []
    for example in dataset.as_numpy_iterator():
        answers = example["answers"]
        records.append({
            "id": example["id"].decode(), "question": example["question"].decode(),
            "context": example["context"].decode(),
            "is_impossible": bool(example.get("is_impossible", False)),
            "answers": [{"text": t.decode(), "answer_start": int(s)}
                        for t, s in zip(answers["text"], answers["answer_start"])]})
    return _checked(records, f"tfds:{name} [{split}]")
