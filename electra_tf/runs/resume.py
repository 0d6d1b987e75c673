"""Resume rules: whether a run folder's run can be continued with the settings given, which
settings a resumed run takes from the run it continues, and when a run is already finished."""

from __future__ import annotations

import logging
import os

import yaml

from electra_tf.errors import CheckpointError, first_line
from electra_tf.files import read_json
from electra_tf.runs.layouts import FinetunePaths, PretrainPaths

logger = logging.getLogger(__name__)


def config_differences(previous: dict, current: dict, sections) -> list[str]:
    """`section.key: old -> new` for every setting of `sections` (of two `to_dict()` configs)
    that differs."""
    return [f"{section}.{key}: {previous[section].get(key)!r} -> {value!r}"
            for section in sections for key, value in current[section].items()
            if previous[section].get(key) != value]


# The settings a resumed pretraining run takes from the run it continues (a warning says so):
# the data order, the tokenization and the log/checkpoint grid its history and checkpoints
# follow. Other `run`/`corpus` settings (how many checkpoints to keep, how a vocabulary would
# be learned) and `runtime` follow the command.
RESUMED_SETTINGS = {"run": ("seed", "log_every", "save_every"),
                    "corpus": ("doc_format", "lower_case")}


def resumed_pretraining_config(paths: PretrainPaths, config, corpus: str):
    """`config`, or, when `paths` holds a run to resume, `config` with that run's own
    `RESUMED_SETTINGS` (its seed must be the one asked for).

    Raises:
        CheckpointError: the run there has another seed, or its config.yaml is damaged.
    """
    previous = _previous_run_settings(paths)
    if previous is None:
        return config
    current = config.to_dict()
    seed = previous["run"].get("seed")
    if seed != current["run"]["seed"]:
        raise CheckpointError(
            f"This output directory holds a run with seed {seed}, not {current['run']['seed']}: "
            f"its data order and random streams cannot be continued with another seed. Pass "
            f"--seed {seed} or use a new --out-dir.")
    for section, keys in RESUMED_SETTINGS.items():
        for key in keys:
            if key in previous[section] and previous[section][key] != current[section][key]:
                logger.warning("Resuming with the run's own %s.%s=%r (asked: %r).", section, key,
                               previous[section][key], current[section][key])
                current[section][key] = previous[section][key]
    recorded = read_json(paths.run).get("corpus")
    if recorded is not None and recorded != corpus:
        logger.warning("The corpus differs from the run's (%s, now %s); resuming anyway: the data "
                       "position is only exact for the same corpus.", recorded, corpus)
    return type(config).from_dict(current)


def _previous_run_settings(paths: PretrainPaths) -> dict | None:
    """`{"run": {...}, "corpus": {...}}` of the run in `paths` (None: no run there yet). A run
    written before these sections existed kept them in run.json."""
    if not os.path.isfile(paths.config):
        return None
    try:
        with open(paths.config, encoding="utf-8") as f:
            raw = yaml.safe_load(f) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{paths.config} is damaged ({first_line(err)}); restore it from "
                              "a backup, or delete the run directory to start a new run "
                              "there.") from None
    if all(isinstance(raw.get(section), dict) for section in RESUMED_SETTINGS):
        return {section: raw[section] for section in RESUMED_SETTINGS}
    legacy = read_json(paths.run)
    return {section: {key: legacy[key] for key in keys if key in legacy}
            for section, keys in RESUMED_SETTINGS.items()}


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
    # Every section but `runtime`: a run may resume on another device or in another precision.
    differences = config_differences(type(config).from_yaml(paths.config).to_dict(), current,
                                     [s for s, values in current.items()
                                      if isinstance(values, dict) and s != "runtime"])
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
