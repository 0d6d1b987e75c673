"""Keras layers: embeddings, attention, Transformer blocks, the encoder and output heads."""

from electra_tf.layers.attention import MultiHeadSelfAttention
from electra_tf.layers.embeddings import ElectraEmbeddings, sinusoidal_position_encoding
from electra_tf.layers.encoder import ElectraEncoder
from electra_tf.layers.heads import MaskedLMHead, ReplacedTokenDetectionHead
from electra_tf.layers.normalization import LayerNorm
from electra_tf.layers.transformer import TransformerEncoderBlock

__all__ = [
    "ElectraEmbeddings",
    "ElectraEncoder",
    "LayerNorm",
    "MaskedLMHead",
    "MultiHeadSelfAttention",
    "ReplacedTokenDetectionHead",
    "TransformerEncoderBlock",
    "sinusoidal_position_encoding",
]
