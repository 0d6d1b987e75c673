"""Optimisation: AdamW with ELECTRA's weight-decay exclusions and learning-rate schedule."""

from electra_tf.training.optimizer import NO_DECAY_NAME_PATTERNS, create_optimizer
from electra_tf.training.schedules import WarmupLinearDecay

__all__ = ["NO_DECAY_NAME_PATTERNS", "WarmupLinearDecay", "create_optimizer"]
