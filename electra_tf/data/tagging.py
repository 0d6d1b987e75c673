"""Tagged sentences for token classification (named entities): reading CoNLL-style column files,
JSONL and `tfds:conll2003`, and the tag schemes.

Every reader returns `TaggedSentences` in IOB2 (`B-TYPE` opens an entity, `I-TYPE` continues it,
`O` is outside), whatever scheme the file uses:

    IOB1   I-TYPE everywhere inside; B-TYPE only where an entity follows one of the same type
    IOB2   as above (CoNLL-2003 as tfds and most copies give it)
    BIOES  S-TYPE a one-word entity, E-TYPE the last word of a longer one

`entity_spans` reads entities back with conlleval's conventions (an I-TYPE after O or after
another type opens an entity), so scores match the CoNLL evaluation script and seqeval.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Optional, Sequence

from electra_tf.data.text_tables import text_lines
from electra_tf.errors import DataError

TAG_SCHEMES = ("iob1", "iob2", "bioes")
_PREFIXES = {"iob1": "BI", "iob2": "BI", "bioes": "BIES"}


@dataclasses.dataclass
class TaggedSentences:
    """Sentences as lists of words, one IOB2 tag per word.

    Attributes:
        words: N sentences, each a list of words (strings without whitespace).
        tags: N lists of IOB2 tags, `len(tags[i]) == len(words[i])`.
        source: where they came from (for logs and metrics.json).
    """

    words: list
    tags: list
    source: str = ""

    def __post_init__(self):
        if len(self.words) != len(self.tags):
            raise ValueError(f"{len(self.words)} sentences but {len(self.tags)} tag lists.")

    def __len__(self):
        return len(self.words)

    def subset(self, indices) -> "TaggedSentences":
        return TaggedSentences([self.words[i] for i in indices], [self.tags[i] for i in indices],
                               self.source)

    def tag_names(self) -> list[str]:
        """The label set: "O", then every B-/I- tag of each entity type seen, sorted by type."""
        types = sorted({tag[2:] for sentence in self.tags for tag in sentence if tag != "O"})
        return ["O"] + [f"{prefix}-{kind}" for kind in types for prefix in "BI"]

    def entity_counts(self) -> dict:
        counts: dict = {}
        for sentence in self.tags:
            for kind, _, _ in entity_spans(sentence):
                counts[kind] = counts.get(kind, 0) + 1
        return dict(sorted(counts.items()))


def load_tagged_sentences(name: str, data: Optional[str], split: str, *, tag_column: int = -1,
                          scheme: str = "iob2") -> TaggedSentences:
    """The `split` of a tagging task's data.

    Args:
        name: "conll" (whitespace-separated columns, word first, one word per line, a blank line
            between sentences, `-DOCSTART-` lines skipped; two columns "word TAB tag" are the
            same format), "jsonl" (one `{"tokens": [...], "tags": [...]}` per line), or "tfds"
            (`tfds:conll2003`, downloaded by TFDS).
        data: the file; `{split}` in it is replaced by the split name (`conll/{split}.txt`).
        tag_column: the column that holds the tag, counted from 0 (-1: the last).
        scheme: the file's tag scheme, one of `TAG_SCHEMES`; the result is IOB2.

    Raises:
        DataError: a missing or empty file, a malformed line, a tag outside the scheme (each
            with its line number and what to do).
    """
    if scheme not in TAG_SCHEMES:
        raise DataError(f"task.tag_scheme must be one of {TAG_SCHEMES}, got {scheme!r}.")
    split, part = _sliced(split)
    if data is None and name == "conll":
        data = "tfds:conll2003"  # the online source, as tfds:imdb_reviews is for imdb
    if (data or "").startswith("tfds:"):
        return part(_load_tfds(data[len("tfds:"):], split))
    if data is None:
        raise DataError(f"The {name} task needs its data file: give --data PATH (use {{split}} "
                        "in it for train/validation/test files).")
    path = data.replace("{split}", split)
    if not os.path.isfile(path):
        raise DataError(f"Tagged data {path!r} does not exist; give --data PATH (a CoNLL column "
                        "file or JSONL, {split} in the path for each split).")
    reader = _read_jsonl if name == "jsonl" else _read_columns
    sentences = reader(path, tag_column, scheme)
    if not sentences.words:
        raise DataError(f"{path} holds no tagged sentences (one 'word ... tag' per line, a blank "
                        "line between sentences).")
    return part(sentences)


def _sliced(split: str):
    """`("valid", take)` for "valid[:50%]", "valid[1625:]" or "valid" (TFDS's slicing syntax):
    `take(sentences)` keeps that part, in file order."""
    name, bracket, rest = split.partition("[")
    if not bracket:
        return split, lambda sentences: sentences
    try:
        start, stop = (None if not bound.strip() else bound.strip()
                       for bound in rest.rstrip("]").split(":"))
    except ValueError:
        raise DataError(f"Split {split!r}: write a slice as NAME[START:STOP], e.g. "
                        "valid[:50%] or valid[1625:].") from None

    def take(sentences):
        def index(bound):
            if bound is None:
                return None
            if bound.endswith("%"):
                return round(len(sentences) * float(bound[:-1]) / 100)
            return int(bound)

        try:
            kept = range(len(sentences))[index(start):index(stop)]
        except ValueError:
            raise DataError(f"Split {split!r}: the bounds must be integers or percentages.") \
                from None
        part = sentences.subset(kept)
        part.source = f"{sentences.source}[{start or ''}:{stop or ''}]"
        return part

    return name, take


def _read_columns(path: str, tag_column: int, scheme: str) -> TaggedSentences:
    words, tags, sentence, sentence_tags, first_line = [], [], [], [], 0

    def close():
        if sentence:
            tags.append(to_iob2(sentence_tags, scheme, f"{path} line {first_line}"))
            words.append(list(sentence))
        sentence.clear()
        sentence_tags.clear()

    with open(path, encoding="utf-8", errors="strict") as f:
        try:
            lines = text_lines(f.read())
        except UnicodeDecodeError as err:
            raise DataError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start}); "
                            "save it as UTF-8.") from None
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields or fields[0] == "-DOCSTART-":
            close()
            continue
        if len(fields) < 2:
            raise DataError(f"{path} line {number}: {line!r} has no tag column; each line must "
                            "be 'WORD ... TAG' (a blank line between sentences).")
        try:
            tag = fields[tag_column]
        except IndexError:
            raise DataError(f"{path} line {number} has {len(fields)} columns, no column "
                            f"{tag_column}; set task.tag_column.") from None
        if not sentence:
            first_line = number
        sentence.append(fields[0])
        sentence_tags.append(tag)
    close()
    return TaggedSentences(words, tags, path)


def _read_jsonl(path: str, tag_column: int, scheme: str) -> TaggedSentences:
    words, tags = [], []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                tokens, labels = record["tokens"], record["tags"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise DataError(f"{path} line {number}: not a JSON object with \"tokens\" and "
                                "\"tags\" lists.") from None
            if len(tokens) != len(labels) or not tokens:
                raise DataError(f"{path} line {number}: {len(tokens)} tokens but {len(labels)} "
                                "tags; give one tag per token.")
            words.append([str(token) for token in tokens])
            tags.append(to_iob2([str(tag) for tag in labels], scheme, f"{path} line {number}"))
    return TaggedSentences(words, tags, path)


def _load_tfds(name: str, split: str) -> TaggedSentences:
    import tensorflow_datasets as tfds

    tfds_split = {"validation": "dev"}.get(split, split) if name == "conll2003" else split
    try:
        dataset, info = tfds.load(name, split=tfds_split, with_info=True)
    except Exception as err:  # tfds raises many types: unknown name, no network, bad split
        raise DataError(f"Cannot load TFDS dataset {name!r} split {tfds_split!r}: {err}") from None
    names = info.features["ner"].feature.names
    words, tags = [], []
    for example in tfds.as_numpy(dataset):
        words.append([token.decode("utf-8") for token in example["tokens"]])
        tags.append(to_iob2([names[i] for i in example["ner"]], "iob2", f"tfds:{name}"))
    return TaggedSentences(words, tags, f"tfds:{name}:{tfds_split}")


def to_iob2(tags: Sequence[str], scheme: str, where: str) -> list[str]:
    """`tags` of one sentence, in `scheme`, as IOB2. An I- tag that opens an entity becomes B-
    (conlleval reads it so in every scheme).

    Raises:
        DataError: a tag that is neither "O" nor PREFIX-TYPE with a prefix of the scheme.
    """
    allowed = _PREFIXES[scheme]
    result, previous = [], "O"
    for tag in tags:
        prefix, _, kind = tag.partition("-")
        if tag != "O" and (prefix not in allowed or not kind):
            raise DataError(f"{where}: {tag!r} is not a tag of the {scheme.upper()} scheme "
                            f"(O, or {'/'.join(allowed)}-TYPE); set task.tag_scheme, or "
                            "task.tag_column if this is another column.")
        if tag == "O":
            converted = "O"
        elif prefix in "SB":
            converted = f"B-{kind}"
        elif previous != "O" and previous[2:] == kind and not previous.startswith(("E-", "S-")):
            converted = f"I-{kind}"  # I-TYPE or E-TYPE continuing an entity of its type
        else:
            converted = f"B-{kind}"  # an I-/E- (or IOB1's B-) that opens an entity
        result.append(converted)
        previous = tag
    return result


def entity_spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """`(type, first word, last word + 1)` of every entity in IOB2 `tags`, with conlleval's
    reading: an entity opens at B-TYPE, or at I-TYPE after "O" or another type, and runs while
    I-TYPE of its type follows."""
    spans, start, kind = [], None, None
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, _, tag_kind = tag.partition("-")
        continues = prefix == "I" and start is not None and tag_kind == kind
        if start is not None and not continues:
            spans.append((kind, start, i))
            start = None
        if tag != "O" and not continues:
            start, kind = i, tag_kind
    return spans
