"""ELECTRA against masked-LM at equal pretraining FLOPs (issue 56): the shipped presets'
architecture, vocabulary and data, both objectives at 2.7e14 and 8.1e14 training FLOPs, at least
two pretraining runs per objective at 8.1e14, every encoder fine-tuned with the same recipes.

    # the pretraining runs (hours each; resumable: re-run the same command after an interruption)
    nice -n 19 .venv/bin/python benchmarks/electra_vs_mlm.py --pretrain mlm_8.1e14_seed0
    # fine-tune every finished encoder (finished fine-tunes are kept and skipped) and write
    # benchmarks/results/electra_vs_mlm.{json,md,png}
    .venv/bin/python benchmarks/electra_vs_mlm.py [--recipes quickstart quickstart_lpft imdb_full]

Pretraining runs (`PRETRAINING`): the two presets are the ELECTRA runs of seed 0 (installed;
`tools/make_preset.py` gives their commands); the rest are `electra-tf pretrain` commands in
`--work-dir`. An MLM run takes the ELECTRA run's config with `pretraining.electra_objective=false`
and as many steps as give the same training FLOPs (`imdb_experiment.equal_flops_steps`: 10,142
for 8,000 ELECTRA steps, 30,427 for 24,000). Fine-tuning recipes (`RECIPES`):

- `quickstart`, `quickstart_lpft`: the quickstart's recipe on the 400 shipped labelled reviews
  (settings 16 and 27 of `benchmarks/sample_finetune.py`: mean head, 128 pieces, 10 epochs,
  lr 1e-3, encoder dropout 0.1; LP-FT freezes the encoder for the first 3 epochs), seeds 0-7,
  scored on the first 1,000 reviews of the IMDB validation split (the shipping rule's data);
- `imdb_full`: full IMDB with the v2 experiment's chosen settings (512 pieces, lr 5e-4, no
  layer-wise decay, `configs/finetune/imdb.yaml`), seeds 0-2, for the seed-0 run of each
  objective at 8.1e14; the test split is read once per finished model.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)
RESULTS = os.path.join(HERE, "results")
CORPUS = os.path.join(os.path.dirname(ROOT), "shared", "data", "aclImdb_v1-text.tar.gz")
WORK_DIR = os.path.join(ROOT, "runs", "electra_vs_mlm")
CLI = [sys.executable, "-m", "electra_tf.cli"]

_PRETRAIN = ["pretrain", "--config", os.path.join(ROOT, "configs", "electra_cpu.yaml"),
             "--vocab", os.path.join(ROOT, "electra_tf", "pretrained", "presets", "electra_cpu_imdb",
                                     "vocab.txt"),
             "--save-every", "1000", "--log-every", "100", "--quiet"]
_MLM = ["--set", "pretraining.electra_objective=false"]
# name: (objective, pretraining seed, encoder: an installed preset or a folder under --work-dir,
#        the extra `electra-tf pretrain` arguments of a run made here, or None for a preset)
PRETRAINING = {
    "electra_2.7e14_seed0": ("electra", 0, "electra_cpu_imdb", None),
    "mlm_2.7e14_seed0": ("mlm", 0, "mlm_2.7e14_seed0", ["--steps", "10142", "--seed", "0",
                                                          *_MLM]),
    "electra_8.1e14_seed0": ("electra", 0, "electra_cpu_imdb_long", None),
    "electra_8.1e14_seed1": ("electra", 1, "electra_8.1e14_seed1", ["--steps", "24000",
                                                                  "--seed", "1"]),
    "mlm_8.1e14_seed0": ("mlm", 0, "mlm_8.1e14_seed0", ["--steps", "30427", "--seed", "0",
                                                          *_MLM]),
    "mlm_8.1e14_seed1": ("mlm", 1, "mlm_8.1e14_seed1", ["--steps", "30427", "--seed", "1",
                                                          *_MLM]),
}
# recipe: (labelled examples, fine-tuning seeds, the pretraining runs it scores)
RECIPES = {
    "quickstart": (400, list(range(8)), list(PRETRAINING)),
    "quickstart_lpft": (400, list(range(8)), list(PRETRAINING)),
    "imdb_full": (22500, [0, 1, 2], ["electra_8.1e14_seed0", "mlm_8.1e14_seed0"]),
}
SAMPLE_SETTING = {"quickstart": 16, "quickstart_lpft": 27}
IMDB_FULL_SETTINGS = ["preprocessing.max_seq_length=512", "training.learning_rate=0.0005",
                      "training.layerwise_decay=1"]


def pretraining_command(name: str, work_dir: str, corpus: str) -> list[str] | None:
    """The `electra-tf` arguments of a run made here (None for a preset)."""
    extra = PRETRAINING[name][3]
    if extra is None:
        return None
    return [*_PRETRAIN, "--corpus", corpus, "--out-dir", os.path.join(work_dir, name), *extra]


def encoder_folder(name: str, work_dir: str) -> str | None:
    """The finished encoder's folder; None while its run has not finished."""
    from electra_tf.pretrained.presets import is_preset_name, preset_path
    from electra_tf.runs.layouts import PretrainPaths

    source = PRETRAINING[name][2]
    if is_preset_name(source):
        return preset_path(source)
    folder = os.path.join(work_dir, source)
    return folder if os.path.isfile(PretrainPaths(folder).metrics) else None


def train_flops(folder: str) -> float:
    """Training FLOPs of a finished pretraining run or preset (config x steps x batch)."""
    from electra_tf.config import load_config
    from electra_tf.files import read_json
    from electra_tf.training.flops import pretraining_flops_per_sequence

    manifest = read_json(os.path.join(folder, "preset.json"))
    if manifest:
        return float(manifest["train_flops"])
    metrics = read_json(os.path.join(folder, "metrics.json"))
    config = load_config(os.path.join(folder, "config.yaml"))
    return float(pretraining_flops_per_sequence(config) * metrics["steps"]
                 * metrics["batch_size"])


def sample_accuracies(recipe: str, encoder: str, seeds, work_dir: str, validation) -> list:
    from sample_finetune import BASE, SETTINGS, run_setting

    from_scratch, epochs, overrides = SETTINGS[SAMPLE_SETTING[recipe]]
    return [run_setting(work_dir, encoder, validation, from_scratch, epochs, seed,
                        (*BASE, *overrides))["validation_accuracy"] for seed in seeds]


def imdb_full_accuracies(encoder: str, seeds, work_dir: str, corpus: str) -> list:
    """Test accuracy per seed (each finished model's test split read once)."""
    from electra_tf.files import read_json

    accuracies = []
    for seed in seeds:
        out = os.path.join(work_dir, f"imdb_full_seed{seed}")
        metrics = read_json(os.path.join(out, "metrics.json"))
        if "validation" not in metrics:
            sets = [f"training.seed={seed}", *IMDB_FULL_SETTINGS]
            subprocess.run([*CLI, "finetune", "--task", "imdb", "--data", corpus, "--pretrained",
                            encoder, "--out-dir", out, "--config",
                            os.path.join(ROOT, "configs", "finetune", "imdb.yaml"), "--quiet",
                            *[x for s in sets for x in ("--set", s)]], check=True)
        if "test" not in read_json(os.path.join(out, "metrics.json")):
            subprocess.run([*CLI, "evaluate", "--model", out, "--split", "test"], check=True)
        accuracies.append(read_json(os.path.join(out, "metrics.json"))["test"]["accuracy"])
    return accuracies


def verdict(rows: list[dict]) -> str:
    """ELECTRA - MLM at each budget and recipe (medians over pretraining runs of the per-run
    medians), with the spread between pretraining runs of the same objective beside it."""
    parts = []
    for recipe in RECIPES:
        for flops in sorted({row["train_flops_budget"] for row in rows}):
            by_objective = {objective: [row["median"] for row in rows
                                        if row["recipe"] == recipe and row["objective"] ==
                                        objective and row["train_flops_budget"] == flops]
                            for objective in ("electra", "mlm")}
            if not all(by_objective.values()):
                continue
            gap = (statistics.median(by_objective["electra"])
                   - statistics.median(by_objective["mlm"]))
            spreads = [f"{objective} {max(values) - min(values):.3f} over {len(values)} runs"
                       for objective, values in by_objective.items() if len(values) > 1]
            parts.append(f"{recipe} at {flops:.1e} FLOPs: ELECTRA - MLM = {gap:+.3f}"
                         + (f" (pretraining-run spread: {', '.join(spreads)})" if spreads
                            else " (one pretraining run per objective: spread not measured)"))
    return "; ".join(parts) or "no recipe has both objectives yet"


def markdown(result: dict) -> str:
    host = result["host"]
    lines = ["# ELECTRA vs masked-LM at equal pretraining FLOPs", "",
             f"`{result['command']}` on {host['cpu_model']} ({host['cpu_cores']} cores). "
             "Accuracy: the median over fine-tuning seeds (validation, first 1,000 IMDB "
             "validation reviews, for the 400-review recipes; test for full IMDB).", "",
             f"**Verdict.** {result['verdict']}", "",
             "| objective | train FLOPs | pretraining seed | recipe | labelled | median | per seed |",
             "|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        lines.append(f"| {row['objective']} | {row['train_flops']:.2e} | {row['pretrain_seed']} "
                     f"| {row['recipe']} | {row['labelled_examples']} | {row['median']:.3f} | "
                     + ", ".join(f"{a:.3f}" for a in row["per_seed"]) + " |")
    if result["unfinished"]:
        lines += ["", "Not finished yet (pretraining): " + ", ".join(result["unfinished"]) + "."]
    lines += ["", "Pretraining commands (`electra-tf` arguments; presets: `tools/make_preset.py`):",
              ""]
    lines += [f"- `{name}`: `{command}`" for name, command in result["commands"].items()]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recipes = [recipe for recipe in RECIPES if any(row["recipe"] == recipe for row in rows)]
    if not recipes:
        return
    figure, axes = plt.subplots(1, len(recipes), figsize=(5 * len(recipes), 4), squeeze=False)
    for axis, recipe in zip(axes[0], recipes):
        for objective, colour in (("electra", "tab:blue"), ("mlm", "tab:orange")):
            mine = [row for row in rows if row["recipe"] == recipe
                    and row["objective"] == objective]
            if not mine:
                continue
            axis.scatter([row["train_flops"] for row in mine], [row["median"] for row in mine],
                         color=colour, alpha=0.6)  # every pretraining run
            budgets = sorted({row["train_flops_budget"] for row in mine})
            axis.plot(budgets, [statistics.median(row["median"] for row in mine
                                                  if row["train_flops_budget"] == budget)
                                for budget in budgets], color=colour, marker="o",
                      label=objective)
        axis.set_xscale("log")
        axis.set_xlabel("pretraining FLOPs")
        axis.set_ylabel("accuracy (median over fine-tuning seeds)")
        axis.set_title(recipe)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pretrain", choices=[n for n, spec in PRETRAINING.items() if spec[3]],
                        help="run (or resume) this pretraining run, then stop")
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--work-dir", default=WORK_DIR)
    parser.add_argument("--corpus", default=CORPUS)
    args = parser.parse_args()
    if args.pretrain:
        return subprocess.run([*CLI, *pretraining_command(args.pretrain, args.work_dir,
                                                          args.corpus)]).returncode

    from host_info import host_summary

    from electra_tf.data.classification import load_labelled_texts, stratified_split

    validation = stratified_split(load_labelled_texts("imdb", args.corpus, "train"), 0.1, 0)[1]
    validation = validation.subset(range(1000))
    rows, unfinished = [], []
    for name, (objective, seed, _, _) in PRETRAINING.items():
        encoder = encoder_folder(name, args.work_dir)
        if encoder is None:
            unfinished.append(name)
            continue
        flops = train_flops(encoder)
        for recipe in args.recipes:
            labelled, seeds, runs = RECIPES[recipe]
            if name not in runs:
                continue
            work = os.path.join(args.work_dir, "finetune", name, recipe)
            per_seed = (imdb_full_accuracies(encoder, seeds, work, args.corpus)
                        if recipe == "imdb_full" else
                        sample_accuracies(recipe, encoder, seeds, work, validation))
            rows.append({"objective": objective, "train_flops": flops,
                         "train_flops_budget": float(f"{flops:.1e}"), "pretrain_seed": seed,
                         "pretraining_run": name, "recipe": recipe, "labelled_examples": labelled,
                         "median": statistics.median(per_seed), "per_seed": per_seed})
            print(json.dumps(rows[-1]), flush=True)
    commands = {name: " ".join(pretraining_command(name, "runs/electra_vs_mlm",
                                                   "aclImdb_v1-text.tar.gz")).replace(
                                                       ROOT + os.sep, "")
                for name, spec in PRETRAINING.items() if spec[3]}
    result = {"command": "python benchmarks/electra_vs_mlm.py", "host": host_summary(),
              "rows": rows, "verdict": verdict(rows), "unfinished": unfinished,
              "commands": commands}
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "electra_vs_mlm.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    with open(os.path.join(RESULTS, "electra_vs_mlm.md"), "w", encoding="utf-8") as f:
        f.write(markdown(result))
    plot(rows, os.path.join(RESULTS, "electra_vs_mlm.png"))
    print(result["verdict"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
