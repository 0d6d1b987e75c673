"""Checkpoint conversion: HuggingFace ELECTRA (safetensors / pytorch_model.bin) in and out."""

from electra_tf.convert.huggingface import (export_huggingface, hf_config, load_huggingface,
                                            save_huggingface)

__all__ = ["export_huggingface", "hf_config", "load_huggingface", "save_huggingface"]
