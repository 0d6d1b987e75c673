"""Learning a WordPiece vocabulary from a corpus, with one of two learners.

- `tokenizers` (default): HuggingFace `tokenizers`' WordPiece trainer (Rust): 8,192 pieces from
  the 25,000 IMDB training reviews in 7.5 s instead of 233 s, with held-out pieces-per-word and
  [UNK] rate no worse than tensorflow-text's learner (docs/pretraining.md).
- `tensorflow-text`: tensorflow-text's BERT vocabulary learner (`bert_vocab_from_dataset`), the
  learner Google's BERT tooling uses; kept selectable (`--learner tensorflow-text`).

Both read the documents once, as a stream (a corpus never has to fit in memory; `tokenizers`
keeps a normalised copy in a temporary file), log their progress every few seconds on long runs,
and return a vocabulary whose ids 0-4 are `[PAD] [UNK] [CLS] [SEP] [MASK]`. Both are
deterministic: the same documents and settings give the same `vocab.txt`, byte for byte, in any
process and with any number of threads. Words are split and normalised the way our in-graph
`WordPieceTokenizer` splits and normalises them (whitespace and punctuation; lower-casing with
NFD accent stripping when `lower_case`), so every learned piece is one the tokenizer can produce.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import unicodedata
from collections import Counter
from typing import Iterable, Iterator, Sequence

from electra_tf.data.vocab import SPECIAL_TOKENS, UNK
from electra_tf.errors import DataError

logger = logging.getLogger(__name__)

LEARNERS = ("tokenizers", "tensorflow-text")
DEFAULT_LEARNER = "tokenizers"
# Longest word (in characters) that gets pieces; longer ones become [UNK], as in the tokenizer.
MAX_CHARS_PER_WORD = 100
# Characters that may enter the vocabulary as single pieces. A web corpus holds thousands of
# rare symbols; letting each take a slot would crowd out useful pieces (BERT kept ~1,000 too).
MAX_ALPHABET = 1000


def learn_vocabulary(texts: Iterable[str], vocab_size: int, lower_case: bool = True,
                     learner: str = DEFAULT_LEARNER, progress_every_s: float = 10.0) -> list[str]:
    """Learns a WordPiece vocabulary of about `vocab_size` pieces (`##` marks a continuation).

    Args:
        texts: documents (str), read once as a stream.
        vocab_size: the vocabulary size wanted. `tokenizers` returns exactly this many when the
            corpus has enough distinct pieces; `tensorflow-text`'s threshold search lands a few
            percent off, either way (the models are sized to the vocabulary learned).
        lower_case: lower-case and strip accents (BERT "uncased"); must match the
            `WordPieceTokenizer(lower_case=...)` that will use the vocabulary.
        learner: one of `LEARNERS`.
        progress_every_s: seconds between progress lines (documents and megabytes read).

    Returns:
        the vocabulary, `[PAD] [UNK] [CLS] [SEP] [MASK]` first (ids 0-4).

    Raises:
        DataError: unknown learner, too small a `vocab_size`, or a corpus without words.
    """
    if learner not in LEARNERS:
        raise DataError(f"Unknown vocabulary learner {learner!r}; choose one of "
                        f"{', '.join(LEARNERS)}.")
    if vocab_size <= len(SPECIAL_TOKENS) + 50:
        raise DataError(f"vocab_size {vocab_size} is too small: the specials and single characters "
                        f"alone need more; use at least 1000.")
    no_words = DataError("The corpus gave no words to learn a vocabulary from; check that the "
                         "corpus path holds text.")
    reader = _ProgressReader(texts, progress_every_s)
    began = time.time()
    try:
        if learner == "tokenizers":
            vocabulary = _learn_with_tokenizers(reader, vocab_size, lower_case)
        else:
            vocabulary = _learn_with_tensorflow_text(reader, vocab_size, lower_case)
    except StopIteration:  # tensorflow-text's learner, given no words at all
        raise no_words from None
    if len(vocabulary) <= len(SPECIAL_TOKENS):
        raise no_words
    logger.info("Vocabulary: %d pieces learned by %s from %d documents (%.1f MB) in %.1f s.",
                len(vocabulary), learner, reader.documents, reader.megabytes,
                time.time() - began)
    return vocabulary


class _ProgressReader:
    """Iterates the documents once, counting them and logging progress every few seconds."""

    def __init__(self, texts: Iterable[str], every_s: float):
        self._texts, self._every_s = texts, every_s
        self.documents, self._bytes = 0, 0

    @property
    def megabytes(self) -> float:
        return self._bytes / 1e6

    def __iter__(self) -> Iterator[str]:
        began = last = time.time()
        for text in self._texts:
            self.documents += 1
            self._bytes += len(text)  # characters: close enough to bytes for a progress line
            now = time.time()
            if now - last >= self._every_s:
                logger.info("Vocabulary: read %d documents (%.0f MB) in %.0f s ...",
                            self.documents, self.megabytes, now - began)
                last = now
            yield text
        logger.info("Vocabulary: read all %d documents (%.1f MB); choosing the pieces ...",
                    self.documents, self.megabytes)


def _learn_with_tokenizers(texts: Iterable[str], vocab_size: int, lower_case: bool) -> list[str]:
    try:
        from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    except ImportError:  # pragma: no cover - a dependency; only a broken install lacks it
        raise DataError("The 'tokenizers' learner needs the tokenizers package "
                        "(pip install tokenizers), or pass --learner tensorflow-text.") from None
    # The text arrives normalised by WordPieceTokenizer's own normaliser (`_normalised`):
    # HuggingFace's BertNormalizer differs in places (it keeps "½", which ours turns into "1⁄2"),
    # and a piece the tokenizer never produces is a wasted slot. Only control characters are
    # cleaned and CJK characters spaced here; the split is BERT's whitespace-and-punctuation
    # split, as in the tokenizer (tf-text's end-to-end WordPiece isolates CJK like BERT).
    cleaner = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False)
    with tempfile.TemporaryDirectory(prefix="electra_tf_vocab_") as work:
        # The trainer reads the corpus from a file (the stream is read once, never held in
        # memory), after the characters are counted: the counts fix its alphabet below.
        cleaned = os.path.join(work, "corpus.txt")
        characters: Counter = Counter()
        with open(cleaned, "w", encoding="utf-8") as f:
            for text in _normalised(texts, lower_case):
                line = cleaner.normalize_str(text)  # whitespace, newlines included, is now " "
                characters.update(line)
                f.write(line + "\n")
        alphabet = _alphabet(characters)
        tokenizer = Tokenizer(models.WordPiece(unk_token=UNK, continuing_subword_prefix="##",
                                               max_input_chars_per_word=MAX_CHARS_PER_WORD))
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        trainer = trainers.WordPieceTrainer(
            vocab_size=vocab_size, min_frequency=2,
            special_tokens=list(SPECIAL_TOKENS) + _continuations(alphabet),
            initial_alphabet=alphabet, limit_alphabet=len(alphabet),
            continuing_subword_prefix="##", show_progress=False)
        tokenizer.train([cleaned], trainer)
    by_id = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
    vocabulary = [token for token, _ in by_id]
    assert tuple(vocabulary[:len(SPECIAL_TOKENS)]) == SPECIAL_TOKENS, vocabulary[:8]
    return canonical_order(vocabulary)


# Why the trainer is given its alphabet and every `##c` piece up front: it learns by merging
# the most frequent pair of pieces, and breaks ties between pairs of equal count by the pieces'
# ids. Left to itself it numbers the `##c` pieces in the order it meets them while iterating a
# hash map, and drops the rarest characters beyond `limit_alphabet` in hash-map order too; both
# change from process to process (Rust seeds its hash maps at random), so the same corpus gave a
# different vocabulary on every run. Special tokens are numbered first, in the order given, and
# an `initial_alphabet` as large as `limit_alphabet` is exactly the alphabet kept: with both
# fixed, every id the trainer compares is a function of the corpus alone.


def _alphabet(characters: Counter) -> list[str]:
    """The `MAX_ALPHABET` most frequent characters (ties by code point), in code-point order.

    Whitespace is never a piece (the pre-tokenizer splits on it)."""
    counted = [(-count, char) for char, count in characters.items() if not char.isspace()]
    return sorted(char for _, char in sorted(counted)[:MAX_ALPHABET])


def _continuations(alphabet: Sequence[str]) -> list[str]:
    """`##c` for every character of the alphabet that can continue a word: not punctuation,
    which the pre-tokenizer splits off (ASCII symbols and Unicode category P*). A `##c` that the
    corpus never produces costs one slot, the same as in BERT's vocabularies."""
    return [f"##{char}" for char in alphabet
            if not (char.isascii() and not char.isalnum())
            and not unicodedata.category(char).startswith("P")]


def canonical_order(vocabulary: Sequence[str]) -> list[str]:
    """The specials first, then the pieces that start a word, then the `##` pieces, each group
    in code-point order.

    The trainer orders pieces of equal count by hash-map iteration, which changes from process to
    process: the same corpus gave the same set of pieces under other ids each time (66 of 8,192
    IMDB pieces moved). A piece's id must not depend on that: the workers of a multi-worker run
    and a rerun of the same command need the same ids, and a from-scratch model's initial
    embedding of a token follows its id. WordPiece's longest-match split depends only on the
    set, so re-ordering changes no tokenization.
    """
    specials = list(SPECIAL_TOKENS)
    rest = [piece for piece in vocabulary if piece not in SPECIAL_TOKENS]
    starts = sorted(piece for piece in rest if not piece.startswith("##"))
    continuations = sorted(piece for piece in rest if piece.startswith("##"))
    return specials + starts + continuations


def _normalised(texts: Iterable[str], lower_case: bool, batch_size: int = 512) -> Iterator[str]:
    """`texts` through `WordPieceTokenizer`'s own normaliser, in batches, still as a stream."""
    import tensorflow as tf

    from electra_tf.data.tokenizer import text_normalizer

    normalizer = text_normalizer(lower_case)
    for batch in _batches(texts, batch_size):
        for text in normalizer.normalize(tf.constant(batch)).numpy():
            yield text.decode("utf-8")


def _learn_with_tensorflow_text(texts: Iterable[str], vocab_size: int,
                                lower_case: bool) -> list[str]:
    import tensorflow as tf
    from tensorflow_text.tools.wordpiece_vocab import bert_vocab_from_dataset as bert_vocab

    dataset = tf.data.Dataset.from_generator(
        lambda: iter(texts), output_signature=tf.TensorSpec((), tf.string)).batch(1024)
    return bert_vocab.bert_vocab_from_dataset(
        dataset, vocab_size=vocab_size, reserved_tokens=list(SPECIAL_TOKENS),
        bert_tokenizer_params=dict(lower_case=lower_case),
        # Cap the word list the threshold search works on: it bounds the learner's run time on
        # big corpora, and words seen fewer than a handful of times never earn a piece anyway.
        learn_params=dict(max_input_tokens=300_000))


def tokenization_stats(vocabulary: Sequence[str], texts: Iterable[str], lower_case: bool = True,
                       batch_size: int = 256) -> dict:
    """How well `vocabulary` covers `texts` under our `WordPieceTokenizer`: the measures
    the learners were compared by (on held-out text).

    A word is what the tokenizer splits on whitespace and punctuation: every piece that does not
    start with `##` begins one (an unknown word is a single [UNK]).

    Returns:
        dict(words, pieces, pieces_per_word, unk_per_word): fewer pieces per word means shorter
        sequences (more text per 128 tokens); [UNK]s are words the model never sees.
    """
    import numpy as np
    import tensorflow as tf

    from electra_tf.data.tokenizer import WordPieceTokenizer

    tokenizer = WordPieceTokenizer(list(vocabulary), lower_case=lower_case)
    starts_word = np.array([not token.startswith("##") for token in vocabulary])
    unk_id = tokenizer.special_ids.unk
    totals = np.zeros(3, np.int64)  # words, pieces, [UNK]s
    for batch in _batches(texts, batch_size):
        ids = tokenizer.tokenize(tf.constant(batch)).flat_values.numpy()
        totals += (starts_word[ids].sum(), len(ids), (ids == unk_id).sum())
    words, pieces, unknown = (int(n) for n in totals)
    return dict(words=words, pieces=pieces, pieces_per_word=pieces / max(words, 1),
                unk_per_word=unknown / max(words, 1))


def _batches(texts: Iterable[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for text in texts:
        batch.append(text)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
