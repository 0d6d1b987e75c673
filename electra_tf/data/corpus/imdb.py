"""The Large Movie Review Dataset (aclImdb), from its archive or extracted folder."""

from __future__ import annotations

import os
import re
import tarfile
from typing import Iterator, Sequence

from electra_tf.data.corpus.base import Corpus, decode_line
from electra_tf.errors import DataError

IMDB_PRETRAINING_SUBSETS = ("train/unsup", "train/pos", "train/neg")  # never test/
_BR_TAG = re.compile(r"<br\s*/?>", re.IGNORECASE)


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
                            yield subset, clean_review(decode_line(f.read(), self.stats))
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
                            yield subset, clean_review(decode_line(raw, self.stats))
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


def clean_review(text: str) -> str:
    return _BR_TAG.sub("\n", text)


def looks_like_imdb(path: str) -> bool:
    if os.path.isdir(path):
        root = _imdb_root(path)
        return root is not None and os.path.isdir(os.path.join(root, "train", "unsup")) or \
            (root is not None and os.path.isdir(os.path.join(root, "train", "pos")))
    name = os.path.basename(path).lower()
    return os.path.isfile(path) and name.endswith((".tar.gz", ".tgz", ".tar")) and "imdb" in name
