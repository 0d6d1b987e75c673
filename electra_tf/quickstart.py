"""`electra-tf quickstart`: its recipes on the embedded IMDB sample (shared with the notebooks)
and the tour that runs them.

The tour's pretraining is `electra_tiny` shrunk to what 400 reviews support and 2 CPU cores run
in minutes (a 4,000-piece vocabulary, 2 layers, sequences of 128 pieces): it shows the losses
fall, not a useful encoder. The fine-tuning starts from the installed `electra_cpu_imdb_long`
preset when there is one (as LP-FT: see `lp_ft_overrides`), and from that tour encoder otherwise.
"""

from __future__ import annotations

import os

from electra_tf.config import ElectraConfig, load_config
from electra_tf.config.finetuning import FinetuneConfig, load_finetune_config
from electra_tf.data.samples import SAMPLE_CORPUS, SAMPLE_LABELLED
from electra_tf.files import read_json, write_json
from electra_tf.runs.layouts import FinetunePaths, PretrainPaths
from electra_tf.training.finetune import finetune
from electra_tf.training.pretrain import pretrain


def sample_pretraining_overrides(steps: int = 300) -> list[str]:
    """The `--set` overrides that turn `electra_tiny` into the sample recipe (warm-up 10% of
    `steps`); also what `electra-tf pretrain --config electra_tiny` needs to run it."""
    return ["model.vocab_size=4000", "model.num_layers=2", "pretraining.max_seq_length=128",
            "optimizer.learning_rate=2e-3", f"optimizer.warmup_steps={max(1, steps // 10)}"]


def sample_pretraining_config(steps: int = 300, overrides=()) -> ElectraConfig:
    """`electra_tiny` for the 400-review sample (warm-up 10% of `steps`)."""
    return load_config("electra_tiny", [*sample_pretraining_overrides(steps), *overrides])


def pretrain_on_sample(out_dir: str, steps: int = 300, seed: int = 0, verbose="auto",
                       log_every: int = 25, overrides=()) -> dict:
    """Learns a vocabulary from the 400 unlabelled reviews and pretrains on them (batch 16).
    Resumes if `out_dir` holds an unfinished run. Returns `metrics.json`'s dict."""
    log_every = min(log_every, steps)
    return pretrain(sample_pretraining_config(steps, overrides), SAMPLE_CORPUS, out_dir,
                    steps=steps, batch_size=16, save_every=max(100, log_every),
                    log_every=log_every, seed=seed, verbose=verbose)


def sample_finetune_config(epochs: int = 10, seed: int = 0, overrides=()) -> FinetuneConfig:
    """The IMDB recipe pointed at the embedded CSVs (400 train / 200 test reviews), 128 pieces,
    batch 16, chosen on 1,000 IMDB validation reviews with 2 seeds
    (benchmarks/results/sample_finetune*.md):

    - the mean-pooling head: with 400 reviews the paper's [CLS] head learns little (0.70 vs 0.60
      from scratch on `electra_cpu.yaml`'s architecture);
    - lr 1e-3 with no layer-wise decay, 10 epochs: the `electra_cpu_imdb` preset gained from a
      higher rate and lost from decay (0.663 at 1e-3 vs 0.613 at 5e-4; 0.589 with decay 0.5);
    - dropout 0.1 inside the encoder (the paper's; the preset was pretrained without): 0.689 vs
      0.663. From scratch, `for_scratch_training` sets lr 5e-4."""
    return load_finetune_config("finetune/imdb", [
        "task.name=csv", f"task.data={SAMPLE_LABELLED}", "preprocessing.max_seq_length=128",
        f"training.epochs={epochs}", "training.batch_size=16", "training.learning_rate=1e-3",
        "training.layerwise_decay=1.0", "training.encoder_dropout=0.1",
        "training.pooling=mean", f"training.seed={seed}", *overrides])


def finetune_on_sample(out_dir: str, pretrained: str, epochs: int = 10, seed: int = 0,
                       from_scratch: bool = False, verbose="auto", overrides=()) -> dict:
    """Fine-tunes `pretrained` (a pretraining run directory) on the 400 labelled reviews, or
    trains its architecture from scratch. Returns `metrics.json`'s dict."""
    return finetune(sample_finetune_config(epochs, seed, overrides), out_dir,
                    pretrained=pretrained, from_scratch=from_scratch, verbose=verbose)


def has_pretraining(run_dir: str) -> bool:
    """True when `run_dir` holds a finished pretraining run (its discriminator)."""
    return os.path.isfile(PretrainPaths(run_dir).discriminator)


def has_classifier(run_dir: str) -> bool:
    """True when `run_dir` holds a finished fine-tuning run."""
    return os.path.isfile(FinetunePaths(run_dir).classifier)


DEFAULT_PRESET = "electra_cpu_imdb_long"
# LP-FT (Kumar et al. 2022): the head alone on the frozen encoder for the first 30% of the
# epochs, then everything. On 1,000 IMDB validation reviews, 8 seeds, the default preset fine-
# tuned this way gets 0.756 vs 0.744 fine-tuned plainly and 0.714 from scratch (higher than
# from scratch on all 8 seeds; benchmarks/investigations/results/discriminator_transfer.md).
LP_FT_FROZEN_FRACTION = 0.3


def lp_ft_overrides(epochs: int) -> list[str]:
    """The `--set` override that fine-tunes a pretrained encoder as LP-FT over `epochs` epochs
    (the encoder frozen for the first 3 of 10)."""
    return [f"training.frozen_encoder_epochs={round(LP_FT_FROZEN_FRACTION * epochs, 3):g}"]

EXAMPLE_REVIEWS = ("One of the best films I have seen in years: moving, funny and beautifully acted.",
                   "A dull, lifeless mess. I wanted my two hours back.")


def run_quickstart(out_dir: str = "electra-quickstart", steps: int = 300,
                   finetune_epochs: int = 10, seed: int = 0, preset: str | None = "auto") -> int:
    """The `electra-tf quickstart` tour, printed as it goes: vocabulary -> pretraining ->
    fine-tuning, from a pretrained encoder and from scratch -> test -> SavedModel export -> two
    predictions. Re-running resumes in `out_dir`.

    Args:
        preset: the pretrained encoder to fine-tune: an installed preset's name, "auto" (the
            default preset when it is installed) or None; without one, the encoder the tour
            itself pretrains on the sample (minutes of pretraining: expect chance). A preset is
            fine-tuned as LP-FT (`lp_ft_overrides`), the tour's own encoder plainly.

    Writes `out_dir/summary.json`: {"test_accuracy": {"pretrained", "scratch"},
    "test_examples", "preset"}. Returns the exit status (1 if the pretraining losses did not
    fall).
    """
    from electra_tf.pretrained.presets import is_preset_name, preset_path

    if preset == "auto":
        preset = DEFAULT_PRESET if is_preset_name(DEFAULT_PRESET) else None
    tour_dir = os.path.join(out_dir, "pretrained")
    source = preset_path(preset) if preset else tour_dir
    print("electra-tf quickstart, on IMDB reviews shipped with the package:\n"
          "  1. learn a WordPiece vocabulary (at most 4,000 pieces) from 400 unlabelled reviews\n"
          "  2. pretrain generator + discriminator on them (replaced-token detection, model.fit)\n"
          "  3. fine-tune " + (f"the pretrained encoder {preset!r} (the head alone first: "
                                "LP-FT)" if preset else "the discriminator") +
          " on 400 labelled reviews (positive/negative), and the same\n"
          "     Transformer from random initialisation\n"
          "  4. evaluate both on 200 held-out test reviews\n"
          "  5. export the one with the better validation accuracy as a SavedModel that takes "
          "raw text;\n     classify two reviews\n"
          f"Outputs go to {out_dir}/ (re-running resumes there).\n")
    if not _tour_pretraining(tour_dir, steps, seed):
        return 1
    accuracies, examples, folders = {}, 0, {}
    for name, folder, from_scratch in (("pretrained", "sentiment", False),
                                       ("scratch", "sentiment_scratch", True)):
        folders[name] = os.path.join(out_dir, folder)
        overrides = lp_ft_overrides(finetune_epochs) if preset and not from_scratch else []
        test = _finetune_and_test(folders[name], source, from_scratch, finetune_epochs, seed,
                                  overrides)
        accuracies[name], examples = test["accuracy"], test["examples"]
    summary = {"test_accuracy": accuracies, "test_examples": examples,
               "preset": preset or f"none: pretrained {steps} steps on the sample"}
    write_json(os.path.join(out_dir, "summary.json"), summary)
    print(f"\nTest accuracy on the {examples} shipped test reviews: "
          f"{accuracies['pretrained']:.3f} fine-tuned from "
          + (f"preset {preset!r}" if preset else "the tour's pretraining")
          + f", {accuracies['scratch']:.3f} from random initialisation.")
    export_dir = _export_and_ask(_better_on_validation(folders), os.path.join(out_dir, "export"))
    print(("\nThe pretrained encoder is a preset installed with the package "
           "(electra-tf presets says how it was trained)." if preset else
           "\nA tiny model pretrained for minutes on 400 reviews is only a tour of the pipeline; "
           "the project's README has the numbers of real runs.")
          + f"\nNext: electra-tf predict --model {export_dir} \"your review\"")
    return 0


def _tour_pretraining(tour_dir: str, steps: int, seed: int) -> bool:
    """Steps 1-2, with what they show; False when the losses did not fall."""
    from electra_tf.reports import pretraining_report

    metrics = pretrain_on_sample(tour_dir, steps=steps, seed=seed, verbose=2)
    print(pretraining_report(metrics, tour_dir))
    final, first = metrics["final"], metrics["first_interval"]
    if not (final["disc_loss"] < first["disc_loss"] and final["mlm_loss"] < first["mlm_loss"]):
        print("The losses did not fall; please report this with the log above.")
        return False
    print("Both losses fell: the generator learns to fill in words.", end=" ")
    if final["disc_recall"] < 0.05:
        # Honest about what minutes on 400 reviews buy: the discriminator first learns the base
        # rate (most tokens are original); spotting replacements comes later in pretraining.
        print(f"The discriminator has learned that ~{100 * (1 - final['disc_accuracy']):.0f}% of "
              f"tokens are replaced but flags few of them yet (recall {final['disc_recall']:.2f}); "
              "detection starts later in a real run.\n")
    else:
        print(f"The discriminator spots {100 * final['disc_recall']:.0f}% of the replaced tokens "
              f"(precision {final['disc_precision']:.2f}).\n")
    return True


def _finetune_and_test(out: str, pretrained: str, from_scratch: bool, epochs: int,
                       seed: int, overrides=()) -> dict:
    """Step 3-4 for one model: fine-tunes (unless done), then scores the test reviews."""
    from electra_tf.reports import finetuning_report
    from electra_tf.tasks.scoring import format_metrics
    from electra_tf.training.evaluation import evaluate

    what = "from scratch" if from_scratch else "from the pretrained encoder"
    if has_classifier(out):
        _check_finished_from(out, pretrained, from_scratch)
        print(f"{out} is already fine-tuned ({what}); evaluating it again.")
    else:
        print(f"\nFine-tuning {what}:")
        print(finetuning_report(finetune_on_sample(out, pretrained, epochs=epochs, seed=seed,
                                                   from_scratch=from_scratch, verbose=2,
                                                   overrides=overrides), out))
    test = evaluate(out, "test", verbose=0)
    print(f"\nTest, {what} ({test['examples']} reviews never seen in training):")
    print(format_metrics(test))
    return test


def _check_finished_from(out: str, pretrained: str, from_scratch: bool) -> None:
    """Raises CheckpointError when the finished fine-tune in `out` started from another encoder
    than `pretrained` (an earlier quickstart's preset, or `--preset` changed): evaluating it
    again would report that encoder's accuracy under this one's name. Compared by folder name
    (the preset's name), so a reinstalled package still resumes."""
    from electra_tf.errors import CheckpointError

    if from_scratch:  # same architecture either way: nothing pretrained to mismatch
        return
    started_from = read_json(FinetunePaths(out).run).get("pretrained") or ""
    if os.path.basename(os.path.normpath(started_from)) != os.path.basename(
            os.path.normpath(pretrained)):
        raise CheckpointError(
            f"{out} was fine-tuned from {started_from}, not {pretrained}: pass another "
            "--out-dir (or delete that folder) to fine-tune this encoder.")


def _better_on_validation(folders: dict) -> str:
    """The fine-tuning run (of {name: folder}) with the higher validation accuracy, the first
    on a tie; says which. Chosen on validation, as a real project would: never on test."""
    scores = {name: read_json(FinetunePaths(folder).metrics)["validation"]["accuracy"]
              for name, folder in folders.items()}
    best = max(scores, key=scores.get)
    print(f"\nValidation accuracy ({best} is exported): " + ", ".join(
        f"{name} {score:.3f}" for name, score in scores.items()) + ".")
    return folders[best]


def _export_and_ask(finetune_dir: str, export_dir: str) -> str:
    """Step 5: the SavedModel (raw text in) and its answers for the two example reviews."""
    from electra_tf.export import export_model, load_predictor

    if not os.path.exists(os.path.join(export_dir, "saved_model.pb")):
        export_model(finetune_dir, export_dir)
    predictions = load_predictor(export_dir)(list(EXAMPLE_REVIEWS))
    print(f"\n  5. exported a SavedModel with the tokenizer inside to {export_dir} and asked it:")
    for text, label, probs in zip(EXAMPLE_REVIEWS, predictions["label"],
                                  predictions["probabilities"]):
        print(f"     {label:>4} ({probs.max():.2f})  {text}")
    return export_dir
