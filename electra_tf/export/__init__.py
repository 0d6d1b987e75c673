"""Shipping models: SavedModels with a raw-text signature, and prediction from them."""

from electra_tf.export.predict import Predictor, load_predictor, read_texts
from electra_tf.export.saved_model import export_classifier, export_encoder, export_model

__all__ = ["Predictor", "export_classifier", "export_encoder", "export_model", "load_predictor",
           "read_texts"]
