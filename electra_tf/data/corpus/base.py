"""The corpus interface: `Corpus` yields cleaned documents and counts what reading fixed or
skipped (`CorpusStats`); the readers are `text_files`, `imdb` and `tfds`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Iterator

from electra_tf.errors import DataError

MIN_DOCUMENT_WORDS = 3
MAX_DOCUMENT_CHARS = 1_000_000
DOC_FORMATS = ("auto", "line", "blank")


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
            pieces = list(split_long(text)) if len(text) > MAX_DOCUMENT_CHARS else [text]
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


def split_long(text: str) -> Iterator[str]:
    """Cuts `text` into pieces of at most MAX_DOCUMENT_CHARS, at whitespace where possible."""
    start = 0
    while start < len(text):
        end = min(start + MAX_DOCUMENT_CHARS, len(text))
        if end < len(text):
            cut = max(text.rfind(" ", start, end), text.rfind("\n", start, end))
            end = cut if cut > start else end
        yield text[start:end]
        start = end


def decode_line(raw: bytes, stats: CorpusStats) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        stats.lines_with_invalid_utf8 += 1
        return raw.decode("utf-8", errors="replace")
