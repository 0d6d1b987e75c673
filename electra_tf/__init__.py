"""electra_tf: ELECTRA pretraining, fine-tuning and export for TensorFlow 2 / Keras 3."""

import os as _os

# Keras 3 must run on TensorFlow here (tf.data, tf-text and SavedModel are the product).
_os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# TensorFlow turns its oneDNN kernels on by default only on CPUs with AVX-512 VNNI/BF16 or AMX;
# on AVX2-only hosts it falls back to Eigen, and our pretraining step then takes ~1.8x as long
# (electra_tiny on an AVX2 AMD EPYC: 1.02 vs 0.56 s per step). Only effective when TensorFlow is
# not imported yet; a user's own setting wins.
_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"

from electra_tf.native_logs import hidden_native_logs as _hidden_native_logs  # noqa: E402
from electra_tf.native_logs import hide_native_logs  # noqa: E402

# Importing TensorFlow prints C++ log lines (oneDNN, CUDA probing) that no setting silences;
# ELECTRA_TF_NATIVE_LOGS=show keeps them (electra_tf/native_logs.py).
with _hidden_native_logs():
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
    from electra_tf.models import (  # noqa: E402
        Discriminator,
        ElectraPretrainer,
        Generator,
        SequenceClassifier,
    )
    from electra_tf.training import (  # noqa: E402
        FinetuneConfig,
        WarmupLinearDecay,
        create_optimizer,
        evaluate,
        finetune,
        load_finetune_config,
        pretrain,
    )

__all__ = [
    "ConfigError",
    "DataError",
    "ElectraError",
    "Discriminator",
    "ElectraConfig",
    "ElectraEncoder",
    "ElectraPretrainer",
    "FinetuneConfig",
    "Generator",
    "SequenceClassifier",
    "ModelConfig",
    "OptimizerConfig",
    "PretrainingConfig",
    "WarmupLinearDecay",
    "WordPieceTokenizer",
    "__version__",
    "create_optimizer",
    "hide_native_logs",
    "evaluate",
    "finetune",
    "load_config",
    "load_finetune_config",
    "open_corpus",
    "pretrain",
    "pretraining_dataset",
]
