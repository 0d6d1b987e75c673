"""Typed configuration from YAML: one dataclass per file kind, one per section.

    base         the YAML round trip, checked keys and types, `--set section.key=value`
    pretraining  `ElectraConfig`: model, pretraining objective, optimizer
    finetuning   `FinetuneConfig`: task, preprocessing, training recipe, from-scratch overrides
"""

from electra_tf.config.base import (
    DEFAULT_CONFIG_DIR,
    YamlConfig,
    apply_overrides,
    dataclass_from_dict,
    load_yaml_config,
    resolve_config_path,
)
from electra_tf.config.finetuning import (
    FinetuneConfig,
    PreprocessingConfig,
    ScratchConfig,
    TaskConfig,
    TrainingConfig,
    load_finetune_config,
)
from electra_tf.config.pretraining import (
    BERT_CLS_ID,
    BERT_MASK_ID,
    BERT_PAD_ID,
    BERT_SEP_ID,
    BERT_UNK_ID,
    ElectraConfig,
    ModelConfig,
    OptimizerConfig,
    PretrainingConfig,
    check_weight_sharing,
    load_config,
)
from electra_tf.errors import ConfigError

__all__ = [
    "BERT_CLS_ID", "BERT_MASK_ID", "BERT_PAD_ID", "BERT_SEP_ID", "BERT_UNK_ID", "ConfigError",
    "DEFAULT_CONFIG_DIR", "ElectraConfig", "FinetuneConfig", "ModelConfig", "OptimizerConfig",
    "PreprocessingConfig", "PretrainingConfig", "ScratchConfig", "TaskConfig", "TrainingConfig",
    "YamlConfig", "apply_overrides", "check_weight_sharing", "dataclass_from_dict",
    "load_config", "load_finetune_config", "load_yaml_config", "resolve_config_path",
]
