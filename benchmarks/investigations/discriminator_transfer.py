"""Why does the ELECTRA preset not beat from-scratch with 400 labelled reviews when an MLM encoder
of equal FLOPs does? Encoders from along pretraining runs and from pretraining variants, each
fine-tuned with the quickstart's chosen recipe on the 400 shipped reviews.

    .venv/bin/python benchmarks/investigations/discriminator_transfer.py \\
        [--work-dir runs/discriminator_transfer] [--rows NAME ...]

Each row names a pretrained encoder: a finished run or installed preset, or checkpoint STEP of a
run (written with `electra_tf.training.pretrain.export_checkpoint`; a checkpoint before a run's
last step is mid-schedule, its learning rate not yet decayed). It is fine-tuned with setting 16
of `benchmarks/sample_finetune.py` (mean head, 128 pieces, 10 epochs, lr 1e-3, no layer-wise
decay, encoder dropout 0.1), or setting 26 (the same with every Transformer block re-initialised:
only the embeddings and E->H projection kept) or 17 (from scratch), seeds 0 and 1 (0-3 for the
rows in DECISION_ROWS), and scored on the first 1,000 reviews of the IMDB validation split; the
test split is never read. The runs the rows read are made by the commands in RUNS (kill a run
after the checkpoint a row needs, or let it finish). Finished fine-tunes are kept in
`--work-dir` and skipped. Writes benchmarks/investigations/results/discriminator_transfer.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BENCHMARKS = os.path.dirname(HERE)
ROOT = os.path.dirname(BENCHMARKS)
sys.path.insert(0, ROOT)
sys.path.insert(0, BENCHMARKS)
RESULTS = os.path.join(HERE, "results")

_PRETRAIN = ("electra-tf pretrain --config configs/electra_cpu.yaml --corpus "
             "aclImdb_v1-text.tar.gz --vocab electra_tf/pretrained/presets/electra_cpu_imdb/vocab.txt "
             "--save-every 1000 --quiet")
_SHARED_ENCODER = "--set model.generator_hidden_fraction=1.0 --set pretraining.share_encoder=true"
# The pretraining runs the rows read: the preset's recipe and vocabulary, one change each.
RUNS = {
    "runs/preset_long/pretrain_electra": f"{_PRETRAIN} --out-dir runs/preset_long/pretrain_electra "
                                         "--steps 24000 --keep-checkpoints 30",
    "runs/levers/gdes_8k": f"{_PRETRAIN} --out-dir runs/levers/gdes_8k --steps 8000 "
                           "--set pretraining.embedding_sharing=gradient_disentangled",
    "runs/levers/mask25_8k": f"{_PRETRAIN} --out-dir runs/levers/mask25_8k --steps 8000 "
                             "--set pretraining.mask_prob=0.25",
    "runs/levers/shared_enc": f"{_PRETRAIN} --out-dir runs/levers/shared_enc --steps 5425 "
                              f"{_SHARED_ENCODER}",
    "runs/levers/shared_dw10": f"{_PRETRAIN} --out-dir runs/levers/shared_dw10 --steps 5425 "
                               f"{_SHARED_ENCODER} --set pretraining.disc_weight=10",
    "runs/imdb_v2/pretrain_mlm": "the MLM arm of benchmarks/imdb_experiment.py (v2)",
}
FINETUNED, EMBEDDINGS_ONLY, FROM_SCRATCH, LP_FT = 16, 26, 17, 27
# The rows a shipping decision rests on get more seeds: two seeds differ by up to 0.05.
DECISION_ROWS = ("scratch", "preset", "mlm", "shared_5425", "shared_dw10_5425", "preset_lpft",
                 "tied_8000", "tied_16000", "tied_24000", "tied_24000_lpft")

# (name, what it is, pretrained source, checkpoint step or None for the finished product, setting)
ROWS = (
    ("scratch", "from scratch (the preset's architecture and vocabulary)", "electra_cpu_imdb",
     None, FROM_SCRATCH),
    ("tied_0", "ELECTRA as the preset: the initialisation (step 0), no pretraining",
     "runs/preset_long/pretrain_electra", 0, FINETUNED),
    ("tied_2000", "ELECTRA as the preset: step 2,000 of a 24,000-step schedule",
     "runs/preset_long/pretrain_electra", 2000, FINETUNED),
    ("tied_8000", "ELECTRA as the preset: step 8,000 of a 24,000-step schedule",
     "runs/preset_long/pretrain_electra", 8000, FINETUNED),
    ("tied_16000", "ELECTRA as the preset: step 16,000 of a 24,000-step schedule",
     "runs/preset_long/pretrain_electra", 16000, FINETUNED),
    ("tied_24000", "ELECTRA as the preset, 3x its compute: finished (24,000 steps, 8.1e14 "
     "FLOPs)", "runs/preset_long/pretrain_electra", None, FINETUNED),
    ("tied_24000_lpft", "ELECTRA as the preset, 3x its compute, fine-tuned as LP-FT (the encoder "
     "frozen for the first 3 of 10 epochs)", "runs/preset_long/pretrain_electra", None, LP_FT),
    ("preset", "ELECTRA: the shipped preset (8,000 of 8,000 steps, 2.7e14 FLOPs)",
     "electra_cpu_imdb", None, FINETUNED),
    ("preset_lpft", "ELECTRA: the shipped preset, fine-tuned as LP-FT (the encoder frozen for "
     "the first 3 of 10 epochs)", "electra_cpu_imdb", None, LP_FT),
    ("gdes_2000", "ELECTRA, gradient-disentangled embedding sharing: step 2,000 of 8,000",
     "runs/levers/gdes_8k", 2000, FINETUNED),
    ("mask25_2000", "ELECTRA, 25% masking: step 2,000 of 8,000",
     "runs/levers/mask25_8k", 2000, FINETUNED),
    ("shared_2000", "ELECTRA, one encoder for generator and discriminator (full-size "
     "generator): step 2,000 of 5,425 (5,425 = the preset's FLOPs)",
     "runs/levers/shared_enc", 2000, FINETUNED),
    ("shared_3000", "ELECTRA, one encoder for generator and discriminator: step 3,000 of 5,425",
     "runs/levers/shared_enc", 3000, FINETUNED),
    ("shared_5425", "ELECTRA, one encoder for generator and discriminator: finished (5,425 of "
     "5,425 steps)", "runs/levers/shared_enc", None, FINETUNED),
    ("shared_dw10_5425", "ELECTRA, one encoder, RTD loss weight 10 instead of 50: finished "
     "(5,425 of 5,425 steps)", "runs/levers/shared_dw10", None, FINETUNED),
    ("mlm", "MLM: the v2 arm, same architecture and FLOPs as the preset",
     "runs/imdb_v2/pretrain_mlm", None, FINETUNED),
    ("preset_embeddings", "the preset's embeddings only (all 4 blocks re-initialised)",
     "electra_cpu_imdb", None, EMBEDDINGS_ONLY),
    ("mlm_embeddings", "the MLM arm's embeddings only (all 4 blocks re-initialised)",
     "runs/imdb_v2/pretrain_mlm", None, EMBEDDINGS_ONLY),
)


def pretraining_state(source: str, step: int | None) -> dict:
    """The run's logged discriminator AUC and recall and MLM accuracy at `step` (the last logged
    when None): from its history.jsonl, or a preset's final metrics; {} when not logged."""
    from electra_tf.pretrained.presets import MANIFEST, resolve_pretrained
    from electra_tf.runs.layouts import PretrainPaths

    paths = PretrainPaths(resolve_pretrained(source) if step is None
                          else os.path.join(ROOT, source))
    if os.path.isfile(paths.history):
        with open(paths.history, encoding="utf-8") as f:
            records = [json.loads(line) for line in f if line.strip()]
    elif os.path.isfile(paths.join(MANIFEST)):
        with open(paths.join(MANIFEST), encoding="utf-8") as f:
            records = [json.load(f)["final_metrics"]]
    else:
        return {}
    matching = [r for r in records if step is None or r["step"] == step]
    if not matching:
        return {}
    record = matching[-1]
    return {key: round(record[key], 3) for key in ("disc_auc", "disc_recall", "mlm_accuracy")
            if key in record}


def encoder_folder(work_dir: str, name: str, source: str, step: int | None) -> str | None:
    """The folder fine-tuning loads: the source itself (a finished run or an installed preset),
    or checkpoint `step` exported once; None while the run has not got there yet."""
    from electra_tf.errors import CheckpointError
    from electra_tf.pretrained.presets import is_preset_name, resolve_pretrained
    from electra_tf.runs.layouts import PretrainPaths
    from electra_tf.training.pretrain import export_checkpoint

    if step is None:  # metrics.json is a run's last file
        finished = is_preset_name(source) or os.path.isfile(PretrainPaths(source).metrics)
        return resolve_pretrained(source) if finished else None
    exported = PretrainPaths(os.path.join(work_dir, name, "encoder"))
    if not os.path.isfile(exported.discriminator):
        run_dir = os.path.join(ROOT, source)
        if not os.path.isfile(PretrainPaths(run_dir).config):
            return None  # not started
        try:
            export_checkpoint(run_dir, step, exported.root)
        except CheckpointError:  # no checkpoint of that step (yet)
            return None
    return exported.root


def with_earlier_rows(rows: list[dict]) -> list[dict]:
    """`rows` plus the rows of the previous result file that this run did not measure (marked
    `earlier_run`), in ROWS' order: re-running where an old pretraining run is gone, or for a
    few `--rows`, keeps the measurements already made. Rows not in ROWS are history (an earlier
    run of a remade pretraining run, say) and are kept after their `of_row`."""
    path = os.path.join(RESULTS, "discriminator_transfer.json")
    measured = {row["name"] for row in rows}
    earlier = []
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            earlier = [dict(row, earlier_run=True) for row in json.load(f)["rows"]
                       if row["name"] not in measured]
    order = {row[0]: i for i, row in enumerate(ROWS)}

    def position(row: dict) -> float:
        # A row kept as history (e.g. from an earlier pretraining run whose run was remade)
        # names the row it belongs after in `of_row`.
        if row["name"] in order:
            return order[row["name"]]
        return order.get(row.get("of_row"), len(order)) + 0.5

    return sorted(rows + earlier, key=position)


def against_scratch(row: dict, scratch: dict | None) -> str:
    """The row's median minus from scratch's and, over the seeds both have, on how many the row
    is above (the shipping decision's two numbers), e.g. "+0.016, 5 of 8"; "-" for from scratch
    itself or when there is nothing to compare."""
    if scratch is None or row["name"] == scratch["name"]:
        return "-"
    scratch_by_seed = dict(zip(scratch["seeds"], scratch["validation_accuracy"]))
    paired = [(accuracy, scratch_by_seed[seed])
              for seed, accuracy in zip(row["seeds"], row["validation_accuracy"])
              if seed in scratch_by_seed]
    above = sum(accuracy > baseline for accuracy, baseline in paired)
    return f"{row['median'] - scratch['median']:+.3f}, {above} of {len(paired)}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", default=os.path.join(ROOT, "runs", "discriminator_transfer"))
    parser.add_argument("--corpus", default=os.path.join(os.path.dirname(ROOT), "shared", "data",
                                                         "aclImdb_v1-text.tar.gz"))
    parser.add_argument("--rows", nargs="+", default=[row[0] for row in ROWS])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--decision-seeds", type=int, nargs="+", default=[0, 1, 2, 3],
                        help="seeds of the rows in DECISION_ROWS")
    args = parser.parse_args()

    from host_info import host_summary
    from sample_finetune import BASE, SETTINGS, run_setting

    from electra_tf.data.classification import load_labelled_texts, stratified_split

    validation = stratified_split(load_labelled_texts("imdb", args.corpus, "train"), 0.1, 0)[1]
    validation = validation.subset(range(1000))
    rows, unfinished = [], []
    for name, what, source, step, setting in ROWS:
        if name not in args.rows:
            continue
        folder = encoder_folder(args.work_dir, name, source, step)
        if folder is None:
            unfinished.append((name, f"{what} (`{source}` has not got there yet)"))
            print(f"skipped {name}: {source} is not finished", flush=True)
            continue
        from_scratch, epochs, overrides = SETTINGS[setting]
        seeds = args.decision_seeds if name in DECISION_ROWS else args.seeds
        runs = [run_setting(os.path.join(args.work_dir, name), folder, validation, from_scratch,
                            epochs, seed, (*BASE, *overrides)) for seed in seeds]
        accuracies = [run["validation_accuracy"] for run in runs]
        rows.append({"name": name, "encoder": what, "source": source, "step": step,
                     "setting": setting, "seeds": seeds, "validation_accuracy": accuracies,
                     "median": statistics.median(accuracies),
                     "pretraining": ({} if setting == FROM_SCRATCH
                                     else pretraining_state(source, step))})
        print(json.dumps(rows[-1]), flush=True)
    rows = with_earlier_rows(rows)
    shown = {row["name"] for row in rows}
    unfinished = [text for name, text in unfinished if name not in shown]
    host = host_summary()
    result = {"command": "python benchmarks/investigations/discriminator_transfer.py",
              "validation_examples": len(validation.labels), "seeds": args.seeds,
              "decision_seeds": args.decision_seeds,
              "runs": {source: command for source, command in RUNS.items()},
              "rows": rows, "not_measured_yet": unfinished, "host": host}
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "discriminator_transfer.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    lines = ["# Which pretrained encoders help with 400 labelled reviews?", "",
             f"`{result['command']}` on {host['cpu_cores']} CPU cores ({host['cpu_model']}, "
             f"{'/'.join(host['cpu_flags'])}). Each encoder fine-tuned on the 400 shipped "
             "labelled reviews with the quickstart's recipe (setting "
             f"{FINETUNED} of `benchmarks/sample_finetune.py`; embeddings-only rows: setting "
             f"{EMBEDDINGS_ONLY}; from scratch: setting {FROM_SCRATCH}), seeds "
             f"{', '.join(map(str, args.seeds))} (the rows a shipping decision rests on: 4 or "
             f"more, this time {', '.join(map(str, args.decision_seeds))}; each row lists its "
             "accuracies from seed 0 up), scored on "
             f"{len(validation.labels)} IMDB validation reviews. Detection AUC, recall and MLM "
             "accuracy: the pretraining run's logged training metrics at that step.", "",
             "vs from scratch: the median's difference, and on how many of the seeds both "
             "have the row is above from scratch.", "",
             "| encoder | validation per seed | median | vs from scratch | disc AUC | "
             "disc recall | MLM accuracy |",
             "|---|---|---|---|---|---|---|"]
    scratch = next((row for row in rows if row["name"] == "scratch"), None)
    for row in rows:
        state = row["pretraining"]
        lines.append(f"| {row['encoder']}{' (earlier run)' * row.get('earlier_run', False)} | "
                     + ", ".join(f"{a:.3f}" for a in row["validation_accuracy"])
                     + f" | **{row['median']:.3f}** | {against_scratch(row, scratch)} | "
                     f"{state.get('disc_auc', '-')} | {state.get('disc_recall', '-')} | "
                     f"{state.get('mlm_accuracy', '-')} |")
    if any(row.get("earlier_run") for row in rows):
        lines += ["", "(earlier run): kept from the previous result file, not measured this "
                  "time (not among `--rows`, or its pretraining run is gone: `runs/` is not "
                  "committed and does not move with the machine)."]
    if unfinished:
        lines += ["", "Not measured yet: " + "; ".join(unfinished) + "."]
    lines += ["", "Runs read (`runs/` is not committed; these commands remake them):", ""]
    lines += [f"- `{source}`: `{command}`" for source, command in RUNS.items()]
    with open(os.path.join(RESULTS, "discriminator_transfer.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
