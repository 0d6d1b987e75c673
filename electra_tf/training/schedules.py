"""Learning-rate schedule of ELECTRA pretraining and fine-tuning."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="electra_tf")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up combined with linear decay to zero, exactly as the authors' optimiser:

        lr(step) = peak_lr * min(1, step / warmup_steps) * max(0, 1 - step / total_steps)

    The decay runs from step 0 (the reference multiplies a `polynomial_decay(power=1)` over the
    whole run by the warm-up ramp), so the rate at the end of warm-up is
    `peak_lr * (1 - warmup_steps / total_steps)`, a hair below the peak; with 10k of 1M steps
    the difference is 1%.

    Args:
        peak_learning_rate: the configured learning rate.
        warmup_steps: steps of the linear ramp from 0 (0 disables warm-up).
        total_steps: step at which the rate reaches 0.
    """

    def __init__(self, peak_learning_rate, warmup_steps, total_steps):
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}.")
        self.peak_learning_rate = float(peak_learning_rate)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        decay = ops.maximum(0.0, 1.0 - step / float(self.total_steps))
        warmup = 1.0
        if self.warmup_steps > 0:
            warmup = ops.minimum(1.0, step / float(self.warmup_steps))
        return self.peak_learning_rate * warmup * decay

    def get_config(self):
        return {"peak_learning_rate": self.peak_learning_rate,
                "warmup_steps": self.warmup_steps, "total_steps": self.total_steps}
