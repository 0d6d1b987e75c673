"""Where and how training runs: `tf.distribute` strategies, compilation, determinism.

One entry point per concern, shared by `pretrain`, `finetune` and the CLI:

    strategy = resolve_strategy("auto")       # TPU -> GPUs -> CPU
    with strategy.scope():                    # model, optimizer and metrics live here
        model = ...; model.compile(..., **compile_options(jit_compile=False))
    if is_chief(strategy): ...                # only the chief writes files

`Runtime` bundles them (with the precision, `electra_tf.distribute.precision`) for one
`pretrain` or `finetune` call.

The batch size a user gives is always the *global* batch: `fit` splits each batch over the
replicas, and the pretrainer's `train_step` divides its loss by the number of replicas so that
the all-reduced (summed) gradient is the gradient of the global-batch mean loss.

`MultiWorkerMirroredStrategy` must be created before TensorFlow runs any other op in the process
(it configures collective ops at start-up), so `resolve_strategy` is called first thing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import json
import logging
import os

import tensorflow as tf

from electra_tf.compat import in_multi_worker_mode, op_determinism_enabled
from electra_tf.distribute.precision import precision_policy
from electra_tf.errors import ConfigError, first_line

logger = logging.getLogger(__name__)

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker", "tpu")

# The strategy made by the last `resolve_strategy` call of each kind. MultiWorkerMirrored and TPU
# strategies can only be initialised once per process, so a second `pretrain()` call in the same
# process (a notebook) must reuse them.
_CREATED: dict[tuple, tf.distribute.Strategy] = {}


def resolve_strategy(name: str | tf.distribute.Strategy | None = "auto",
                     tpu: str | None = None) -> tf.distribute.Strategy:
    """Returns the `tf.distribute.Strategy` a `--strategy` name asks for.

    Args:
        name: "auto" (a TPU if one is attached, else all GPUs -- `MirroredStrategy` for several,
            `OneDeviceStrategy` for one -- else the CPU), "one_device" (the first GPU, else the
            CPU), "mirrored" (every local GPU, or every logical CPU device when there is no GPU),
            "multi_worker" (`MultiWorkerMirroredStrategy`; the cluster comes from `TF_CONFIG`),
            "tpu" (`TPUStrategy` on `tpu`), or a ready strategy, returned as is.
        tpu: the TPU to use with "tpu": a TPU name, "grpc://HOST:PORT", or "local" (a TPU VM).
            Defaults to `$TPU_NAME`, then "local".

    Raises:
        ConfigError: an unknown name, `--tpu` without `--strategy tpu`, "multi_worker" without a
            valid `TF_CONFIG`, or "tpu" where no TPU can be reached.
    """
    if isinstance(name, tf.distribute.Strategy):
        return name
    name = (name or "auto").lower().replace("-", "_")
    if name not in STRATEGIES:
        raise ConfigError(f"Unknown strategy {name!r}: choose one of {', '.join(STRATEGIES)}.")
    if tpu and name not in ("tpu", "auto"):
        raise ConfigError(f"--tpu {tpu} only applies to --strategy tpu (got --strategy {name}).")
    key = (name, tpu)
    if key in _CREATED:
        return _CREATED[key]
    if name == "auto":
        name = "tpu" if (tpu or _tpu_is_attached()) else "gpu_auto"
    if name == "tpu":
        strategy = _tpu_strategy(tpu)
    elif name == "multi_worker":
        strategy = _multi_worker_strategy()
    elif name == "mirrored":
        devices = _local_devices("GPU") or _local_devices("CPU")
        strategy = tf.distribute.MirroredStrategy(devices)
    else:  # one_device, or auto without a TPU
        gpus = _local_devices("GPU")
        if name == "gpu_auto" and len(gpus) > 1:
            strategy = tf.distribute.MirroredStrategy(gpus)
        else:
            strategy = tf.distribute.OneDeviceStrategy(gpus[0] if gpus else "/cpu:0")
    _CREATED[key] = strategy
    logger.info("Strategy: %s with %d replica(s)%s.", strategy_name(strategy),
                strategy.num_replicas_in_sync, _describe_devices(strategy))
    return strategy


def strategy_name(strategy: tf.distribute.Strategy) -> str:
    """The public name of a strategy (TF's class for the multi-worker one is
    `CollectiveAllReduceStrategy`)."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "MultiWorkerMirroredStrategy"
    return type(strategy).__name__


def is_chief(strategy: tf.distribute.Strategy | None = None) -> bool:
    """True for the process that writes checkpoints, logs and exports.

    That is every process except the non-chief workers of a multi-worker cluster: the worker
    with index 0 when `TF_CONFIG` has no "chief" task, otherwise the chief.
    """
    strategy = strategy or tf.distribute.get_strategy()
    if not in_multi_worker_mode(strategy):
        return True
    resolver = strategy.cluster_resolver
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type in (None, "chief"):
        return True
    has_chief = "chief" in (resolver.cluster_spec().as_dict() or {})
    return task_type == "worker" and task_id == 0 and not has_chief


def distribution_summary(strategy, precision, jit_compile, steps_per_execution) -> dict:
    """How a run was executed, for its metrics.json."""
    return {"strategy": strategy_name(strategy), "replicas": strategy.num_replicas_in_sync,
            "precision": precision or "float32", "jit_compile": bool(jit_compile),
            "steps_per_execution": steps_per_execution,
            "deterministic_ops": deterministic_ops_enabled()}


def enable_deterministic_ops() -> None:
    """Makes TensorFlow's ops deterministic for the rest of the process, so that two runs with
    the same seed (and a run killed and resumed) end with bit-identical weights.

    By default TensorFlow promises no fixed floating-point summation order (multi-threaded
    reductions, GPU atomics), so runs may drift apart; on our 2-core AVX2 test host two default
    runs happened to agree, and deterministic mode cost no measurable speed (0.96x, within
    noise). Ops without a deterministic kernel then raise an error
    instead of running.
    """
    tf.config.experimental.enable_op_determinism()


def deterministic_ops_enabled() -> bool:
    return op_determinism_enabled()


def compile_options(jit_compile: bool = False, steps_per_execution: int = 1) -> dict:
    """The keyword arguments for `model.compile` that choose how a training step is compiled.

    Args:
        jit_compile: compile the step with XLA. Off by default: on the 2-core CPU we measure on,
            XLA made the pretraining step 4-5x slower (11.7 vs 2.5 s/step).
            On GPUs and TPUs it usually pays; TPUs always use XLA.
        steps_per_execution: run this many steps inside one `tf.function` call (fewer Python
            round trips; on TPUs worth 10-100s). Callbacks then see every N-th batch, so the
            logging and checkpoint intervals must be multiples of it.
    """
    if steps_per_execution < 1:
        raise ConfigError("--steps-per-execution must be >= 1.")
    return {"jit_compile": bool(jit_compile), "steps_per_execution": int(steps_per_execution)}


@dataclasses.dataclass(frozen=True)
class Runtime:
    """Where and how one `pretrain` or `finetune` call trains: its strategy, precision and
    compilation (see `Runtime.create`)."""

    strategy: tf.distribute.Strategy
    precision: str
    jit_compile: bool
    steps_per_execution: int

    @classmethod
    def create(cls, strategy="auto", tpu: str | None = None, precision: str = "float32",
               jit_compile: bool = False, steps_per_execution: int = 1,
               deterministic: bool = False) -> "Runtime":
        """Resolves the strategy first (a multi-worker one must precede every other TF op),
        then turns deterministic ops on if asked (for the rest of the process)."""
        strategy = resolve_strategy(strategy, tpu)
        if deterministic:
            enable_deterministic_ops()
        compile_options(jit_compile, steps_per_execution)  # checks steps_per_execution
        return cls(strategy, precision, bool(jit_compile), int(steps_per_execution))

    @classmethod
    def from_config(cls, runtime, strategy=None) -> "Runtime":
        """The runtime a config's `runtime` section (`electra_tf.config.runtime.RuntimeConfig`)
        describes; `strategy`, a ready `tf.distribute.Strategy`, replaces its strategy name."""
        if strategy is None or isinstance(strategy, str):
            strategy = runtime.strategy
        return cls.create(strategy, runtime.tpu, runtime.precision, runtime.jit_compile,
                          runtime.steps_per_execution, runtime.deterministic)

    @property
    def chief(self) -> bool:
        return is_chief(self.strategy)

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync

    def compile_options(self) -> dict:
        return compile_options(self.jit_compile, self.steps_per_execution)

    @contextlib.contextmanager
    def scope(self):
        """Models, optimizers and metrics made here compute in the precision and have their
        variables placed by the strategy."""
        with precision_policy(self.precision), self.strategy.scope():
            yield

    def summary(self) -> dict:
        return distribution_summary(self.strategy, self.precision, self.jit_compile,
                                    self.steps_per_execution)


# ------------------------------------------------------------------------------ the pieces


def _local_devices(kind: str) -> list[str]:
    return [device.name for device in tf.config.list_logical_devices(kind)]


def _describe_devices(strategy) -> str:
    devices = getattr(strategy.extended, "worker_devices", None)
    return f" on {', '.join(devices)}" if devices else ""


def _tpu_is_attached() -> bool:
    """Cheap check that does not contact a metadata server (which would hang off Google Cloud)."""
    return bool(os.environ.get("TPU_NAME") or glob.glob("/dev/accel*") or
                os.path.exists("/dev/vfio/0"))


def _tpu_strategy(tpu: str | None) -> tf.distribute.Strategy:
    address = tpu or os.environ.get("TPU_NAME") or "local"
    if address.startswith("grpc://") and ":" not in address[len("grpc://"):]:
        raise ConfigError(f"--tpu {address}: a TPU address needs a port (grpc://HOST:8470).")
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=address)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        if not tf.config.list_logical_devices("TPU"):
            raise RuntimeError("the cluster has no TPU devices")
    except Exception as err:  # ValueError, NotFoundError, RuntimeError ... from TF's resolver
        detail = first_line(err, limit=None)
        raise ConfigError(
            f"--strategy tpu: no TPU could be reached at {address!r} ({detail}). Run on a Cloud "
            f"TPU VM (--tpu local), pass --tpu with the TPU's name or grpc://HOST:8470, or use "
            f"--strategy auto to train on the GPUs/CPU of this machine.") from None
    return tf.distribute.TPUStrategy(resolver)


def _multi_worker_strategy() -> tf.distribute.Strategy:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise ConfigError(
            "--strategy multi_worker needs the cluster in the TF_CONFIG environment variable, e.g. "
            'TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
            '"task": {"type": "worker", "index": 0}}\' on the first machine (index 1 on the '
            "second), and the same command on every worker.")
    try:
        spec = json.loads(raw)
        workers = spec["cluster"]["worker"]
        task = spec["task"]
        if task["type"] not in ("worker", "chief") or not isinstance(task["index"], int):
            raise ValueError("task must be {'type': 'worker'|'chief', 'index': int}")
    except (ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"TF_CONFIG is not a valid cluster description ({err}): it needs "
                          f"cluster.worker (a list of host:port) and task.type/task.index.") \
            from None
    logger.info("Multi-worker cluster of %d worker(s); this is %s %d.", len(workers),
                task["type"], task["index"])
    return tf.distribute.MultiWorkerMirroredStrategy()
