"""Where and how training runs: `tf.distribute` strategies (`strategy`), mixed precision
(`precision`), and keeping N replicas equivalent to one device (`replicas`)."""

from electra_tf.distribute.precision import (
    PRECISIONS,
    precision_policy,
    serialized_in_precision,
    set_precision,
    with_precision,
)
from electra_tf.distribute.replicas import (
    DistributedFitFixes,
    gradients_already_summed,
    gradients_are_summed,
    replica_uniform,
    sum_over_replicas,
)
from electra_tf.distribute.strategy import (
    STRATEGIES,
    Runtime,
    compile_options,
    deterministic_ops_enabled,
    distribution_summary,
    enable_deterministic_ops,
    is_chief,
    resolve_strategy,
    strategy_name,
)

__all__ = ["PRECISIONS", "STRATEGIES", "DistributedFitFixes", "Runtime", "compile_options",
           "deterministic_ops_enabled", "distribution_summary", "enable_deterministic_ops",
           "gradients_already_summed", "gradients_are_summed", "is_chief", "precision_policy",
           "replica_uniform", "resolve_strategy", "serialized_in_precision", "set_precision",
           "strategy_name", "sum_over_replicas", "with_precision"]
