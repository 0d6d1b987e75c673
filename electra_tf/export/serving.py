"""Feature extraction's serving signatures (`EncoderModule`), and writing any serving module as
a SavedModel."""

from __future__ import annotations

import tensorflow as tf

from electra_tf.tasks.serving import IDS_SPEC, MASK_SPEC, TEXT_SPEC, ServingModule


class EncoderModule(ServingModule):
    """`model` is an `ElectraEncoder`: sequence output for feature extraction."""

    @tf.function(input_signature=[TEXT_SPEC])
    def encode_text(self, text):
        inputs = self.text_inputs(text)
        return {"sequence_output": tf.cast(self.model(inputs, training=False), tf.float32),
                "token_ids": inputs["token_ids"],
                "padding_mask": tf.cast(inputs["padding_mask"], tf.int32)}

    @tf.function(input_signature=[IDS_SPEC, MASK_SPEC])
    def encode_ids(self, token_ids, padding_mask):
        inputs = self.ids_inputs(token_ids, padding_mask)
        return {"sequence_output": tf.cast(self.model(inputs, training=False), tf.float32)}

    def signatures(self):
        return {"serving_default": self.encode_text, "encode_ids": self.encode_ids}


def save_serving_module(module: ServingModule, export_dir: str) -> str:
    """Writes `module` as a SavedModel with its signatures; returns `export_dir`."""
    signatures = module.signatures()
    tf.saved_model.save(module, export_dir, signatures=signatures)
    return export_dir
