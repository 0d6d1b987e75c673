"""`electra-tf demo`: ELECTRA's objective learning on a synthetic corpus in a minute or two,
without any data or vocabulary to prepare (a smoke test of an installation)."""

from __future__ import annotations

import time

import numpy as np

from electra_tf.config import ElectraConfig
from electra_tf.data.synthetic import synthetic_dataset
from electra_tf.errors import ConfigError
from electra_tf.models.pretrainer import ElectraPretrainer
from electra_tf.training.optimizer import create_optimizer

# Epochs the steps are shown in, and the fewest steps that show a trend (10 per epoch).
EPOCHS, MIN_STEPS = 6, 60


def run_demo(steps: int = 600, batch_size: int = 32, seed: int = 0) -> int:
    """Pretrains a 2-layer ELECTRA on `synthetic_dataset` and prints how the losses moved.
    Returns the exit status: 0 when both losses fell (and the loss is finite), else 1.

    Raises:
        ConfigError: fewer than `MIN_STEPS` steps, too few to show a trend.
    """
    if steps < MIN_STEPS:
        # Below 12 steps the first and last epoch's losses were noise: seeds 0 and 2 of
        # `--steps 5` "failed"; every seed of 12, 36 and 60 steps passed.
        raise ConfigError(f"demo --steps {steps} is too few to show the losses fall: use at "
                          f"least {MIN_STEPS} ({EPOCHS} epochs of {MIN_STEPS // EPOCHS} steps; "
                          "the default 600 takes a minute or two).")
    # Small enough to show the objective working within a minute or two on 2 CPU cores.
    config = ElectraConfig.from_dict({
        "model": dict(vocab_size=128, embedding_size=64, hidden_size=64, num_layers=2,
                      num_heads=1, intermediate_size=256, generator_hidden_fraction=0.25),
        "pretraining": dict(max_seq_length=32, pad_id=0, cls_id=2, sep_id=3, mask_id=4),
        "optimizer": dict(learning_rate=2e-3, warmup_steps=max(1, steps // 12),
                          train_steps=steps, batch_size=batch_size),
    })
    print("Pretraining ELECTRA (generator hidden 16, discriminator hidden 64, 2 layers) on a "
          "synthetic corpus of topic-wise token progressions ...")
    pretrainer = ElectraPretrainer(config.model, config.pretraining, seed=seed)
    pretrainer.compile(optimizer=create_optimizer(config.optimizer))
    dataset = synthetic_dataset(4000, 32, 128, batch_size, seed=seed)
    epochs = EPOCHS
    started = time.time()
    history = pretrainer.fit(dataset, steps_per_epoch=max(1, steps // epochs), epochs=epochs,
                             verbose=2)
    logs = history.history
    print(f"\nDone in {time.time() - started:.0f} s. First epoch -> last epoch:")
    for key in ("mlm_loss", "disc_loss", "mlm_accuracy", "disc_recall"):
        print(f"  {key:<13} {logs[key][0]:.3f} -> {logs[key][-1]:.3f}")
    ok = logs["disc_loss"][-1] < logs["disc_loss"][0] and logs["mlm_loss"][-1] < logs["mlm_loss"][0]
    print("Both losses fell: the objective is learning." if ok else
          "The losses did not fall; please report this with the log above.")
    return 0 if ok and np.isfinite(logs["loss"][-1]) else 1
