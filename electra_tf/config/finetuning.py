"""Typed configuration of fine-tuning runs (`configs/finetune/*.yaml`).

    task:            # TaskConfig: where the labelled texts come from
      name: imdb
    preprocessing:   # PreprocessingConfig: how a text becomes a [CLS] ... [SEP] sequence
      max_seq_length: 256
      truncation: head_tail
    training:        # TrainingConfig: ELECTRA's fine-tuning recipe
      learning_rate: 3.0e-4
      layerwise_decay: 0.8
    from_scratch:    # ScratchConfig: what changes for the randomly initialised baseline
      learning_rate: 5.0e-4
    runtime:         # RuntimeConfig: strategy, precision, compilation (electra_tf.config.runtime)

Same rules as the pretraining config (`electra_tf.config.base`): unknown keys and wrong types
are errors naming the key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal, Optional

from electra_tf.config.base import YamlConfig, load_yaml_config
from electra_tf.config.runtime import RuntimeConfig
from electra_tf.errors import ConfigError

# The data sources of tagged sentences (token classification); the others hold labelled texts.
TAGGING_SOURCES = ("conll", "jsonl")


@dataclass
class TaskConfig:
    """The data and the task's shape (`type`).

    Labelled texts (sequence classification), by `name`: `imdb` (tfds `imdb_reviews` online,
    or the aclImdb archive / folder given as `data`), `folder` (one sub-folder of `.txt` files
    per class, the `keras.utils.text_dataset_from_directory` layout, optionally under `train/`
    and `test/`), `csv` (a CSV/TSV file with `text_column` and `label_column`) or `jsonl` (one
    object per line with those keys; set `type: sequence_classification`). With `text_b_column`
    each example is a pair of texts (entailment, paraphrase). `type: regression` reads a number
    from `label_column` instead of a class. `glue` reads the GLUE task `glue_task` from its
    folder of GLUE's TSV files (`data`) or, without `data`, from tfds `glue/NAME`.
    Questions about contexts (question answering): `squad` (SQuAD 1.1 / 2.0 JSON, or JSON lines
    named .jsonl; without `data`, tfds `squad`).
    Tagged sentences (token classification, e.g. named entities): `conll` (word-per-line
    column files, the tag in `tag_column`; without `data`, tfds `conll2003`) or `jsonl`
    (`{"tokens": [...], "tags": [...]}` per line), in `tag_scheme` IOB1, IOB2 or BIOES.
    `{split}` in `data` is replaced by the split name, e.g. `data/{split}.csv`.
    """

    name: Literal["imdb", "folder", "csv", "conll", "jsonl", "glue", "squad"] = "imdb"
    data: Optional[str] = None
    # The shape of the task: a name in `electra_tf.tasks.TASKS` (checked when a run starts),
    # i.e. what is predicted, with which head, loss and metrics. None: the data's own
    # (token_classification for conll/jsonl, the GLUE task's for glue, else
    # sequence_classification).
    type: Optional[str] = None
    text_column: str = "text"
    label_column: str = "label"  # the class, or the number a regression task predicts
    text_b_column: Optional[str] = None  # the second text of a pair task
    glue_task: Optional[str] = None  # with name glue: CoLA, SST-2, MRPC, STS-B, QQP, MNLI, ...
    tag_column: int = -1  # conll: the column of the tag, from 0 (-1: the last)
    tag_scheme: Literal["iob1", "iob2", "bioes"] = "iob2"
    validation_fraction: float = 0.1  # carved from train (stratified by class) with `split_seed`
    # Take validation from this split of the data instead (any task), e.g. "valid" for a
    # `{split}` path, or "valid[:50%]" (the first half) for tagged sentences
    validation_split: Optional[str] = None
    split_seed: int = 0  # fixed across fine-tuning seeds: every model is chosen on the same split
    max_train_examples: Optional[int] = None  # a stratified subset, for quick runs
    # Question answering: answer "" where the no-answer score ([CLS] minus the best span)
    # exceeds this (metrics.json's best_f1_threshold on validation is the one to set)
    no_answer_threshold: float = 0.0

    @property
    def task_type(self) -> str:
        if self.type is not None:
            return self.type
        if self.name == "glue":
            from electra_tf.data.glue import glue_task

            return glue_task(self.glue_task).task_type
        if self.name == "squad":
            return "question_answering"
        return "token_classification" if self.name in TAGGING_SOURCES \
            else "sequence_classification"

    @property
    def data_source(self) -> str:
        """`data`, or the tfds dataset read without it."""
        if self.data is not None:
            return self.data
        if self.name == "glue":
            from electra_tf.data.glue import glue_task

            return f"tfds:glue/{glue_task(self.glue_task).tfds_name}"
        return {"conll": "tfds:conll2003", "squad": "tfds:squad"}.get(self.name,
                                                                       "tfds:imdb_reviews")

    def validate(self) -> None:
        if not 0.0 < self.validation_fraction < 1.0:
            raise ConfigError("task.validation_fraction must be in (0, 1), got "
                              f"{self.validation_fraction}.")
        if self.max_train_examples is not None and self.max_train_examples < 4:
            raise ConfigError("task.max_train_examples must be >= 4.")
        if self.name == "glue":
            from electra_tf.data.glue import glue_task

            if self.glue_task is None:
                raise ConfigError("task.name glue needs task.glue_task (CoLA, SST-2, MRPC, "
                                  "STS-B, QQP, MNLI, QNLI, RTE or WNLI).")
            try:
                glue_task(self.glue_task)
            except ValueError as err:  # DataError: here a config mistake
                raise ConfigError(str(err)) from None


@dataclass
class PreprocessingConfig:
    """Texts longer than `max_seq_length - 2` pieces are cut: `head` keeps the first pieces,
    `head_tail` keeps the first `head_fraction` of the budget and the last pieces for the rest
    (Sun et al. 2019 found head+tail best on IMDB: reviews often conclude with the verdict)."""

    max_seq_length: int = 256
    truncation: Literal["head", "head_tail"] = "head_tail"
    head_fraction: float = 0.25
    # For a vocabulary given with --vocab or learned from the training texts (`vocab_learner`,
    # `electra_tf.data.vocab_learning`); a pretrained model brings its own casing.
    lower_case: bool = True
    vocab_learner: Literal["tokenizers", "tensorflow-text"] = "tokenizers"
    # Question answering: the question's pieces kept, and the pieces between the starts of
    # consecutive windows over a long context (the authors': 64 and 128)
    max_question_pieces: int = 64
    doc_stride: int = 128

    def validate(self) -> None:
        if self.max_seq_length < 8:
            raise ConfigError(f"preprocessing.max_seq_length must be >= 8, got "
                              f"{self.max_seq_length}.")
        if not 0.0 <= self.head_fraction <= 1.0:
            raise ConfigError("preprocessing.head_fraction must be in [0, 1].")


# The classification heads `SequenceClassifier` offers (its `pooling`).
Pooling = Literal["cls", "mean"]


@dataclass
class TrainingConfig:
    """ELECTRA's recipe: AdamW, `warmup_fraction` warm-up then linear decay, layer-wise LR
    decay, dropout on [CLS]; the best validation checkpoint is kept. `pooling` "mean" replaces
    the [CLS] vector with the mean of the last layer over the real tokens (not the paper's head;
    see `SequenceClassifier`). `encoder_dropout` sets the encoder's own hidden and attention
    dropout while fine-tuning (the paper: 0.1); None keeps the rate it was pretrained with, which
    is 0 for recipes that pretrain without dropout (Cramming, `electra_cpu.yaml`)."""

    learning_rate: float = 3e-4
    layerwise_decay: float = 0.8
    epochs: int = 3
    batch_size: int = 32
    warmup_fraction: float = 0.1
    weight_decay: float = 0.01
    dropout: float = 0.1
    encoder_dropout: Optional[float] = None
    reinitialise_top_layers: int = 0  # top Transformer blocks of a pretrained encoder started afresh
    # LP-FT (Kumar et al. 2022): the first epochs train only the head, the encoder frozen
    # (all epochs: a linear probe of the pretrained features)
    frozen_encoder_epochs: float = 0.0
    pooling: Pooling = "cls"
    evaluations_per_epoch: int = 1
    early_stopping_patience: Optional[int] = None  # evaluations without improvement; None: off
    seed: int = 0

    def validate(self) -> None:
        if self.learning_rate <= 0:
            raise ConfigError(f"training.learning_rate must be > 0, got {self.learning_rate}.")
        if not 0.0 < self.layerwise_decay <= 1.0:
            raise ConfigError("training.layerwise_decay must be in (0, 1] (1 turns it off).")
        for name in ("epochs", "batch_size", "evaluations_per_epoch"):
            if getattr(self, name) < 1:
                raise ConfigError(f"training.{name} must be >= 1.")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise ConfigError("training.warmup_fraction must be in [0, 1).")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError("training.dropout must be in [0, 1).")
        if not 0.0 <= self.frozen_encoder_epochs <= self.epochs:
            raise ConfigError("training.frozen_encoder_epochs must be in [0, training.epochs] "
                              "(= epochs: only the head trains, a linear probe).")
        if self.reinitialise_top_layers < 0:
            raise ConfigError("training.reinitialise_top_layers must be >= 0.")
        if self.encoder_dropout is not None and not 0.0 <= self.encoder_dropout < 1.0:
            raise ConfigError("training.encoder_dropout must be in [0, 1), or null to keep the "
                              "pretrained encoder's own.")


@dataclass
class ScratchConfig:
    """Overrides for `--from-scratch` (no pretraining): a randomly initialised encoder has no
    lower layers worth protecting, so layer-wise decay is off by default. `position_embedding`
    None keeps the architecture's own (`model.position_embedding`), so the baseline is the
    pretrained model's exact architecture; "sinusoidal" gives the popular articles' encoding."""

    learning_rate: float = 5e-4
    layerwise_decay: float = 1.0
    position_embedding: Optional[Literal["learned", "sinusoidal", "none"]] = None
    epochs: Optional[int] = None  # None: training.epochs

    def validate(self) -> None:
        if self.learning_rate <= 0 or not 0.0 < self.layerwise_decay <= 1.0:
            raise ConfigError("from_scratch.learning_rate must be > 0 and "
                              "from_scratch.layerwise_decay in (0, 1].")


@dataclass
class FinetuneConfig(YamlConfig):
    task: TaskConfig = field(default_factory=TaskConfig)
    preprocessing: PreprocessingConfig = field(default_factory=PreprocessingConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    from_scratch: ScratchConfig = field(default_factory=ScratchConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    def for_scratch_training(self) -> "FinetuneConfig":
        """This config with the `from_scratch` overrides applied to `training`; the encoder is
        never frozen (a random encoder has no features for the head to learn on first)."""
        scratch = self.from_scratch
        training = dataclasses.replace(
            self.training, learning_rate=scratch.learning_rate,
            layerwise_decay=scratch.layerwise_decay,
            epochs=scratch.epochs or self.training.epochs, frozen_encoder_epochs=0.0)
        return dataclasses.replace(self, training=training)


def load_finetune_config(path, overrides=None) -> FinetuneConfig:
    """Reads `configs/finetune/*.yaml` (or any path), applies `section.key=value` overrides."""
    return load_yaml_config(FinetuneConfig, path, overrides)
