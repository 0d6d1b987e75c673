"""Training: AdamW with ELECTRA's weight-decay exclusions, schedule and layer-wise LR decay, the
resumable `pretrain` run, and `finetune`/`evaluate` for text classification.

`pretrain` and `finetune` read as stages: set up (`*_setup.py`: arguments, data, vocabulary,
model) -> restore -> fit -> write the products. Their run directories are `electra_tf.runs`;
where and how they run, `electra_tf.distribute`."""

from electra_tf.config.finetuning import FinetuneConfig, load_finetune_config
from electra_tf.training.evaluation import evaluate
from electra_tf.training.finetune import finetune
from electra_tf.training.optimizer import (
    NO_DECAY_NAME_PATTERNS,
    LayerwiseAdamW,
    create_finetuning_optimizer,
    create_optimizer,
    layerwise_lr_multipliers,
)
from electra_tf.training.pretrain import pretrain
from electra_tf.training.schedules import WarmupLinearDecay

__all__ = ["NO_DECAY_NAME_PATTERNS", "FinetuneConfig", "LayerwiseAdamW", "WarmupLinearDecay",
           "create_finetuning_optimizer", "create_optimizer", "evaluate", "finetune",
           "layerwise_lr_multipliers", "load_finetune_config", "pretrain"]
