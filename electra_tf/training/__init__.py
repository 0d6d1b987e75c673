"""Training: AdamW with ELECTRA's weight-decay exclusions and schedule, and the resumable
`pretrain` run (checkpoints, logs, outputs)."""

from electra_tf.training.optimizer import NO_DECAY_NAME_PATTERNS, create_optimizer
from electra_tf.training.pretrain import pretrain
from electra_tf.training.schedules import WarmupLinearDecay

__all__ = ["NO_DECAY_NAME_PATTERNS", "WarmupLinearDecay", "create_optimizer", "pretrain"]
