"""`ElectraPretrainer`: replaced-token-detection pretraining that `model.fit` drives.

The whole objective reads top to bottom in `ElectraPretrainer.call`:

    mask -> generator (MLM loss at masked positions) -> sample replacements (no gradient)
         -> discriminator (is each token replaced?) -> mlm_loss + disc_weight * disc_loss
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from electra_tf.config import ModelConfig, PretrainingConfig, check_weight_sharing
from electra_tf.config.base import dataclass_from_dict
from electra_tf.distribute.precision import serialized_in_precision, with_precision
from electra_tf.distribute.replicas import (
    DistributedFitFixes,
    gradients_already_summed,
    sum_over_replicas,
)
from electra_tf.layers.embeddings import DisentangledEmbeddings, ElectraEmbeddings
from electra_tf.layers.encoder import ElectraEncoder, standardize_inputs
from electra_tf.models.discriminator import Discriminator
from electra_tf.models.generator import Generator
from electra_tf.models.objective import mask_tokens, sample_tokens, scatter_positions


def _as_config(cls, value):
    if isinstance(value, cls):
        return value
    return dataclass_from_dict(cls, value or {}, prefix=f"{cls.__name__}.")


def _masked_mean(values, weights):
    """`sum(values * weights) / sum(weights)`, 0 when all weights are 0 (the reference's +1e-6).

    Under N replicas the denominator is the *global* weight sum / N, so that the mean over the
    replicas of this value -- what `train_step`'s division by N and Keras' metric aggregation
    compute -- is the global-batch mean even when replicas hold different numbers of real
    tokens (a per-replica mean would weight a token of a short batch more).
    """
    weights = ops.cast(weights, "float32")
    total = ops.sum(ops.cast(values, "float32") * weights)
    count = ops.sum(weights)
    replica = tf.distribute.get_replica_context()
    if replica is not None and replica.num_replicas_in_sync > 1:
        count = replica.all_reduce(tf.distribute.ReduceOp.SUM, count) / \
            replica.num_replicas_in_sync
    return total / (count + 1e-6)


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraPretrainer(DistributedFitFixes, keras.Model):
    """Generator + discriminator with one shared embedding block, trained with `fit`.

    Args:
        model_config: `ModelConfig` (or dict): the discriminator's size and the generator fraction.
        pretraining_config: `PretrainingConfig` (or dict): masking and loss settings. With
            `electra_objective=False` it is a BERT-style masked LM: a full-size "generator" (the
            discriminator's architecture) trained on the MLM loss alone, no discriminator; its
            encoder is then the one to fine-tune (`pretrainer.encoder`).
        seed: seed of the masking/sampling random stream (its state is a model variable, so it is
            checkpointed and a resumed run continues the same stream).

    Inputs (`fit(x=dataset)`): dicts of `token_ids`, `segment_ids`, `padding_mask`, each int
    `[batch, seq_len]` (or a bare `token_ids` tensor; padding is then `token_ids != 0`).

    Metrics reported by `fit`: loss, mlm_loss, mlm_accuracy and, for ELECTRA, disc_loss,
    disc_accuracy, disc_precision and disc_recall (on replaced tokens, at probability 0.5) and
    disc_auc (ROC AUC of replaced vs original tokens: 0.5 = no detection, 1 = perfect).

    Example:
    >>> from electra_tf import load_config, create_optimizer
    >>> config = load_config("configs/electra_tiny.yaml")
    >>> pretrainer = ElectraPretrainer(config.model, config.pretraining)
    >>> pretrainer.compile(optimizer=create_optimizer(config.optimizer))
    >>> pretrainer.fit(dataset, steps_per_epoch=100)          # doctest: +SKIP
    >>> pretrainer.discriminator.save("discriminator.keras")  # doctest: +SKIP
    """

    def __init__(self, model_config=None, pretraining_config=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.model_config = _as_config(ModelConfig, model_config)
        self.pretraining_config = _as_config(PretrainingConfig, pretraining_config)
        self.model_config.validate()
        self.pretraining_config.validate()
        check_weight_sharing(self.model_config, self.pretraining_config)
        self.seed = seed
        model_cfg, objective = self.model_config, self.pretraining_config

        # The shared embedding block: word, position and type embeddings + LayerNorm, one copy.
        embedding_kwargs = dict(
            max_position_embeddings=model_cfg.max_position_embeddings,
            type_vocab_size=model_cfg.type_vocab_size,
            position_embedding=model_cfg.position_embedding, dropout=model_cfg.dropout,
            layer_norm_epsilon=model_cfg.layer_norm_epsilon,
            initializer_range=model_cfg.initializer_range, dtype=self.dtype_policy)
        self.embeddings = ElectraEmbeddings(
            model_cfg.vocab_size, model_cfg.embedding_size, **embedding_kwargs, name="embeddings")
        if objective.electra_objective:
            # Created in this order (generator first) so that variables, and so checkpoints,
            # keep the order they have always had.
            if not objective.share_encoder:
                generator_encoder = ElectraEncoder(
                    **model_cfg.generator_encoder_kwargs(), embeddings=self.embeddings,
                    dtype=self.dtype_policy, name="generator_encoder")
            discriminator_embeddings = self.embeddings  # "tied"
            if objective.embedding_sharing == "gradient_disentangled":
                discriminator_embeddings = DisentangledEmbeddings(
                    self.embeddings, model_cfg.vocab_size, model_cfg.embedding_size,
                    **embedding_kwargs, name="discriminator_embeddings")
            self.discriminator = Discriminator(
                ElectraEncoder(**model_cfg.encoder_kwargs(), embeddings=discriminator_embeddings,
                               dtype=self.dtype_policy, name="discriminator_encoder"),
                dtype=self.dtype_policy, name="discriminator")
            if objective.share_encoder:  # one encoder, two heads (MLM and replaced-token)
                generator_encoder = self.discriminator.encoder
        else:
            generator_encoder = ElectraEncoder(
                **model_cfg.encoder_kwargs(), embeddings=self.embeddings,
                dtype=self.dtype_policy, name="mlm_encoder")
            self.discriminator = None
        self.generator = Generator(generator_encoder, dtype=self.dtype_policy, name="generator")
        self.seed_generator = keras.random.SeedGenerator(seed, name="objective_seed")
        self._special_ids = (objective.cls_id, objective.sep_id, objective.mask_id)

        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.mlm_loss_tracker = keras.metrics.Mean(name="mlm_loss")
        self.mlm_accuracy = keras.metrics.SparseCategoricalAccuracy(name="mlm_accuracy")
        self._metric_list = [self.loss_tracker, self.mlm_loss_tracker, self.mlm_accuracy]
        if objective.electra_objective:
            self.disc_loss_tracker = keras.metrics.Mean(name="disc_loss")
            self.disc_accuracy = keras.metrics.BinaryAccuracy(name="disc_accuracy")
            self.disc_precision = keras.metrics.Precision(thresholds=0.5, name="disc_precision")
            self.disc_recall = keras.metrics.Recall(thresholds=0.5, name="disc_recall")
            # Threshold-free: early in pretraining the discriminator ranks replaced tokens above
            # originals well before any of them crosses 0.5 (recall stays 0 for a while).
            self.disc_auc = keras.metrics.AUC(num_thresholds=200, name="disc_auc")
            self._metric_list += [self.disc_loss_tracker, self.disc_accuracy,
                                  self.disc_precision, self.disc_recall, self.disc_auc]

    @property
    def encoder(self) -> ElectraEncoder:
        """The encoder to fine-tune: the discriminator's (ELECTRA) or the MLM model's."""
        if self.discriminator is not None:
            return self.discriminator.encoder
        return self.generator.encoder

    def standalone_discriminator(self) -> Discriminator:
        """The discriminator as a self-contained float32 model: what `discriminator.keras` holds
        and fine-tuning loads. Under gradient-disentangled sharing its word table is folded into
        one (`shared + residual`), so the file is an ordinary discriminator either way."""
        if self.discriminator is None:
            raise ValueError("An MLM pretrainer has no discriminator; fine-tune `encoder`.")
        embeddings = self.discriminator.encoder.embeddings
        if not isinstance(embeddings, DisentangledEmbeddings):
            return with_precision(self.discriminator, "float32")
        # The same architecture from its config (which never includes the embedding block),
        # then the weights block by block: the folded table, and everything else as it is.
        plain = keras.saving.deserialize_keras_object(
            serialized_in_precision(self.discriminator, "float32"))
        if not plain.built:
            plain.build((None, None))
        source = [embeddings.folded(), *self.discriminator.encoder.weight_blocks()[1:],
                  self.discriminator.rtd_head]
        target = [*plain.encoder.weight_blocks(), plain.rtd_head]
        for layer, copy in zip(source, target, strict=True):
            if layer is not None:
                copy.set_weights(layer.get_weights())
        return plain

    def build(self, inputs_shape):
        self.generator.build(inputs_shape)
        if self.discriminator is not None:
            self.discriminator.build(inputs_shape)
        self.built = True

    # ------------------------------------------------------------------ forward (the objective)

    def call(self, inputs, training=None):
        """Runs the objective on a batch and returns the losses and intermediate tensors.

        Returns:
            dict with scalar `loss`, `mlm_loss` (+ `disc_loss`), and for inspection
            `masked_token_ids` `[B, T]`, `masked_positions`/`masked_lm_ids`/`masked_lm_weights`
            `[B, P]`, `mlm_logits` `[B, P, V]`, and for ELECTRA `sampled_ids` `[B, P]`,
            `corrupted_token_ids` `[B, T]`, `disc_labels` and `disc_logits` `[B, T]`.
        """
        token_ids, segment_ids, padding_mask = standardize_inputs(inputs)
        token_ids = tf.cast(token_ids, tf.int32)
        objective = self.pretraining_config

        # 1. Dynamic masking: new positions for every batch, inside the graph.
        masked = mask_tokens(
            token_ids, padding_mask, num_predictions=objective.num_predictions,
            mask_prob=objective.mask_prob, mask_token_rate=objective.mask_token_rate,
            mask_id=objective.mask_id, special_ids=self._special_ids, seed=self.seed_generator)
        positions, weights = masked["masked_positions"], masked["masked_lm_weights"]

        # 2. Generator: MLM logits only at the masked positions; loss = mean CE of the originals.
        mlm_logits = self.generator(
            {"token_ids": masked["masked_token_ids"], "segment_ids": segment_ids,
             "padding_mask": padding_mask},
            masked_positions=positions, training=training)
        mlm_loss = _masked_mean(
            ops.sparse_categorical_crossentropy(masked["masked_lm_ids"], mlm_logits,
                                                from_logits=True), weights)
        outputs = dict(masked, mlm_logits=mlm_logits, mlm_loss=mlm_loss, loss=mlm_loss)
        if self.discriminator is None:
            return outputs

        # 3. Sample replacements from the generator (no gradient flows back through sampling)
        #    and write them into the *original* sequence at every masked position.
        sampled = sample_tokens(mlm_logits, objective.temperature, self.seed_generator)
        corrupted = scatter_positions(token_ids, positions, sampled, weights > 0)
        # A sample equal to the original counts as original.
        disc_labels = ops.cast(ops.not_equal(corrupted, token_ids), "float32")

        # 4. Discriminator: per-token sigmoid cross-entropy over every real token.
        disc_logits = self.discriminator(
            {"token_ids": corrupted, "segment_ids": segment_ids, "padding_mask": padding_mask},
            training=training)
        disc_loss = _masked_mean(
            ops.binary_crossentropy(disc_labels, disc_logits, from_logits=True), padding_mask)

        outputs.update(sampled_ids=sampled, corrupted_token_ids=corrupted,
                       disc_labels=disc_labels, disc_logits=disc_logits, disc_loss=disc_loss,
                       loss=mlm_loss + objective.disc_weight * disc_loss)
        return outputs

    # ------------------------------------------------------------------ training / evaluation

    def train_step(self, data):
        inputs, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            outputs = self(inputs, training=True)
            # Gradients are summed over replicas, so each replica contributes loss / replicas.
            loss = outputs["loss"] / tf.distribute.get_strategy().num_replicas_in_sync
            loss = self.optimizer.scale_loss(loss)  # loss scaling under mixed_float16
        variables = self.trainable_variables
        # Summed over replicas here, before the loss-scale optimizer checks them for inf/NaN,
        # so that every replica takes the same decision (and `ElectraAdamW` clips the sum).
        gradients = sum_over_replicas(tape.gradient(loss, variables))
        with gradients_already_summed():
            self.optimizer.apply(gradients, variables)
        return self._update_metrics(inputs, outputs)

    def test_step(self, data):
        inputs, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self._update_metrics(inputs, self(inputs, training=False))

    def _update_metrics(self, inputs, outputs):
        self.loss_tracker.update_state(outputs["loss"])
        self.mlm_loss_tracker.update_state(outputs["mlm_loss"])
        self.mlm_accuracy.update_state(outputs["masked_lm_ids"], outputs["mlm_logits"],
                                       sample_weight=outputs["masked_lm_weights"])
        if self.discriminator is not None:
            _, _, padding_mask = standardize_inputs(inputs)
            real = ops.cast(padding_mask, "float32")
            probs = ops.sigmoid(outputs["disc_logits"])
            self.disc_loss_tracker.update_state(outputs["disc_loss"])
            for metric in (self.disc_accuracy, self.disc_precision, self.disc_recall,
                           self.disc_auc):
                metric.update_state(outputs["disc_labels"], probs, sample_weight=real)
        return self.logs_for_distribution(
            {metric.name: metric.result() for metric in self._metric_list})

    @property
    def metrics(self):
        return list(self._metric_list)

    # ------------------------------------------------------------------ saving

    # Keras does not save SeedGenerator states in `.keras` files; the masking stream is part of
    # the training state (a reloaded pretrainer must continue it), so it is stored explicitly.
    _SEED_KEY = "objective_seed_state"

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store[self._SEED_KEY] = np.asarray(self.seed_generator.state.numpy())

    def load_own_variables(self, store):
        keys = list(store.keys())
        if self._SEED_KEY in keys:
            self.seed_generator.state.assign(np.asarray(store[self._SEED_KEY]))
        super().load_own_variables({k: store[k] for k in keys if k != self._SEED_KEY})

    # ------------------------------------------------------------------ config

    def get_config(self):
        config = super().get_config()
        config.update(model_config=dataclasses.asdict(self.model_config),
                      pretraining_config=dataclasses.asdict(self.pretraining_config),
                      seed=self.seed)
        return config

    @classmethod
    def from_pretrained(cls, source, generator=None, pretraining_config=None, seed=None):
        """A built pretrainer that continues `source` (continued, domain-adaptive pretraining):
        a finished `electra-tf pretrain` run, an installed preset, an `electra-tf import`
        folder, Google's TF1 pretraining checkpoint or a HuggingFace discriminator (with its
        generator as `generator` when that is a checkpoint of its own). It takes the source's
        architecture and, at step 0, computes exactly what the source's networks compute; a
        source without a generator gets a fresh one. Tokenize with the source's vocabulary
        (`electra_tf.pretrained.resolve(source).vocab_path`); compile with a fresh optimizer.
        """
        # Loading is the resolver's job (KerasHub-style): a model class reads no files itself.
        from electra_tf.pretrained.init_from import pretrainer_from_source

        return pretrainer_from_source(source, generator, pretraining_config, seed)[0]
