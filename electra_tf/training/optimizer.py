"""AdamW as ELECTRA uses it."""

from __future__ import annotations

import keras

from electra_tf.config import OptimizerConfig
from electra_tf.training.schedules import WarmupLinearDecay

# LayerNormalization's scale/offset are `gamma`/`beta`; every Dense/EinsumDense/MLM-head bias is
# `bias`. Keras searches these patterns in `variable.name`, which on the TensorFlow backend is the
# tf.Variable's full name ("encoder/.../layer_norm/gamma:0"), not Keras's short name ("gamma"),
# so the patterns anchor on the last path component and allow the ":0" suffix.
NO_DECAY_NAME_PATTERNS = tuple(rf"(^|/){name}(:\d+)?$" for name in ("gamma", "beta", "bias"))


def create_optimizer(config: OptimizerConfig | None = None, **overrides) -> keras.optimizers.AdamW:
    """Builds AdamW with the warm-up/linear-decay schedule, global-norm clipping and decoupled
    weight decay that skips LayerNorm and bias variables (the authors' `exclude_from_weight_decay`).

    Args:
        config: an `OptimizerConfig`; keyword overrides replace its fields
            (e.g. `create_optimizer(cfg, train_steps=500)`).

    Returns:
        a `keras.optimizers.AdamW` ready for `model.compile(optimizer=...)`.
    """
    config = config or OptimizerConfig()
    if overrides:
        config = OptimizerConfig(**{**config.__dict__, **overrides})
    config.validate()
    schedule = WarmupLinearDecay(config.learning_rate, config.warmup_steps, config.train_steps)
    optimizer = keras.optimizers.AdamW(
        learning_rate=schedule,
        weight_decay=config.weight_decay,
        beta_1=config.beta_1,
        beta_2=config.beta_2,
        epsilon=config.epsilon,
        global_clipnorm=config.clipnorm if config.clipnorm > 0 else None,
    )
    optimizer.exclude_from_weight_decay(var_names=list(NO_DECAY_NAME_PATTERNS))
    return optimizer
