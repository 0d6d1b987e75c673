"""IMDB sentiment: ELECTRA vs MLM pretraining at equal compute vs a from-scratch Transformer.

    .venv/bin/python benchmarks/imdb_experiment.py [--work-dir runs/imdb_experiment] \\
        [--config configs/electra_tiny.yaml] [--pretrain-steps 4000] [--seeds 0 1 2] \\
        [--models electra mlm scratch] [--set training.epochs=3 ...]

Every stage is an ordinary `electra-tf` command on its own output directory, so the experiment
resumes where it stopped (a finished stage is skipped, a pretraining run continues from its last
checkpoint):

  1. pretrain ELECTRA on the IMDB texts (train/unsup + train/pos + train/neg; never test/)
  2. pretrain the MLM objective (BERT-style, discriminator-sized network) with the same vocabulary
     for the same training FLOPs (analytic count, `electra_tf.training.flops`; wall times are
     reported too)
  3. choose the truncation (head vs head+tail) by validation accuracy of ELECTRA, seed 0
  4. fine-tune ELECTRA, MLM and the from-scratch Transformer (same architecture and vocabulary,
     random init) with the same recipe, once per seed; each finished model is evaluated on the
     test set once. Validation (carved from train) is the only thing choices look at.

Writes benchmarks/results/imdb.{json,md} after every stage (unfinished cells say so).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
RESULTS = os.path.join(ROOT, "benchmarks", "results")
CORPUS = os.path.join(os.path.dirname(ROOT), "shared", "data", "aclImdb_v1-text.tar.gz")
TRUNCATIONS = ("head_tail", "head")


def cli(*args):
    command = [sys.executable, "-m", "electra_tf.cli", *map(str, args)]
    print("+ electra-tf", " ".join(map(str, args)), flush=True)
    began = time.time()
    subprocess.run(command, check=True)
    return time.time() - began


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def finished(out_dir, key="validation"):
    path = os.path.join(out_dir, "metrics.json")
    return os.path.exists(path) and key in read_json(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work-dir", default=os.path.join(ROOT, "runs", "imdb_experiment"))
    parser.add_argument("--corpus", default=CORPUS, help="the aclImdb archive or folder")
    parser.add_argument("--config", default=os.path.join(ROOT, "configs", "electra_tiny.yaml"))
    parser.add_argument("--pretrain-steps", type=int, default=4000)
    parser.add_argument("--finetune-config",
                        default=os.path.join(ROOT, "configs", "finetune", "imdb.yaml"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", default=["electra", "mlm", "scratch"],
                        choices=["electra", "mlm", "scratch"])
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="fine-tuning config override, e.g. training.epochs=2")
    parser.add_argument("--truncation", choices=TRUNCATIONS, default=None,
                        help="skip the choice by validation and use this one")
    args = parser.parse_args()
    work = args.work_dir
    os.makedirs(work, exist_ok=True)
    state = {"command": " ".join(["python benchmarks/imdb_experiment.py", *sys.argv[1:]]),
             "pretraining": {}, "finetuning": {}, "truncation_choice": {},
             "models": args.models, "seeds": args.seeds,
             "setup": {"pretraining_config": os.path.relpath(args.config, ROOT),
                       "finetuning_config": os.path.relpath(args.finetune_config, ROOT),
                       "finetuning_overrides": args.overrides}}

    # 1-2. Pretraining, ELECTRA then MLM at equal FLOPs.
    electra_dir = os.path.join(work, "pretrain_electra")
    mlm_dir = os.path.join(work, "pretrain_mlm")
    pretrain_common = ["--config", args.config, "--corpus", args.corpus, "--save-every", "500",
                       "--log-every", "100", "--quiet"]
    if {"electra", "mlm", "scratch"} & set(args.models):
        if not finished(electra_dir, "final"):
            cli("pretrain", "--out-dir", electra_dir, "--steps", args.pretrain_steps,
                *pretrain_common)
        state["pretraining"]["electra"] = summarize_pretraining(electra_dir)
    if "mlm" in args.models:
        mlm_steps = equal_flops_steps(electra_dir, args.pretrain_steps)
        vocab_size = len(open(os.path.join(electra_dir, "vocab.txt"), encoding="utf-8")
                         .read().splitlines())
        if not finished(mlm_dir, "final"):
            cli("pretrain", "--out-dir", mlm_dir, "--steps", mlm_steps,
                "--vocab", os.path.join(electra_dir, "vocab.txt"),
                "--set", "pretraining.electra_objective=false",
                "--set", f"model.vocab_size={vocab_size}", *pretrain_common)
        state["pretraining"]["mlm"] = summarize_pretraining(mlm_dir)
    write_results(state)

    def finetune(name, pretrained, seed, truncation, scratch=False):
        out = os.path.join(work, f"finetune_{name}_{truncation}_seed{seed}")
        if not finished(out):
            if os.path.exists(os.path.join(out, "run.json")) and not \
                    os.path.exists(os.path.join(out, "classifier.keras")):
                import shutil

                shutil.rmtree(out)  # an interrupted fine-tune restarts (they are minutes long)
            extra = ["--from-scratch"] if scratch else []
            sets = [f"training.seed={seed}", f"preprocessing.truncation={truncation}",
                    *args.overrides]
            cli("finetune", "--task", "imdb", "--data", args.corpus, "--pretrained", pretrained,
                "--out-dir", out, "--config", args.finetune_config, "--quiet", *extra,
                *[x for s in sets for x in ("--set", s)])
        if not finished(out, "test"):
            cli("evaluate", "--model", out, "--split", "test")
        metrics = read_json(os.path.join(out, "metrics.json"))
        return {"seed": seed, "truncation": truncation,
                "validation_accuracy": metrics["validation"]["accuracy"],
                "test_accuracy": metrics["test"]["accuracy"],
                "test_macro_f1": metrics["test"]["macro"]["f1"],
                "finetune_train_time_s": metrics["train_time_s"],
                "out_dir": os.path.relpath(out, ROOT)}

    # 3. Truncation, chosen on validation only.
    truncation = args.truncation
    if truncation is None:
        for candidate in TRUNCATIONS:
            result = finetune("electra", electra_dir, args.seeds[0], candidate)
            state["truncation_choice"][candidate] = result["validation_accuracy"]
            write_results(state)
        truncation = max(TRUNCATIONS, key=lambda t: state["truncation_choice"][t])
    state["truncation"] = truncation

    # 4. Every model, every seed.
    sources = {"electra": (electra_dir, False), "mlm": (mlm_dir, False),
               "scratch": (electra_dir, True)}
    for name in args.models:
        pretrained, scratch = sources[name]
        runs = state["finetuning"].setdefault(name, [])
        for seed in args.seeds:
            runs.append(finetune(name, pretrained, seed, truncation, scratch))
            write_results(state)
    print(open(os.path.join(RESULTS, "imdb.md"), encoding="utf-8").read())


def equal_flops_steps(electra_dir, electra_steps):
    from electra_tf.config import load_config
    from electra_tf.training.flops import pretraining_flops_per_sequence

    config = load_config(os.path.join(electra_dir, "config.yaml"))
    electra_flops = pretraining_flops_per_sequence(config)
    config.pretraining.electra_objective = False
    mlm_flops = pretraining_flops_per_sequence(config)
    return max(1, round(electra_steps * electra_flops / mlm_flops))


def summarize_pretraining(out_dir):
    from electra_tf.config import load_config
    from electra_tf.training.flops import pretraining_flops_per_sequence

    metrics = read_json(os.path.join(out_dir, "metrics.json"))
    config = load_config(os.path.join(out_dir, "config.yaml"))
    flops = pretraining_flops_per_sequence(config) * metrics["steps"] * metrics["batch_size"]
    return {"steps": metrics["steps"], "batch_size": metrics["batch_size"],
            "train_time_s": metrics["train_time_s"], "train_flops": flops,
            "final": metrics["final"], "out_dir": os.path.relpath(out_dir, ROOT)}


def write_results(state):
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "imdb.json"), "w", encoding="utf-8") as f:
        json.dump(state, f, indent=2)
    lines = ["# IMDB sentiment: ELECTRA vs MLM (equal pretraining FLOPs) vs from scratch", "",
             f"`{state['command']}` on 2 CPU cores. Test accuracy on the 25,000 test reviews, "
             "evaluated once per finished model; every choice (truncation, best checkpoint) was "
             "made on a validation split of 2,500 training reviews.", "",
             *setup_lines(state),
             "## Pretraining", "", "| objective | steps | batch | train FLOPs | train time |",
             "|---|---|---|---|---|"]
    for name, p in state["pretraining"].items():
        lines.append(f"| {name} | {p['steps']} | {p['batch_size']} | {p['train_flops']:.3g} | "
                     f"{p['train_time_s'] / 60:.0f} min |")
    if state["truncation_choice"]:
        lines += ["", "Truncation chosen on validation (ELECTRA, first seed): " + ", ".join(
            f"{t} {acc:.4f}" for t, acc in state["truncation_choice"].items())
            + (f" -> **{state['truncation']}**" if "truncation" in state else "")]
    lines += ["", "## Fine-tuning", "",
              "| model | seeds | test accuracy, median | min-max | per seed | validation acc "
              "(median) | fine-tune time (median) |", "|---|---|---|---|---|---|---|"]
    for name, runs in state["finetuning"].items():
        if not runs:
            continue
        test = [r["test_accuracy"] for r in runs]
        lines.append(
            f"| {name} | {len(runs)} | {100 * statistics.median(test):.2f}% | "
            f"{100 * min(test):.2f}-{100 * max(test):.2f} | "
            + ", ".join(f"{100 * t:.2f}" for t in test) + " | "
            f"{100 * statistics.median(r['validation_accuracy'] for r in runs):.2f}% | "
            f"{statistics.median(r['finetune_train_time_s'] for r in runs) / 60:.0f} min |")
    lines += target_lines(state)
    with open(os.path.join(RESULTS, "imdb.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def setup_lines(state):
    """What was trained: the model and fine-tuning configs named by the command, read with the
    library's loaders so that defaults and `--set` overrides show as they were used (Markdown)."""
    from electra_tf.config import load_config
    from electra_tf.training.finetune_config import load_finetune_config

    setup = state["setup"]
    model = load_config(os.path.join(ROOT, setup["pretraining_config"]))
    finetune = load_finetune_config(os.path.join(ROOT, setup["finetuning_config"]),
                                    setup["finetuning_overrides"])
    m, pre, opt = model.model, model.pretraining, model.optimizer
    pp, tr, fs = finetune.preprocessing, finetune.training, finetune.from_scratch
    return [
        "## Setup", "",
        f"- Encoder (`{setup['pretraining_config']}`, the same for all three models): "
        f"{m.num_layers} layers, hidden {m.hidden_size}, {m.num_heads} heads, "
        f"embeddings {m.embedding_size}; ELECTRA's generator at "
        f"{m.generator_hidden_fraction} of the width. Pretraining: sequences of "
        f"{pre.max_seq_length}, batch {opt.batch_size}, peak learning rate "
        f"{opt.learning_rate}, {opt.warmup_steps} warm-up steps. The MLM model is "
        f"discriminator-sized and masks {pre.mask_prob:.0%} of the tokens, as ELECTRA's "
        "generator input is masked.",
        f"- Fine-tuning (`{setup['finetuning_config']}`"
        + (", with " + ", ".join(f"`{o}`" for o in setup["finetuning_overrides"])
           if setup["finetuning_overrides"] else "")
        + f"): {tr.epochs} epochs, batch {tr.batch_size}, {pp.max_seq_length} pieces, "
        f"AdamW at {tr.learning_rate} with layer-wise decay {tr.layerwise_decay} "
        f"(from scratch: {fs.learning_rate}, layer-wise decay {fs.layerwise_decay}), "
        f"{tr.warmup_fraction:.0%} warm-up, dropout {tr.dropout}; validation accuracy is checked "
        f"{tr.evaluations_per_epoch} times per epoch and the best checkpoint is kept.", ""]


def target_lines(state):
    """The issue's targets against the medians measured so far (Markdown lines, maybe none)."""
    medians = {name: statistics.median(r["test_accuracy"] for r in runs)
               for name, runs in state["finetuning"].items() if runs}
    if "electra" not in medians:
        return []

    def verdict(ok):
        return "reached" if ok else "**not reached**"

    lines = ["", "## Targets", "", "| target | measured | verdict |", "|---|---|---|"]
    for name, margin in (("mlm", 1.0), ("scratch", 3.0)):
        if name in medians:
            gap = 100 * (medians["electra"] - medians[name])
            lines.append(f"| ELECTRA >= {name} + {margin:.1f} points (medians) | "
                         f"{gap:+.2f} points | {verdict(gap >= margin)} |")
    best_name = max(medians, key=medians.get)
    budget_s = state["pretraining"].get(best_name, {}).get("train_time_s", 0) + max(
        r["finetune_train_time_s"] for r in state["finetuning"][best_name])
    lines.append(f"| test accuracy >= 91.3% within 3 h (pretrain + fine-tune) | "
                 f"{100 * medians[best_name]:.2f}% ({best_name}, median) in "
                 f"{budget_s / 3600:.1f} h | {verdict(medians[best_name] >= 0.913)} |")
    missing = [name for name in state["models"]
               if len(state["finetuning"].get(name, [])) < len(state["seeds"])]
    if missing:
        lines += ["", "Provisional: seeds of " + ", ".join(missing) + " are still missing."]
    return lines


if __name__ == "__main__":
    main()
