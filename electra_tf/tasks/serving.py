"""The base of every export's serving side: a `tf.Module` holding the Keras model, its text
preprocessing and the vocabulary, whose `tf.function`s become the SavedModel's signatures. Each
fine-tuning task adds its own (`FinetuningTask.serving_module`); the encoder's, for feature
extraction, are `electra_tf.export.serving.EncoderModule`."""

from __future__ import annotations

import tensorflow as tf

TEXT_SPEC = tf.TensorSpec([None], tf.string, name="text")
TEXT_A_SPEC = tf.TensorSpec([None], tf.string, name="text_a")  # a pair's first text
TEXT_B_SPEC = tf.TensorSpec([None], tf.string, name="text_b")  # ... and its second
IDS_SPEC = tf.TensorSpec([None, None], tf.int32, name="token_ids")
SEGMENT_SPEC = tf.TensorSpec([None, None], tf.int32, name="segment_ids")
MASK_SPEC = tf.TensorSpec([None, None], tf.int32, name="padding_mask")


class ServingModule(tf.Module):
    """Holds the Keras model, the text preprocessor and the vocabulary asset; subclasses add
    `tf.function`s and name them in `signatures()`."""

    def __init__(self, model, preprocessor, vocab_path: str):
        super().__init__(name="electra_tf_export")
        self.model = model
        self.preprocessor = preprocessor
        # The tokenizer's tables are graph constants already; the vocabulary file is kept as
        # an asset too, so a serving stack (or a human) can read the exact vocabulary.
        self.vocab_file = tf.saved_model.Asset(vocab_path)
        self.max_seq_length = tf.Variable(preprocessor.max_seq_length, trainable=False,
                                          name="max_seq_length")

    def text_inputs(self, text, text_b=None):
        token_ids = self.preprocessor(text, text_b)  # ragged [batch, (len)]
        return self.preprocessor.pad_and_mask(token_ids)

    def ids_inputs(self, token_ids, padding_mask, segment_ids=None):
        segment_ids = tf.zeros_like(token_ids) if segment_ids is None else segment_ids
        return {"token_ids": token_ids, "segment_ids": segment_ids,
                "padding_mask": padding_mask}
