"""electra_tf: ELECTRA pretraining, fine-tuning and export for TensorFlow 2 / Keras 3."""

import os as _os

# Keras 3 must run on TensorFlow here (tf.data, tf-text and SavedModel are the product).
_os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"

from electra_tf.config import (  # noqa: E402
    ConfigError,
    ElectraConfig,
    ModelConfig,
    OptimizerConfig,
    PretrainingConfig,
    load_config,
)
from electra_tf.data import WordPieceTokenizer, open_corpus, pretraining_dataset  # noqa: E402
from electra_tf.errors import DataError, ElectraError  # noqa: E402
from electra_tf.layers import ElectraEncoder  # noqa: E402
from electra_tf.models import Discriminator, ElectraPretrainer, Generator  # noqa: E402
from electra_tf.training import WarmupLinearDecay, create_optimizer, pretrain  # noqa: E402

__all__ = [
    "ConfigError",
    "DataError",
    "ElectraError",
    "Discriminator",
    "ElectraConfig",
    "ElectraEncoder",
    "ElectraPretrainer",
    "Generator",
    "ModelConfig",
    "OptimizerConfig",
    "PretrainingConfig",
    "WarmupLinearDecay",
    "WordPieceTokenizer",
    "__version__",
    "create_optimizer",
    "load_config",
    "open_corpus",
    "pretrain",
    "pretraining_dataset",
]
