"""The quickstart's recipes on the embedded IMDB sample, shared by the CLI and the notebooks.

`electra_tiny` shrunk to what 400 reviews support and 2 CPU cores run in minutes: a 4,000-piece
vocabulary, 2 layers, sequences of 128 pieces. These runs are a tour of the pipeline, not a
result; `benchmarks/` holds real runs.
"""

from __future__ import annotations

import os

from electra_tf.config import ElectraConfig, load_config
from electra_tf.data.samples import SAMPLE_CORPUS, SAMPLE_LABELLED
from electra_tf.training.finetune import FinetunePaths, finetune
from electra_tf.training.finetune_config import FinetuneConfig, load_finetune_config
from electra_tf.training.pretrain import RunPaths, pretrain


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


def sample_finetune_config(epochs: int = 3, seed: int = 0, overrides=()) -> FinetuneConfig:
    """The IMDB recipe pointed at the embedded CSVs (400 train / 200 test reviews), 128 pieces."""
    return load_finetune_config("finetune/imdb", [
        "task.name=csv", f"task.data={SAMPLE_LABELLED}", "preprocessing.max_seq_length=128",
        f"training.epochs={epochs}", "training.batch_size=16", "training.learning_rate=1e-3",
        f"training.seed={seed}", *overrides])


def finetune_on_sample(out_dir: str, pretrained: str, epochs: int = 3, seed: int = 0,
                       from_scratch: bool = False, verbose="auto", overrides=()) -> dict:
    """Fine-tunes `pretrained` (a pretraining run directory) on the 400 labelled reviews, or
    trains its architecture from scratch. Returns `metrics.json`'s dict."""
    return finetune(sample_finetune_config(epochs, seed, overrides), out_dir,
                    pretrained=pretrained, from_scratch=from_scratch, verbose=verbose)


def has_pretraining(run_dir: str) -> bool:
    """True when `run_dir` holds a finished pretraining run (its discriminator)."""
    return os.path.isfile(RunPaths(run_dir).discriminator)


def has_classifier(run_dir: str) -> bool:
    """True when `run_dir` holds a finished fine-tuning run."""
    return os.path.isfile(FinetunePaths(run_dir).classifier)
