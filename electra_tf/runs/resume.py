"""Resume rules: whether a run folder's run can be continued with the settings given, which
settings a resumed run takes from the run it continues, and when a run is already finished."""

from __future__ import annotations

import logging
import os

from electra_tf.errors import CheckpointError
from electra_tf.files import read_json
from electra_tf.runs.layouts import FinetunePaths, PretrainPaths

logger = logging.getLogger(__name__)


def config_differences(previous: dict, current: dict, sections) -> list[str]:
    """`section.key: old -> new` for every setting of `sections` (of two `to_dict()` configs)
    that differs."""
    return [f"{section}.{key}: {previous[section].get(key)!r} -> {value!r}"
            for section in sections for key, value in current[section].items()
            if previous[section].get(key) != value]


# The pretraining settings a resumed run takes from the run it continues (a warning says so).
PRETRAINING_RUN_KEYS = ("seed", "lower_case", "doc_format", "log_every", "save_every")


def resumed_pretraining_settings(paths: PretrainPaths, requested: dict) -> dict:
    """The run.json settings of this invocation: `requested`, or, when `paths` holds a run to
    resume, that run's own settings (its seed must be the one requested).

    Raises:
        CheckpointError: the run there has another seed.
    """
    previous = read_json(paths.run)
    if not previous:
        return requested
    if previous.get("seed") != requested["seed"]:
        raise CheckpointError(
            f"This output directory holds a run with seed {previous.get('seed')}, not "
            f"{requested['seed']}: its data order and random streams cannot be continued with "
            f"another seed. Pass --seed {previous.get('seed')} or use a new --out-dir.")
    for key in PRETRAINING_RUN_KEYS:
        if key in previous and previous[key] != requested.get(key):
            logger.warning("Resuming with the run's own %s=%r (asked: %r).", key, previous[key],
                           requested.get(key))
    if previous.get("corpus") != requested["corpus"]:
        logger.warning("The corpus differs from the run's (%s, now %s); resuming anyway: the data "
                       "position is only exact for the same corpus.", previous.get("corpus"),
                       requested["corpus"])
    return dict(requested, **{k: v for k, v in previous.items() if k != "corpus"})


def check_resumable_pretraining(paths: PretrainPaths, config) -> None:
    """Refuses to continue the run in `paths` with another model or objective (its checkpoints
    would not fit); a changed optimizer setting is allowed, with a warning.

    Raises:
        CheckpointError: the model or pretraining section differs from the run's config.yaml.
    """
    if not os.path.exists(paths.config):
        return
    previous, current = type(config).from_yaml(paths.config).to_dict(), config.to_dict()
    differences = config_differences(previous, current, ("model", "pretraining"))
    if differences:
        raise CheckpointError(
            f"{paths.root} holds a run with a different model or objective ("
            + "; ".join(differences) + "). Its checkpoints cannot continue with this config: "
            "use the same config to resume, or a new --out-dir.")
    changed = config_differences(previous, current, ("optimizer",))
    if changed:
        logger.warning("Resuming with changed optimizer settings: %s.", "; ".join(changed))


def finished_pretraining_metrics(paths: PretrainPaths, config) -> dict:
    """The metrics of a run that has already trained `config`'s steps and written all its
    products (`{}` otherwise: there is work to do)."""
    metrics = read_json(paths.metrics)
    products = [paths.generator] + ([paths.discriminator]
                                    if config.pretraining.electra_objective else [])
    if metrics and all(map(os.path.exists, products)) \
            and metrics.get("steps", 0) >= config.optimizer.train_steps:
        return metrics
    return {}


def check_resumable_finetuning(paths: FinetunePaths, config, identity: dict) -> bool:
    """True when `paths` holds a run of these settings to continue or (finished) to leave as it
    is; False for a fresh run. `identity`: the run.json settings a resumed run must share
    (task, data, initialisation).

    Raises:
        CheckpointError: the folder holds a run (finished or not) with another config or model.
    """
    if not os.path.exists(paths.config):
        if paths.is_finished():  # a classifier without its settings: nothing to compare
            raise CheckpointError(f"{paths.root} already holds a fine-tuned classifier; choose "
                                  "a new --out-dir (or delete that one) to train again.")
        return False
    current = config.to_dict()
    differences = config_differences(type(config).from_yaml(paths.config).to_dict(), current,
                                     [s for s, values in current.items() if isinstance(values, dict)])
    previous_run = read_json(paths.run)
    differences += [f"{key}: {previous_run.get(key)!r} -> {value!r}"
                    for key, value in identity.items() if previous_run.get(key) != value]
    if differences:
        if paths.is_finished():
            held, to_do = "a finished", "Use a new --out-dir to train with these settings."
        else:
            held, to_do = "an unfinished", ("Re-run it with its own settings to resume it, or "
                                            "use a new --out-dir.")
        raise CheckpointError(f"{paths.root} holds {held} fine-tuning run with other settings ("
                              + "; ".join(differences) + f"). {to_do}")
    return True


def finished_finetuning_metrics(paths: FinetunePaths) -> dict:
    """The metrics of a finished fine-tuning run (`{}` when there is work to do). As for
    pretraining, the same command run again after the end changes nothing and succeeds."""
    metrics = read_json(paths.metrics)
    if paths.is_finished() and metrics.get("validation"):
        return metrics
    return {}


def resumed_best(paths: FinetunePaths, history: list[dict], start_step: int):
    """`(best, wait)` for `BestCheckpoint`: the best record so far and how many evaluations
    since it, from `best.json` and the history kept up to `start_step`."""
    best = read_json(paths.best_record) or None
    if best is None or not os.path.isfile(paths.best_weights):
        return None, 0
    if best["step"] > start_step:
        # Killed in the moment between saving a new best and the checkpoint of that step: the
        # resumed run re-evaluates that step, and `BestCheckpoint` recognises it.
        return best, 0
    return best, sum(1 for record in history if record["step"] > best["step"])
