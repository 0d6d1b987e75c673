"""SavedModels of every architecture, head and precision `electra-tf export` can write, built
from random weights: what `electra_tf.export.op_check.ALLOWED_OPS` must cover. Used by
tests/test_export.py, and to print the ops when the list needs extending:

    .venv/bin/python tests/saved_model_variants.py
"""

from __future__ import annotations

import os
import sys
import tempfile

# (name, model overrides of ModelConfig, pooling, or None for an encoder export, "tagger" for a
# token classifier's and "reader" for a question-answering model's, precision)
VARIANTS = (
    ("classifier_cls_learned_post_ln", {}, "cls", "float32"),
    ("classifier_mean_alibi_pre_ln_conv", dict(position_embedding="none", attention_bias="alibi",
                                               layer_norm_position="pre",
                                               ffn_convolution_kernel=3), "mean", "float32"),
    ("encoder_sinusoidal", dict(position_embedding="sinusoidal"), None, "float32"),
    ("classifier_mixed_bfloat16", {}, "cls", "mixed_bfloat16"),
    ("classifier_bfloat16_matmul", dict(position_embedding="none", attention_bias="alibi",
                                        layer_norm_position="pre"), "mean", "bfloat16_matmul"),
    ("encoder_mixed_float16", {}, None, "mixed_float16"),
    ("tagger_alibi", dict(position_embedding="none", attention_bias="alibi"), "tagger",
     "float32"),
    ("reader_alibi_mixed_bfloat16", dict(position_embedding="none", attention_bias="alibi"),
     "reader", "mixed_bfloat16"),
)


def export_variant(root: str, name: str, overrides: dict, pooling, precision) -> str:
    """Exports one variant (a 1-layer, width-16 model) into `root/name`; returns the folder."""
    from electra_tf.config import ModelConfig
    from electra_tf.config.finetuning import TaskConfig
    from electra_tf.data.preprocessor import ClassificationPreprocessor
    from electra_tf.data.qa_features import QAPreprocessor
    from electra_tf.data.tagging_features import TaggingPreprocessor
    from electra_tf.data.tokenizer import WordPieceTokenizer
    from electra_tf.data.vocab import SPECIAL_TOKENS, save_vocabulary
    from electra_tf.export import export_classifier, export_encoder
    from electra_tf.models import SequenceClassifier, SpanExtractor
    from electra_tf.models.task import new_encoder
    from electra_tf.models.token_classifier import TokenClassifier
    from electra_tf.tasks.question_answering import QuestionAnswering
    from electra_tf.tasks.tagging import TokenClassification

    vocab_path = os.path.join(root, "vocab.txt")
    vocabulary = list(SPECIAL_TOKENS) + ["a", "fine", "film", "##s"]
    save_vocabulary(vocabulary, vocab_path)
    config = ModelConfig(vocab_size=len(vocabulary), embedding_size=16, hidden_size=16,
                         num_layers=1, num_heads=2, intermediate_size=32,
                         max_position_embeddings=64, **overrides)
    out = os.path.join(root, name)
    tokenizer = WordPieceTokenizer(vocabulary)
    if pooling == "tagger":
        tagger = TokenClassifier(new_encoder(config), ["O", "B-PER", "I-PER"])
        export_classifier(tagger, TaggingPreprocessor(tokenizer, 32), vocab_path, out,
                          precision, TokenClassification(TaskConfig()))
        return out
    if pooling == "reader":
        reader = SpanExtractor(new_encoder(config))
        export_classifier(reader, QAPreprocessor(tokenizer, 32, 8, 8), vocab_path, out,
                          precision, QuestionAnswering(TaskConfig()))
        return out
    model = SequenceClassifier.from_scratch(config, 2, label_names=["neg", "pos"],
                                            pooling=pooling or "cls")
    preprocessor = ClassificationPreprocessor(tokenizer, 32)
    if pooling is None:
        export_encoder(model.encoder, preprocessor, vocab_path, out, precision)
    else:
        export_classifier(model, preprocessor, vocab_path, out, precision)
    return out


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from electra_tf.export.op_check import saved_model_ops

    seen: set = set()
    with tempfile.TemporaryDirectory() as root:
        for variant in VARIANTS:
            seen |= saved_model_ops(export_variant(root, *variant))
    print(sorted(seen))
