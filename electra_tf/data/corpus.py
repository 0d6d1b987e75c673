"""Pretraining corpora: plain text files, the IMDB reviews (archive or folder), TFDS datasets.

Every corpus yields *documents* as Python strings whose lines are its sentences or paragraphs;
the pipeline splits them further at sentence ends and packs them into sequences. Reading is
forgiving and counts what it fixed or skipped (`corpus.stats`), because one bad byte in a 40 GB
dump must not end a pretraining run:

* bytes that are not UTF-8 are replaced by U+FFFD and the lines counted;
* documents with fewer than `MIN_DOCUMENT_WORDS` words are skipped and counted;
* a document longer than `MAX_DOCUMENT_CHARS` is cut into pieces at whitespace (counted), so a
  single 10 MB line costs what ten 1 MB documents cost and never one giant tensor.

`open_corpus(spec)` picks the reader from the spec:

    path/to/file.txt, "data/*.txt", a folder, or several joined by commas  ->  TextFileCorpus
    aclImdb_v1.tar.gz (or any .tar.gz/.tgz holding aclImdb/) or an aclImdb folder  ->  ImdbCorpus
    tfds:imdb_reviews, tfds:wikipedia/20230601.en:train                   ->  TfdsCorpus
"""

from __future__ import annotations

import glob
import logging
import os
import re
import tarfile
from dataclasses import asdict, dataclass, replace
from typing import Iterator, Sequence

from electra_tf.errors import DataError

logger = logging.getLogger(__name__)

MIN_DOCUMENT_WORDS = 3
MAX_DOCUMENT_CHARS = 1_000_000
DOC_FORMATS = ("auto", "line", "blank")
IMDB_PRETRAINING_SUBSETS = ("train/unsup", "train/pos", "train/neg")  # never test/
_BR_TAG = re.compile(r"<br\s*/?>", re.IGNORECASE)


@dataclass
class CorpusStats:
    """What one pass over a corpus read, fixed and skipped."""

    files: int = 0
    documents: int = 0
    characters: int = 0
    skipped_short_documents: int = 0
    split_long_documents: int = 0
    lines_with_invalid_utf8: int = 0

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        text = f"{self.documents:,d} documents ({self.characters / 1e6:,.1f} M characters)"
        notes = []
        if self.skipped_short_documents:
            notes.append(f"skipped {self.skipped_short_documents:,d} with fewer than "
                         f"{MIN_DOCUMENT_WORDS} words")
        if self.split_long_documents:
            notes.append(f"cut {self.split_long_documents:,d} longer than "
                         f"{MAX_DOCUMENT_CHARS:,d} characters into pieces")
        if self.lines_with_invalid_utf8:
            notes.append(f"{self.lines_with_invalid_utf8:,d} lines had bytes that are not UTF-8 "
                         f"(replaced by U+FFFD)")
        return text + (f"; {'; '.join(notes)}" if notes else "")


class Corpus:
    """Base class: `documents()` is one pass over the corpus, in a fixed order.

    Subclasses implement `_raw_documents()`; this class applies the shared clean-up and counts.
    """

    name = "corpus"

    def __init__(self):
        self.stats = CorpusStats()
        # `stats` restarts with every pass, so a long run stopped mid-pass would report a
        # fraction of the corpus as if it were all of it: keep the last complete pass too.
        self.full_pass: CorpusStats | None = None
        self.passes_completed = 0

    def _raw_documents(self) -> Iterator[str]:
        raise NotImplementedError

    def documents(self) -> Iterator[str]:
        """Yields the cleaned documents of one full pass; `self.stats` counts this pass."""
        self.stats = CorpusStats(files=self.stats.files)
        for text in self._raw_documents():
            text = text.strip()
            if len(text.split(None, MIN_DOCUMENT_WORDS)) < MIN_DOCUMENT_WORDS:
                self.stats.skipped_short_documents += 1
                continue
            pieces = list(_split_long(text)) if len(text) > MAX_DOCUMENT_CHARS else [text]
            if len(pieces) > 1:
                self.stats.split_long_documents += 1
            for piece in pieces:
                self.stats.documents += 1
                self.stats.characters += len(piece)
                yield piece
        self.full_pass = replace(self.stats)
        self.passes_completed += 1

    def report(self) -> dict:
        """What this process read, for a run's metrics: the counts of one complete pass when
        one was read to its end (else of the pass in progress, and `counted` says so) and how
        many complete passes were read."""
        stats, counted = ((self.full_pass, "one complete pass") if self.full_pass else
                          (self.stats, "the pass in progress (no pass was read to its end)"))
        return {"name": self.name, "counted": counted, "passes_completed": self.passes_completed,
                **stats.as_dict()}

    def check(self, min_documents: int = 1) -> None:
        """Reads until `min_documents` usable documents are found; raises `DataError` if the
        whole corpus has fewer (empty files, only very short lines, ...)."""
        found = 0
        for _ in self.documents():
            found += 1
            if found >= min_documents:
                return
        raise DataError(
            f"{self.name} has no usable text: {found} document(s) with at least "
            f"{MIN_DOCUMENT_WORDS} words ({self.stats.summary()}). Point --corpus at files with "
            f"real sentences (one document per line, or documents separated by blank lines).")

    def __repr__(self):
        return f"{type(self).__name__}({self.name})"


def _split_long(text: str) -> Iterator[str]:
    """Cuts `text` into pieces of at most MAX_DOCUMENT_CHARS, at whitespace where possible."""
    start = 0
    while start < len(text):
        end = min(start + MAX_DOCUMENT_CHARS, len(text))
        if end < len(text):
            cut = max(text.rfind(" ", start, end), text.rfind("\n", start, end))
            end = cut if cut > start else end
        yield text[start:end]
        start = end


def _decode_line(raw: bytes, stats: CorpusStats) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        stats.lines_with_invalid_utf8 += 1
        return raw.decode("utf-8", errors="replace")


# ---------------------------------------------------------------------------------- text files


class TextFileCorpus(Corpus):
    """Plain UTF-8 text files.

    Args:
        paths: files, folders (all files inside, recursively) or glob patterns.
        doc_format: "line" = every non-empty line is a document (reviews, tweets);
            "blank" = documents are separated by blank lines and each line is a sentence or
            paragraph (the ELECTRA/BERT pretraining format); "auto" = "blank" when at least 1% of a
            file's first 10,000 lines are blank, else "line".
    """

    def __init__(self, paths: Sequence[str], doc_format: str = "auto"):
        super().__init__()
        if doc_format not in DOC_FORMATS:
            raise DataError(f"doc_format must be one of {DOC_FORMATS}, got {doc_format!r}.")
        self.doc_format = doc_format
        self.files = _expand_paths(paths)
        for path in self.files:
            _refuse_wide_encodings(path)
        self.stats.files = len(self.files)
        self.name = paths[0] if len(paths) == 1 else f"{len(self.files)} files"

    def _raw_documents(self) -> Iterator[str]:
        for path in self.files:
            fmt = self.doc_format if self.doc_format != "auto" else _detect_format(path)
            with open(path, "rb") as f:
                if fmt == "line":
                    for raw in f:
                        yield _decode_line(raw, self.stats)
                else:
                    block: list[str] = []
                    for raw in f:
                        line = _decode_line(raw, self.stats).strip()
                        if line:
                            block.append(line)
                        elif block:
                            yield "\n".join(block)
                            block = []
                    if block:
                        yield "\n".join(block)


def _expand_paths(paths: Sequence[str]) -> list[str]:
    files: list[str] = []
    for spec in paths:
        if os.path.isdir(spec):
            found = [os.path.join(root, name) for root, _, names in os.walk(spec)
                     for name in names if not name.startswith(".")]
            if not found:
                raise DataError(f"Corpus folder {spec!r} holds no files.")
            files.extend(sorted(found))
        elif os.path.isfile(spec):
            files.append(spec)
        elif glob.has_magic(spec):
            found = sorted(p for p in glob.glob(spec, recursive=True) if os.path.isfile(p))
            if not found:
                raise DataError(f"No file matches the corpus pattern {spec!r}.")
            files.extend(found)
        else:
            raise DataError(f"Corpus path not found: {spec!r}. Give a text file, a folder, a glob "
                            f"such as 'data/*.txt', the IMDB archive, or tfds:NAME.")
    return files


def _refuse_wide_encodings(path: str, probe_bytes: int = 4096) -> None:
    """Refuses a UTF-16 or UTF-32 file (a byte-order mark, or NUL bytes in a tenth of its start;
    UTF-8 text has none): read as UTF-8 it would become a corpus of single characters.

    Raises:
        DataError: the file is in a wide encoding, or is binary.
    """
    with open(path, "rb") as f:
        start = f.read(probe_bytes)
    if start.startswith((b"\xff\xfe", b"\xfe\xff")) or start.count(0) > len(start) // 10:
        raise DataError(f"{path} is not UTF-8 text (it looks like UTF-16/UTF-32 or a binary "
                        "file); re-save it as UTF-8, e.g. iconv -f UTF-16 -t UTF-8.")


def _detect_format(path: str, probe_lines: int = 10_000) -> str:
    blank = total = 0
    with open(path, "rb") as f:
        for raw in f:
            total += 1
            blank += not raw.strip()
            if total >= probe_lines:
                break
    return "blank" if total and blank / total >= 0.01 else "line"


# ---------------------------------------------------------------------------------------- IMDB


class ImdbCorpus(Corpus):
    """The Large Movie Review Dataset (aclImdb) from its `.tar.gz` archive or extracted folder.

    Pretraining reads `train/unsup`, `train/pos` and `train/neg` (labels ignored) and never
    `test/`. HTML line breaks (`<br />`) become line breaks.

    Args:
        path: the archive, the `aclImdb` folder, or a folder that contains `aclImdb/`.
        subsets: which `split/label` folders to read.
    """

    def __init__(self, path: str, subsets: Sequence[str] = IMDB_PRETRAINING_SUBSETS):
        super().__init__()
        self.path, self.subsets, self.name = path, tuple(subsets), path
        if os.path.isdir(path):
            self.root = _imdb_root(path)
            if self.root is None:
                raise DataError(f"{path!r} is not an aclImdb folder (no train/ inside).")
        elif not os.path.isfile(path):
            raise DataError(f"IMDB path not found: {path!r}.")
        else:
            self.root = None

    def _raw_documents(self) -> Iterator[str]:
        for _, text in self.labelled_documents():
            yield text

    def labelled_documents(self) -> Iterator[tuple[str, str]]:
        """Yields `(subset, text)` pairs, e.g. `("train/pos", "A great movie...")`; folders are
        read in sorted file order, the archive in its own order."""
        if self.root is not None:
            for subset in self.subsets:
                folder = os.path.join(self.root, subset)
                if not os.path.isdir(folder):
                    raise DataError(f"{self.root} has no {subset}/ folder; is it a complete "
                                    "aclImdb folder?")
                for name in sorted(os.listdir(folder)):
                    if name.endswith(".txt"):
                        with open(os.path.join(folder, name), "rb") as f:
                            yield subset, _clean_review(_decode_line(f.read(), self.stats))
            return
        wanted = {subset: f"/{subset}/" for subset in self.subsets}
        try:
            with tarfile.open(self.path, "r|*") as archive:  # streamed: one pass, archive order
                for member in archive:
                    if not member.isfile() or not member.name.endswith(".txt") \
                            or os.path.basename(member.name).startswith("urls_"):
                        continue
                    for subset, marker in wanted.items():
                        if marker in member.name:
                            raw = archive.extractfile(member).read()
                            yield subset, _clean_review(_decode_line(raw, self.stats))
                            break
        except (tarfile.TarError, EOFError, OSError) as err:
            raise DataError(
                f"Cannot read the IMDB archive {self.path!r}: {err}. Is it a complete "
                "aclImdb_v1.tar.gz? Re-download it or extract it and pass the folder.") from None


def _imdb_root(path: str) -> str | None:
    for candidate in (path, os.path.join(path, "aclImdb")):
        if os.path.isdir(os.path.join(candidate, "train")):
            return candidate
    return None


def _clean_review(text: str) -> str:
    return _BR_TAG.sub("\n", text)


def _looks_like_imdb(path: str) -> bool:
    if os.path.isdir(path):
        root = _imdb_root(path)
        return root is not None and os.path.isdir(os.path.join(root, "train", "unsup")) or \
            (root is not None and os.path.isdir(os.path.join(root, "train", "pos")))
    name = os.path.basename(path).lower()
    return os.path.isfile(path) and name.endswith((".tar.gz", ".tgz", ".tar")) and "imdb" in name


# ---------------------------------------------------------------------------------------- TFDS


class TfdsCorpus(Corpus):
    """Any TFDS dataset with a text feature, e.g. `imdb_reviews` or `wikipedia/20230601.en`.

    Downloads through TFDS on first use (online users); `data_dir` points at a local TFDS store.
    """

    def __init__(self, name: str, split: str = "train", text_key: str | None = None,
                 data_dir: str | None = None):
        super().__init__()
        self.dataset_name, self.split, self.text_key, self.data_dir = name, split, text_key, data_dir
        self.name = f"tfds:{name}:{split}"

    def _raw_documents(self) -> Iterator[str]:
        import tensorflow_datasets as tfds

        try:
            dataset, info = tfds.load(self.dataset_name, split=self.split, with_info=True,
                                      data_dir=self.data_dir)
        except Exception as err:  # tfds raises many types: unknown name, no network, bad split
            raise DataError(f"Cannot load TFDS dataset {self.dataset_name!r} split "
                            f"{self.split!r}: {err}") from None
        key = self.text_key or _text_feature(info.features, self.dataset_name)
        for example in tfds.as_numpy(dataset):
            yield _clean_review(_decode_line(example[key], self.stats))


def _text_feature(features, name: str) -> str:
    import tensorflow_datasets as tfds

    text_keys = [key for key, feature in features.items() if isinstance(feature, tfds.features.Text)]
    if "text" in text_keys:
        return "text"
    if not text_keys:
        raise DataError(f"TFDS dataset {name!r} has no text feature (features: "
                        f"{sorted(features.keys())}).")
    return text_keys[0]


# ------------------------------------------------------------------------------------ dispatch


def open_corpus(spec: str, doc_format: str = "auto") -> Corpus:
    """Builds the corpus a `--corpus` value names (see the module docstring)."""
    if not spec or not spec.strip():
        raise DataError("No corpus given: pass --corpus PATH (text files, IMDB archive, tfds:NAME).")
    if spec.startswith("tfds:"):
        parts = spec[len("tfds:"):].split(":")
        if not parts[0]:
            raise DataError(f"{spec!r}: name the TFDS dataset, e.g. tfds:imdb_reviews.")
        return TfdsCorpus(parts[0], split=parts[1] if len(parts) > 1 else "train")
    paths = [part.strip() for part in spec.split(",") if part.strip()]
    if len(paths) == 1 and _looks_like_imdb(paths[0]):
        return ImdbCorpus(paths[0])
    return TextFileCorpus(paths, doc_format=doc_format)
