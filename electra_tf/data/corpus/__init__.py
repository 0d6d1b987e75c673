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

from electra_tf.data.corpus.base import (
    DOC_FORMATS,
    MAX_DOCUMENT_CHARS,
    MIN_DOCUMENT_WORDS,
    Corpus,
    CorpusStats,
    decode_line,
)
from electra_tf.data.corpus.imdb import ImdbCorpus, looks_like_imdb
from electra_tf.data.corpus.text_files import TextFileCorpus
from electra_tf.data.corpus.tfds import TfdsCorpus
from electra_tf.errors import DataError

__all__ = ["DOC_FORMATS", "MAX_DOCUMENT_CHARS", "MIN_DOCUMENT_WORDS", "Corpus", "CorpusStats",
           "ImdbCorpus", "TextFileCorpus", "TfdsCorpus", "decode_line", "open_corpus"]


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
    if len(paths) == 1 and looks_like_imdb(paths[0]):
        return ImdbCorpus(paths[0])
    return TextFileCorpus(paths, doc_format=doc_format)
