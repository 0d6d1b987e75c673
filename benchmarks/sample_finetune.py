"""The quickstart's fine-tune as a low-data check: does a pretrained encoder beat the same
architecture from random initialisation when only the 400 shipped labelled reviews are there?

    .venv/bin/python benchmarks/sample_finetune.py --pretrained runs/imdb_v2/pretrain_electra \\
        [--seeds 0 1] [--validation-reviews 1000] [--work-dir runs/sample_finetune]

Every setting fine-tunes on the 400 labelled reviews shipped with the package with the
quickstart's recipe (128 pieces, batch 16, `electra_tf.quickstart.sample_finetune_config`), with
the pretrained encoder or from scratch, and a few longer / gentler variants. Each model is scored
on the first `--validation-reviews` reviews of the IMDB validation split (the 2,500 that
`electra-tf finetune --task imdb` carves from train, split_seed 0): neither the IMDB test split
nor the 200 shipped test reviews (which the quickstart itself reports) are read, so the choice
of a quickstart recipe can be made here. Finished runs are kept in `--work-dir` and skipped.
Writes benchmarks/results/sample_finetune.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)
RESULTS = os.path.join(HERE, "results")
CORPUS = os.path.join(os.path.dirname(ROOT), "shared", "data", "aclImdb_v1-text.tar.gz")

# (from_scratch, epochs, overrides of the quickstart's recipe). The first two are the quickstart's
# recipe (pretrained: lr 1e-3 and layer-wise decay 0.8; from scratch: the config's from_scratch
# section, lr 5e-4, decay 1.0) with the paper's [CLS] head, as it ran before the mean head. The
# next give the pretrained encoder every chance: more epochs, a gentler rate, no layer-wise
# decay, the from-scratch settings. The last four repeat the quickstart's and the from-scratch
# settings with the mean-pooling head (the quickstart's recipe since).
# Every setting starts from BASE, the sample recipe these settings were written against (the
# quickstart's defaults have moved since), so each one means the same run whatever they are now.
BASE = ("training.learning_rate=1e-3", "training.layerwise_decay=0.8",
        "training.encoder_dropout=null")
CLS, MEAN = "training.pooling=cls", "training.pooling=mean"
LONG = "preprocessing.max_seq_length=256"
EDROP = "training.encoder_dropout=0.1"
SETTINGS = (
    (False, 3, (CLS,)),
    (True, 3, (CLS,)),
    (False, 10, ("training.learning_rate=3e-4", CLS)),
    (False, 10, (CLS,)),
    (False, 10, ("training.layerwise_decay=1.0", CLS)),
    (False, 10, ("training.layerwise_decay=1.0", "training.learning_rate=5e-4", CLS)),
    (True, 10, (CLS,)),
    (False, 3, (MEAN,)),
    (True, 3, (MEAN,)),
    (False, 10, ("training.layerwise_decay=1.0", "training.learning_rate=5e-4", MEAN)),
    (True, 10, (MEAN,)),
    # With the electra_cpu_imdb preset: longer fine-tuning, a higher rate, and 256 pieces (the
    # shipped reviews are under 1,200 characters: 256 pieces hold nearly all of each).
    (False, 20, ("training.layerwise_decay=1.0", "training.learning_rate=5e-4", MEAN)),
    (True, 20, (MEAN,)),
    (False, 10, ("training.layerwise_decay=1.0", "training.learning_rate=1e-3", MEAN)),
    (False, 10, ("training.layerwise_decay=1.0", "training.learning_rate=5e-4", MEAN, LONG)),
    (True, 10, (MEAN, LONG)),
    # Dropout 0.1 inside the encoder while fine-tuning (the paper's; the preset was pretrained
    # without), a higher rate, and a stronger layer-wise decay.
    (False, 10, ("training.layerwise_decay=1.0", "training.learning_rate=1e-3", MEAN, EDROP)),
    (True, 10, (MEAN, EDROP)),
    (False, 10, ("training.layerwise_decay=1.0", "training.learning_rate=2e-3", MEAN)),
    (False, 10, ("training.layerwise_decay=0.5", "training.learning_rate=2e-3", MEAN)),
    (False, 10, ("training.layerwise_decay=1.0", "training.learning_rate=2e-3", MEAN, EDROP)),
    (False, 10, ("training.layerwise_decay=1.0", "training.learning_rate=1e-3", MEAN, EDROP,
                 LONG)),
    (True, 10, (MEAN, EDROP, LONG)),
    # The chosen pretrained recipe trained twice as long, and with more dropout.
    (False, 20, ("training.layerwise_decay=1.0", "training.learning_rate=1e-3", MEAN, EDROP)),
    (False, 10, ("training.layerwise_decay=1.0", "training.learning_rate=1e-3", MEAN,
                 "training.encoder_dropout=0.2")),
    # The chosen recipe with the top block (of 4) re-initialised (Zhang et al. 2021).
    (False, 10, ("training.layerwise_decay=1.0", "training.learning_rate=1e-3", MEAN, EDROP,
                 "training.reinitialise_top_layers=1")),
    # The chosen recipe keeping only the embeddings (and E->H projection): all 4 blocks fresh.
    (False, 10, ("training.layerwise_decay=1.0", "training.learning_rate=1e-3", MEAN, EDROP,
                 "training.reinitialise_top_layers=4")),
    # The chosen recipe as LP-FT (Kumar et al. 2022): the first 3 of 10 epochs train only the
    # head on the frozen pretrained features.
    (False, 10, ("training.layerwise_decay=1.0", "training.learning_rate=1e-3", MEAN, EDROP,
                 "training.frozen_encoder_epochs=3")),
)


def effective_training(from_scratch: bool, epochs: int, seed: int, overrides) -> dict:
    """The learning rate, layer-wise decay, epochs and head a setting actually trains with."""
    from electra_tf.quickstart import sample_finetune_config

    config = sample_finetune_config(epochs, seed, overrides)
    if from_scratch:
        config = config.for_scratch_training()
    return {"learning_rate": config.training.learning_rate,
            "layerwise_decay": config.training.layerwise_decay, "epochs": config.training.epochs,
            "pooling": config.training.pooling,
            "encoder_dropout": config.training.encoder_dropout,
            "reinitialise_top_layers": config.training.reinitialise_top_layers,
            "frozen_encoder_epochs": config.training.frozen_encoder_epochs,
            "max_seq_length": config.preprocessing.max_seq_length}


def run_setting(work_dir, pretrained, validation, from_scratch, epochs, seed, overrides) -> dict:
    """Fine-tunes one setting and seed (unless done) and scores it on `validation` (cached)."""
    from electra_tf.data.preprocessor import classification_dataset
    from electra_tf.files import read_json, write_json
    from electra_tf.pretrained.finetuned import load_finetuned
    from electra_tf.quickstart import finetune_on_sample, has_classifier
    from electra_tf.tasks.scoring import predict_metrics

    training = effective_training(from_scratch, epochs, seed, overrides)
    arm = "scratch" if from_scratch else "pretrained"
    length, edrop = training["max_seq_length"], training["encoder_dropout"]
    reinit, frozen = training["reinitialise_top_layers"], training["frozen_encoder_epochs"]
    out = os.path.join(work_dir, f"{arm}_e{training['epochs']}_lr{training['learning_rate']:g}"
                                 f"_d{training['layerwise_decay']:g}"
                                 f"{'_mean' * (training['pooling'] == 'mean')}"
                                 f"{f'_len{length}' * (length != 128)}"
                                 f"{'' if edrop is None else f'_edrop{edrop:g}'}"
                                 f"{f'_reinit{reinit}' * (reinit > 0)}"
                                 f"{f'_frozen{frozen:g}' * (frozen > 0)}_seed{seed}")
    score_path = os.path.join(out, "sample_validation.json")
    if not os.path.exists(score_path):
        if not has_classifier(out):
            finetune_on_sample(out, pretrained, epochs=epochs, seed=seed,
                               from_scratch=from_scratch, verbose=0, overrides=overrides)
        classifier, preprocessor, run, _ = load_finetuned(out)
        metrics = predict_metrics(classifier, classification_dataset(validation, preprocessor, 64,
                                                                      sort_by_length=True),
                                  run["label_names"])
        write_json(score_path, {"validation_accuracy": metrics["accuracy"],
                                "validation_examples": len(validation.labels)})
    score = read_json(score_path)
    finetuned = read_json(os.path.join(out, "metrics.json"))
    return {"arm": arm, "seed": seed, **training, "steps": finetuned["steps"],
            "train_time_s": finetuned["train_time_s"], **score,
            "out_dir": os.path.relpath(out, ROOT)}


def summarize(runs) -> list[dict]:
    """One row per setting: validation accuracy per seed and its median."""
    rows = {}
    for run in runs:
        key = (run["arm"], run["pooling"], run.get("max_seq_length", 128), run["epochs"],
               run["learning_rate"], run["layerwise_decay"], run.get("encoder_dropout"),
               run.get("reinitialise_top_layers", 0), run.get("frozen_encoder_epochs", 0))
        rows.setdefault(key, []).append(run)
    return [{"arm": arm, "pooling": pooling, "max_seq_length": length, "epochs": epochs,
             "learning_rate": lr, "layerwise_decay": decay, "encoder_dropout": edrop,
             "reinitialise_top_layers": reinit, "frozen_encoder_epochs": frozen,
             "validation_accuracy": [r["validation_accuracy"] for r in group],
             "median": statistics.median(r["validation_accuracy"] for r in group),
             "median_train_time_s": statistics.median(r["train_time_s"] for r in group)}
            for (arm, pooling, length, epochs, lr, decay, edrop, reinit, frozen), group
            in rows.items()]


def markdown(result) -> str:
    from host_info import host_summary

    host = host_summary()
    lines = ["# The quickstart's fine-tune, pretrained vs from scratch (400 labelled reviews)", "",
             f"`{result['command']}` on 2 CPU cores ({host['cpu_model']}, "
             f"{'/'.join(host['cpu_flags'])}). Pretrained encoder: `{result['pretrained']}`. "
             "Fine-tuned on the 400 shipped labelled reviews (batch 16), scored on "
             f"{result['validation_examples']} reviews of the IMDB validation split; the IMDB "
             "test split and the 200 shipped test reviews are not read. Times are wall "
             "seconds of fine-tuning (the CPU may have been shared).", "",
             "Encoder dropout: the encoder's own hidden and attention dropout while fine-tuning "
             "(-: the rate it was pretrained with, 0 for this preset).", "",
             "| encoder | head | pieces | epochs | learning rate | layer-wise decay | encoder "
             "dropout | validation accuracy per seed | median | fine-tune s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in result["settings"]:
        reinit = row.get("reinitialise_top_layers", 0)
        encoder = row["arm"] + (f" (top {reinit} re-initialised)" if reinit else "")
        frozen = row.get("frozen_encoder_epochs", 0)
        encoder += f" (LP-FT: frozen for {frozen:g} epochs)" if frozen else ""
        lines.append(f"| {encoder} | {row['pooling']} | {row.get('max_seq_length', 128)} | "
                     f"{row['epochs']} | "
                     f"{row['learning_rate']:g} | "
                     f"{row['layerwise_decay']:g} | "
                     f"{'-' if row.get('encoder_dropout') is None else row['encoder_dropout']} | "
                     + ", ".join(f"{a:.3f}" for a in row["validation_accuracy"])
                     + f" | **{row['median']:.3f}** | {row['median_train_time_s']:.0f} |")
    best = {arm: max(rows, key=lambda r: r["median"]) for arm in ("pretrained", "scratch")
            if (rows := [r for r in result["settings"] if r["arm"] == arm])}
    lines += ["", "Best median: " + ", ".join(
        f"{arm} {row['median']:.3f} ({row['pooling']} head, {row.get('max_seq_length', 128)} "
        f"pieces, {row['epochs']} epochs, lr "
        f"{row['learning_rate']:g}, decay {row['layerwise_decay']:g}"
        + ("" if row.get("encoder_dropout") is None
           else f", encoder dropout {row['encoder_dropout']}")
        + (f", top layers re-initialised: {row['reinitialise_top_layers']}"
           if row.get("reinitialise_top_layers") else "")
        + (f", encoder frozen for the first {row['frozen_encoder_epochs']:g} epochs"
           if row.get("frozen_encoder_epochs") else "") + ")"
        for arm, row in best.items()) + "."]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pretrained", required=True,
                        help="a pretraining run directory or an installed preset's name")
    parser.add_argument("--corpus", default=CORPUS, help="the aclImdb archive or folder")
    parser.add_argument("--work-dir", default=os.path.join(ROOT, "runs", "sample_finetune"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--validation-reviews", type=int, default=1000)
    parser.add_argument("--settings", type=int, nargs="+", default=list(range(len(SETTINGS))),
                        help="indices into SETTINGS to run (default: all)")
    parser.add_argument("--results-name", default="sample_finetune",
                        help="writes benchmarks/results/NAME.{json,md}")
    args = parser.parse_args()

    from electra_tf.data.classification import load_labelled_texts, stratified_split
    from electra_tf.pretrained.presets import resolve_pretrained

    pretrained = resolve_pretrained(args.pretrained)
    validation = stratified_split(load_labelled_texts("imdb", args.corpus, "train"), 0.1, 0)[1]
    validation = validation.subset(range(min(args.validation_reviews, len(validation.labels))))
    runs = []
    for from_scratch, epochs, overrides in (SETTINGS[i] for i in args.settings):
        for seed in args.seeds:
            runs.append(run_setting(args.work_dir, pretrained, validation, from_scratch, epochs,
                                    seed, (*BASE, *overrides)))
            print(json.dumps(runs[-1]), flush=True)
    result = {"command": " ".join(["python benchmarks/sample_finetune.py", *sys.argv[1:]]),
              "pretrained": args.pretrained, "validation_examples": len(validation.labels),
              "seeds": args.seeds, "settings": summarize(runs), "runs": runs}
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, f"{args.results_name}.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    with open(os.path.join(RESULTS, f"{args.results_name}.md"), "w", encoding="utf-8") as f:
        f.write(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
