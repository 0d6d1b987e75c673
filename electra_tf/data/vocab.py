"""WordPiece vocabularies: read, check and save one (`vocab_learning` learns one from a corpus).

A vocabulary file has one token per line; the line number is the token id. Ours start with the BERT
special tokens `[PAD] [UNK] [CLS] [SEP] [MASK]` (ids 0-4); Google's BERT-uncased `vocab.txt`
(30,522 tokens, `[PAD]`=0, `[UNK]`=100, `[CLS]`=101, `[SEP]`=102, `[MASK]`=103) works as well:
ids are always looked up by token, never assumed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from typing import Sequence

from electra_tf.errors import DataError
from electra_tf.files import write_text_atomically

logger = logging.getLogger(__name__)

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)


@dataclass(frozen=True)
class SpecialTokenIds:
    """Ids of the special tokens in one vocabulary."""

    pad: int
    unk: int
    cls: int
    sep: int
    mask: int

    def as_pretraining_overrides(self) -> dict:
        """The `pretraining.*_id` config values this vocabulary implies."""
        return dict(pad_id=self.pad, cls_id=self.cls, sep_id=self.sep, mask_id=self.mask)


def special_token_ids(vocabulary: Sequence[str], source: str = "the vocabulary") -> SpecialTokenIds:
    """Looks the five special tokens up; a missing one is a `DataError` naming it."""
    index = {token: i for i, token in enumerate(vocabulary)}
    missing = [token for token in SPECIAL_TOKENS if token not in index]
    if missing:
        raise DataError(
            f"{source} lacks the special token(s) {', '.join(missing)}. ELECTRA needs all of "
            f"{' '.join(SPECIAL_TOKENS)}, one per line. Use a BERT vocab.txt, or let "
            f"`electra-tf train-tokenizer` (or `pretrain` without --vocab) learn one.")
    return SpecialTokenIds(*(index[token] for token in SPECIAL_TOKENS))


def load_vocabulary(path: str) -> list[str]:
    """Reads and checks a vocabulary file (UTF-8, one token per line, no duplicates, specials).

    Raises:
        DataError: missing/unreadable file, bad encoding, empty, duplicate or missing specials.
    """
    if not os.path.isfile(path):
        raise DataError(f"Vocabulary file not found: {path!r}. Give the path of a vocab.txt, or "
                        f"leave --vocab out to learn a vocabulary from the corpus.")
    try:
        with open(path, encoding="utf-8") as f:
            # Tokens never contain whitespace; strip only the line end so ids keep their lines.
            tokens = [line.rstrip("\r\n") for line in f]
    except UnicodeDecodeError as err:
        raise DataError(f"Vocabulary {path!r} is not UTF-8 text ({err}).") from None
    while tokens and not tokens[-1]:
        tokens.pop()  # a trailing blank line is not a token
    if not tokens:
        raise DataError(f"Vocabulary {path!r} is empty.")
    seen: dict[str, int] = {}
    for line_number, token in enumerate(tokens, start=1):
        if not token or token != token.strip():
            raise DataError(f"Vocabulary {path!r} line {line_number}: {token!r} is empty or has "
                            f"surrounding whitespace; each line must hold one token.")
        if token in seen:
            raise DataError(f"Vocabulary {path!r} has {token!r} twice (lines {seen[token] + 1} "
                            f"and {line_number}); token ids would be ambiguous.")
        seen[token] = line_number - 1
    special_token_ids(tokens, source=f"Vocabulary {path!r}")
    return tokens


def save_vocabulary(vocabulary: Sequence[str], path: str) -> None:
    """Writes one token per line (atomically: a crash never leaves half a vocabulary)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_text_atomically(path, "\n".join(vocabulary) + "\n")


def wait_for_vocabulary(path: str, timeout_s: float = 1800.0, poll_s: float = 1.0) -> list[str]:
    """The vocabulary another process is saving to `path`, once it is there.

    The workers of a multi-worker run take the chief's vocabulary instead of learning their own:
    the learner gives every process the same vocabulary, but only the chief reads the corpus for
    it (the workers would spend the same minutes for nothing), and a worker whose token ids
    differed from the chief's (a corpus path that is another file on its host) would train on
    other tokens. `save_vocabulary` writes atomically, so a file that exists is whole.

    Raises:
        DataError: nothing appeared within `timeout_s` seconds.
    """
    began = last_note = time.time()
    while not os.path.isfile(path):
        now = time.time()
        if now - began > timeout_s:
            raise DataError(f"No vocabulary appeared at {path} within {timeout_s:.0f} s: the "
                            "chief writes it there, so give every worker the same --out-dir "
                            "on storage they all see, or pass --vocab.")
        if now - last_note >= 60:
            logger.info("Waiting for the chief's vocabulary at %s (%.0f s) ...", path, now - began)
            last_note = now
        time.sleep(poll_s)
    return load_vocabulary(path)


def vocabulary_fingerprint(vocabulary: Sequence[str]) -> str:
    """Short content hash: tells whether a checkpoint and a vocabulary belong together."""
    return hashlib.sha256("\n".join(vocabulary).encode("utf-8")).hexdigest()[:16]
