"""Data: corpora, tokenisation and the pretraining input pipeline."""

from electra_tf.data.synthetic import synthetic_dataset, synthetic_token_arrays

__all__ = ["synthetic_dataset", "synthetic_token_arrays"]
