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
from electra_tf.layers import ElectraEncoder  # noqa: E402
from electra_tf.models import Discriminator, ElectraPretrainer, Generator  # noqa: E402
from electra_tf.training import WarmupLinearDecay, create_optimizer  # noqa: E402

__all__ = [
    "ConfigError",
    "Discriminator",
    "ElectraConfig",
    "ElectraEncoder",
    "ElectraPretrainer",
    "Generator",
    "ModelConfig",
    "OptimizerConfig",
    "PretrainingConfig",
    "WarmupLinearDecay",
    "__version__",
    "create_optimizer",
    "load_config",
]
