"""Typed configuration: the one source of truth for model sizes and training settings.

A YAML file in `configs/` maps one-to-one onto `ElectraConfig`:

    model:          # ModelConfig: the discriminator's architecture (+ the generator's size)
      vocab_size: 30522
      ...
    pretraining:    # PretrainingConfig: the replaced-token-detection objective
      mask_prob: 0.15
      ...
    optimizer:      # OptimizerConfig: AdamW + warm-up/linear-decay schedule
      learning_rate: 5.0e-4
      ...
    run:            # RunConfig: seed, logging and checkpoint intervals
    corpus:         # CorpusConfig: document format, casing, how the vocabulary is learned
    runtime:        # RuntimeConfig: strategy, precision, compilation (electra_tf.config.runtime)

Unknown keys and wrongly typed values raise `ConfigError` naming the offending key, and
command-line overrides use dotted keys (`--set model.hidden_size=128`): `electra_tf.config.base`
has the (de)serialisation, shared with the fine-tuning config.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Literal, Optional

from electra_tf.config.base import YamlConfig, load_yaml_config
from electra_tf.config.runtime import RuntimeConfig
from electra_tf.errors import ConfigError

# BERT-uncased special token ids: the vocabulary Google's released ELECTRA checkpoints use.
BERT_PAD_ID, BERT_UNK_ID, BERT_CLS_ID, BERT_SEP_ID, BERT_MASK_ID = 0, 100, 101, 102, 103


@dataclass
class ModelConfig:
    """Architecture of the discriminator (the encoder that is fine-tuned) and of the generator.

    The generator has the same depth and embedding block; its hidden size is
    `int(hidden_size * generator_hidden_fraction)`, its heads `max(1, hidden // 64)` and its
    feed-forward size `4 * hidden` (the authors' `get_generator_config`).
    """

    vocab_size: int = 30522
    embedding_size: int = 128
    hidden_size: int = 256
    num_layers: int = 12
    num_heads: int = 4
    intermediate_size: int = 1024
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    dropout: float = 0.1
    attention_dropout: float = 0.1
    layer_norm_epsilon: float = 1e-12
    initializer_range: float = 0.02
    position_embedding: Literal["learned", "sinusoidal", "none"] = "learned"
    # Levers for small compute budgets (docs/pretraining.md); the paper's configs
    # keep the defaults, which are the paper's architecture.
    layer_norm_position: Literal["post", "pre"] = "post"
    attention_bias: Literal["none", "alibi"] = "none"
    query_key_initializer_range: Optional[float] = None  # None: initializer_range
    ffn_convolution_kernel: int = 0  # odd width of a depthwise convolution in the FFN; 0: none
    generator_hidden_fraction: float = 0.25

    def validate(self) -> None:
        for name in ("vocab_size", "embedding_size", "hidden_size", "num_layers", "num_heads",
                     "intermediate_size", "max_position_embeddings", "type_vocab_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name} must be >= 1, got {getattr(self, name)}.")
        if self.hidden_size % self.num_heads:
            raise ConfigError(
                f"model.hidden_size ({self.hidden_size}) must be divisible by model.num_heads "
                f"({self.num_heads}); choose num_heads so that hidden_size / num_heads is an integer "
                "(ELECTRA uses 64 per head).")
        for name in ("layer_norm_epsilon", "initializer_range"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"model.{name} must be > 0, got {getattr(self, name)}.")
        for name in ("dropout", "attention_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"model.{name} must be in [0, 1), got {getattr(self, name)}.")
        if self.position_embedding == "none" and self.attention_bias == "none":
            raise ConfigError(
                "model.position_embedding='none' leaves the encoder blind to word order; set "
                "model.attention_bias='alibi' (or use learned/sinusoidal positions).")
        width = self.ffn_convolution_kernel
        if width < 0 or (width > 0 and width % 2 == 0):
            raise ConfigError("model.ffn_convolution_kernel must be 0 (off) or an odd width such "
                              f"as 3 or 5, got {self.ffn_convolution_kernel}.")
        if self.query_key_initializer_range is not None and self.query_key_initializer_range <= 0:
            raise ConfigError("model.query_key_initializer_range must be > 0 (or null), got "
                              f"{self.query_key_initializer_range}.")
        if not 0.0 < self.generator_hidden_fraction <= 1.0:
            raise ConfigError("model.generator_hidden_fraction must be in (0, 1], got "
                              f"{self.generator_hidden_fraction}.")
        if self.generator_hidden_size < 1:
            raise ConfigError(
                f"model.generator_hidden_fraction={self.generator_hidden_fraction} gives a generator "
                f"with hidden size 0 for hidden_size={self.hidden_size}; raise the fraction.")

    @property
    def generator_hidden_size(self) -> int:
        # round(), as the authors do, so that 768 * 0.333 gives 256, not 255.
        return int(round(self.hidden_size * self.generator_hidden_fraction))

    def encoder_kwargs(self) -> dict:
        """Arguments of `electra_tf.layers.ElectraEncoder` for the discriminator-sized encoder."""
        fields = dataclasses.asdict(self)
        fields.pop("generator_hidden_fraction")  # a pretrainer setting, not an encoder argument
        return fields

    def generator_encoder_kwargs(self) -> dict:
        """Arguments of the generator's encoder: same depth and embeddings, smaller width."""
        hidden = self.generator_hidden_size
        return dict(self.encoder_kwargs(), hidden_size=hidden, num_heads=max(1, hidden // 64),
                    intermediate_size=4 * hidden)


EMBEDDING_SHARING = ("tied", "gradient_disentangled")


@dataclass
class PretrainingConfig:
    """The replaced-token-detection objective (`electra_tf.models.pretrainer` runs it)."""

    max_seq_length: int = 128
    mask_prob: float = 0.15
    # None -> int((mask_prob + 0.005) * max_seq_length), the authors' rule (19 for 128 at 15%).
    max_predictions_per_seq: Optional[int] = None
    mask_token_rate: float = 0.85  # chosen positions that become [MASK]; the rest keep their token
    disc_weight: float = 50.0
    temperature: float = 1.0
    electra_objective: bool = True  # False: BERT-style MLM with a full-size model, no discriminator
    # How the generator and discriminator share word embeddings: "tied" (the paper: one table,
    # both losses train it) or "gradient_disentangled" (DeBERTaV3: the discriminator adds its own
    # residual to the shared table, whose only gradient is the generator's MLM loss).
    embedding_sharing: str = "tied"
    # True: the generator *is* the discriminator's encoder with its own MLM head -- the paper's
    # "tie all encoder weights" variant (section 3.2); needs model.generator_hidden_fraction 1.0.
    share_encoder: bool = False
    pad_id: int = BERT_PAD_ID
    cls_id: int = BERT_CLS_ID
    sep_id: int = BERT_SEP_ID
    mask_id: int = BERT_MASK_ID

    def validate(self) -> None:
        if self.max_seq_length < 3:
            raise ConfigError(f"pretraining.max_seq_length must be >= 3, got {self.max_seq_length}.")
        if not 0.0 < self.mask_prob < 1.0:
            raise ConfigError(f"pretraining.mask_prob must be in (0, 1), got {self.mask_prob}.")
        if not 0.0 <= self.mask_token_rate <= 1.0:
            raise ConfigError(
                f"pretraining.mask_token_rate must be in [0, 1], got {self.mask_token_rate}.")
        if self.num_predictions < 1:
            raise ConfigError("pretraining.max_predictions_per_seq must be >= 1.")
        if self.num_predictions > self.max_seq_length - 2:  # [CLS] and [SEP] are never masked
            raise ConfigError(
                f"pretraining.max_predictions_per_seq={self.num_predictions} exceeds the "
                f"{self.max_seq_length - 2} maskable positions of a {self.max_seq_length}-token "
                "sequence; lower it (the authors' rule: (mask_prob + 0.005) * max_seq_length).")
        if self.temperature <= 0:
            raise ConfigError(f"pretraining.temperature must be > 0, got {self.temperature}.")
        if self.embedding_sharing not in EMBEDDING_SHARING:
            raise ConfigError(f"pretraining.embedding_sharing must be one of {EMBEDDING_SHARING}, "
                              f"got {self.embedding_sharing!r}.")

    @property
    def num_predictions(self) -> int:
        """Masked positions per sequence (the static size of the gathered generator logits)."""
        if self.max_predictions_per_seq is not None:
            return self.max_predictions_per_seq
        return int((self.mask_prob + 0.005) * self.max_seq_length)


@dataclass
class OptimizerConfig:
    """AdamW with decoupled weight decay, global-norm clipping and warm-up + linear decay."""

    learning_rate: float = 5e-4
    weight_decay: float = 0.01
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-6
    clipnorm: float = 1.0
    warmup_steps: int = 10000
    train_steps: int = 1000000
    batch_size: int = 128

    def validate(self) -> None:
        if self.learning_rate <= 0:
            raise ConfigError(f"optimizer.learning_rate must be > 0, got {self.learning_rate}.")
        if self.train_steps < 1 or self.batch_size < 1:
            raise ConfigError("optimizer.train_steps and optimizer.batch_size must be >= 1.")
        if self.warmup_steps < 0:
            raise ConfigError(f"optimizer.warmup_steps must be >= 0, got {self.warmup_steps}.")


@dataclass
class RunConfig:
    """The run's seed and how often it logs and saves. `seed` seeds the initial weights,
    masking, dropout, packing and shuffling; `log_every` is one Keras "epoch" (a progress line,
    a history record); checkpoints land every `save_every` steps, the last
    `keep_checkpoints` kept."""

    seed: int = 0
    log_every: int = 100
    save_every: int = 1000
    keep_checkpoints: int = 3

    def validate(self) -> None:
        for name in ("log_every", "save_every", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ConfigError(f"run.{name} (--{name.replace('_', '-')}) must be >= 1, got "
                                  f"{getattr(self, name)}.")


@dataclass
class CorpusConfig:
    """How the corpus is read and, without `--vocab`, how the vocabulary is learned from it:
    `doc_format` "auto", "line" (a document per line) or "blank" (blank-line separated);
    `lower_case` lower-cases and strips accents before WordPiece (BERT uncased; it must match
    how a given vocabulary was made); the first `vocab_documents` documents are given to
    `vocab_learner` (`electra_tf.data.vocab_learning`)."""

    doc_format: Literal["auto", "line", "blank"] = "auto"
    lower_case: bool = True
    vocab_documents: int = 20_000
    vocab_learner: Literal["tokenizers", "tensorflow-text"] = "tokenizers"

    def validate(self) -> None:
        if self.vocab_documents < 1:
            raise ConfigError("corpus.vocab_documents must be >= 1.")


# The sections of a pretraining config.yaml that say how a run is carried out rather than what
# it trains: a resumed run keeps its own `run` and `corpus` settings (its seed must be the one
# asked for), and may change `runtime` freely.
RUN_SECTIONS = ("run", "corpus")


@dataclass
class ElectraConfig(YamlConfig):
    """Everything needed to build and pretrain an ELECTRA model, and how the run is carried out
    (`run`, `corpus`, `runtime`: the command line's flags set these too)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    pretraining: PretrainingConfig = field(default_factory=PretrainingConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    run: RunConfig = field(default_factory=RunConfig)
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    def validate(self) -> "ElectraConfig":
        super().validate()  # each section
        spe = self.runtime.steps_per_execution
        if self.run.log_every % spe:
            raise ConfigError(f"--log-every {self.run.log_every} must be a multiple of "
                              f"--steps-per-execution {spe} (callbacks only see every "
                              f"{spe}-th step).")
        if self.run.save_every % spe:
            raise ConfigError(f"--save-every {self.run.save_every} must be a multiple of "
                              f"--steps-per-execution {spe}.")
        if self.pretraining.max_seq_length > self.model.max_position_embeddings:
            raise ConfigError(
                f"pretraining.max_seq_length ({self.pretraining.max_seq_length}) exceeds "
                f"model.max_position_embeddings ({self.model.max_position_embeddings}).")
        if self.model.type_vocab_size < 2:
            raise ConfigError(
                f"model.type_vocab_size={self.model.type_vocab_size}, but pretraining packs two "
                "segments (segment ids 0 and 1) into each sequence; set it to 2.")
        check_weight_sharing(self.model, self.pretraining)
        for name in ("pad_id", "cls_id", "sep_id", "mask_id"):
            token_id = getattr(self.pretraining, name)
            if not 0 <= token_id < self.model.vocab_size:
                raise ConfigError(
                    f"pretraining.{name}={token_id} is outside the vocabulary "
                    f"(model.vocab_size={self.model.vocab_size}); set the special-token ids of "
                    "your vocabulary.")
        return self


def check_weight_sharing(model: ModelConfig, pretraining: PretrainingConfig) -> None:
    """`pretraining.share_encoder` needs a generator as large as the discriminator and plain
    tied embeddings (one encoder has one embedding block)."""
    if not (pretraining.share_encoder and pretraining.electra_objective):
        return
    if model.generator_hidden_fraction != 1.0:
        raise ConfigError(
            "pretraining.share_encoder needs a generator as large as the discriminator; set "
            f"model.generator_hidden_fraction=1.0 (got {model.generator_hidden_fraction}).")
    if pretraining.embedding_sharing != "tied":
        raise ConfigError("pretraining.share_encoder shares the embeddings too; set "
                          "pretraining.embedding_sharing=tied.")


def load_config(path: str | os.PathLike, overrides: Optional[list[str]] = None) -> ElectraConfig:
    """Reads a YAML config (a path or a shipped name such as `electra_tiny`), applies
    `key.sub=value` overrides, validates and returns it."""
    return load_yaml_config(ElectraConfig, path, overrides)
