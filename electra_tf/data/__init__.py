"""Data: corpora, WordPiece vocabularies and tokenizer, and the pretraining input pipeline."""

from electra_tf.data.corpus import (
    Corpus,
    CorpusStats,
    ImdbCorpus,
    TextFileCorpus,
    TfdsCorpus,
    open_corpus,
)
from electra_tf.data.pipeline import SequencePacker, pretraining_dataset
from electra_tf.data.samples import SAMPLE_CORPUS, SAMPLE_LABELLED
from electra_tf.data.synthetic import synthetic_dataset, synthetic_token_arrays
from electra_tf.data.tokenizer import WordPieceTokenizer
from electra_tf.data.vocab import SPECIAL_TOKENS, load_vocabulary, save_vocabulary
from electra_tf.data.vocab_learning import LEARNERS, learn_vocabulary

__all__ = ["Corpus", "CorpusStats", "ImdbCorpus", "LEARNERS", "SAMPLE_CORPUS", "SAMPLE_LABELLED",
           "SPECIAL_TOKENS", "SequencePacker",
           "TextFileCorpus", "TfdsCorpus", "WordPieceTokenizer", "learn_vocabulary",
           "load_vocabulary", "open_corpus", "pretraining_dataset", "save_vocabulary",
           "synthetic_dataset", "synthetic_token_arrays"]
