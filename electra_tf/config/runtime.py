"""Config sections every run has, whatever it trains: where and how it computes (`runtime:`).

    runtime:         # RuntimeConfig: strategy, precision, compilation (electra_tf.distribute)
      strategy: auto
      precision: float32

They change how fast a run goes (and, for precision, its rounding), never what it trains: a
run may be resumed with other runtime settings (on another machine, in another precision).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from electra_tf.errors import ConfigError

# `electra_tf.distribute.PRECISIONS` and `.STRATEGIES` (kept here as plain names: reading a
# config does not import TensorFlow).
Precision = Literal["float32", "mixed_bfloat16", "bfloat16_matmul", "mixed_float16"]
Strategy = Literal["auto", "one_device", "mirrored", "multi_worker", "tpu"]


@dataclass
class RuntimeConfig:
    """`strategy`: "auto" (every GPU, else the CPU; a TPU where attached), "one_device",
    "mirrored", "multi_worker" (the cluster in `TF_CONFIG`) or "tpu" (`tpu`: its name,
    grpc://HOST:PORT or "local"); `precision`: one of `electra_tf.distribute.PRECISIONS`;
    `jit_compile`: XLA for the training step; `steps_per_execution`: steps per `tf.function`
    call; `deterministic`: deterministic TensorFlow ops (same seed -> same weights, slower)."""

    strategy: Strategy = "auto"
    tpu: Optional[str] = None
    precision: Precision = "float32"
    jit_compile: bool = False
    steps_per_execution: int = 1
    deterministic: bool = False

    def validate(self) -> None:
        if self.steps_per_execution < 1:
            raise ConfigError("runtime.steps_per_execution (--steps-per-execution) must be >= 1.")
        if self.tpu and self.strategy not in ("tpu", "auto"):
            raise ConfigError(f"--tpu {self.tpu} only applies to --strategy tpu (got --strategy "
                              f"{self.strategy}).")
