"""Plain UTF-8 text files: one document per line, or documents separated by blank lines."""

from __future__ import annotations

import glob
import os
from typing import Iterator, Sequence

from electra_tf.data.corpus.base import DOC_FORMATS, Corpus, decode_line
from electra_tf.errors import DataError


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
                        yield decode_line(raw, self.stats)
                else:
                    block: list[str] = []
                    for raw in f:
                        line = decode_line(raw, self.stats).strip()
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
