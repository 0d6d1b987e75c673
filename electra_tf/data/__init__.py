"""Data: corpora, WordPiece vocabularies and tokenizer, the pretraining input pipeline, and
labelled texts with their in-graph preprocessing for classification."""

from electra_tf.data.classification import LabelledTexts, load_labelled_texts, stratified_split
from electra_tf.data.corpus import (
    Corpus,
    CorpusStats,
    ImdbCorpus,
    TextFileCorpus,
    TfdsCorpus,
    open_corpus,
)
from electra_tf.data.pipeline import SequencePacker, pretraining_dataset
from electra_tf.data.preprocessor import ClassificationPreprocessor, classification_dataset
from electra_tf.data.samples import SAMPLE_CORPUS, SAMPLE_LABELLED
from electra_tf.data.synthetic import synthetic_dataset, synthetic_token_arrays
from electra_tf.data.tokenizer import WordPieceTokenizer
from electra_tf.data.vocab import SPECIAL_TOKENS, load_vocabulary, save_vocabulary
from electra_tf.data.vocab_learning import LEARNERS, learn_vocabulary

__all__ = ["ClassificationPreprocessor", "Corpus", "CorpusStats", "ImdbCorpus", "LEARNERS",
           "LabelledTexts", "SAMPLE_CORPUS", "SAMPLE_LABELLED", "SPECIAL_TOKENS",
           "SequencePacker", "TextFileCorpus", "TfdsCorpus", "WordPieceTokenizer",
           "classification_dataset", "learn_vocabulary", "load_labelled_texts", "load_vocabulary",
           "open_corpus", "pretraining_dataset", "save_vocabulary", "stratified_split",
           "synthetic_dataset", "synthetic_token_arrays"]
