"""Optimiser, schedule and `fit` on the synthetic corpus."""

import keras
import numpy as np
import pytest

from conftest import TINY_PRETRAINING_CONFIG
from electra_tf import ElectraConfig, ElectraPretrainer, OptimizerConfig, create_optimizer
from electra_tf.data import synthetic_dataset
from electra_tf.training import WarmupLinearDecay


def test_schedule_matches_reference_formula():
    schedule = WarmupLinearDecay(1e-3, warmup_steps=100, total_steps=1000)
    for step in [0, 50, 100, 400, 999, 1000, 1500]:
        expected = 1e-3 * min(1.0, step / 100) * max(0.0, 1 - step / 1000)
        np.testing.assert_allclose(float(schedule(step)), expected, rtol=1e-4, atol=1e-12)  # float32
    restored = WarmupLinearDecay.from_config(schedule.get_config())
    assert float(restored(300)) == pytest.approx(float(schedule(300)))


def test_adamw_settings_and_decay_exclusions():
    optimizer = create_optimizer(OptimizerConfig(learning_rate=0.1, warmup_steps=0,
                                                 train_steps=10, weight_decay=0.5))
    assert optimizer.epsilon == 1e-6 and optimizer.global_clipnorm == 1.0
    assert (optimizer.beta_1, optimizer.beta_2) == (0.9, 0.999)
    dense = keras.layers.Dense(3)
    norm = keras.layers.LayerNormalization()
    dense.build((None, 3))
    norm.build((None, 3))
    variables = [dense.kernel, dense.bias, norm.gamma, norm.beta]
    for v in variables:
        v.assign(np.ones(v.shape, "float32"))
    # Zero gradients: Adam's step is 0, so only decoupled weight decay can move a variable.
    optimizer.apply([np.zeros(v.shape, "float32") for v in variables], variables)
    np.testing.assert_allclose(np.asarray(dense.kernel), 1 - 0.1 * 0.5, rtol=1e-6)  # step 0
    for v in (dense.bias, norm.gamma, norm.beta):
        np.testing.assert_allclose(np.asarray(v), 1.0)


@pytest.mark.parametrize("mode", ["graph", "eager"])
def test_fused_update_is_keras_adamw(mode):
    """ElectraAdamW's fused step (ResourceApplyAdam after the decoupled decay) takes the same
    steps as Keras' own AdamW with the same settings: bias-corrected Adam, epsilon outside the
    square root, decay before the step and not on the excluded names. The kernel forms
    `1 - beta` in float32 (Keras in Python's double: 0.001 vs 0.00099998713 for beta_2 = 0.999,
    a 1.3e-5 relative difference in the second moment's decay), so both get betas that are exact
    float32 numbers and must then agree to rounding."""
    import tensorflow as tf

    from electra_tf.training.optimizer import NO_DECAY_NAME_PATTERNS, ElectraAdamW

    def run(optimizer_class):
        keras.utils.set_random_seed(0)
        dense, norm = keras.layers.Dense(4), keras.layers.LayerNormalization()
        dense.build((None, 3))
        norm.build((None, 4))
        variables = [dense.kernel, dense.bias, norm.gamma, norm.beta]
        optimizer = optimizer_class(learning_rate=WarmupLinearDecay(0.05, 2, 10),
                                    beta_1=float(np.float32(0.9)),
                                    beta_2=float(np.float32(0.999)),
                                    weight_decay=0.3, epsilon=1e-6, global_clipnorm=1.0)
        optimizer.exclude_from_weight_decay(var_names=list(NO_DECAY_NAME_PATTERNS))
        optimizer.build(variables)
        apply = lambda grads: optimizer.apply(grads, variables)
        apply = tf.function(apply) if mode == "graph" else apply
        rng = np.random.default_rng(1)
        for _ in range(6):
            grads = [tf.constant(rng.normal(size=v.shape), "float32") for v in variables]
            apply(grads)
        return [np.asarray(v) for v in variables]

    ours, keras_own = run(ElectraAdamW), run(keras.optimizers.AdamW)
    for a, b in zip(ours, keras_own):
        np.testing.assert_allclose(a, b, rtol=2e-6, atol=1e-7)
    assert not np.allclose(ours[0], run(lambda **k: keras.optimizers.AdamW(
        **{**k, "weight_decay": 0.0}))[0], atol=1e-4)  # the decay did act on the kernel


def test_16_bit_variables_take_keras_update():
    """The fused kernel would form `1 - beta` in 16 bits (float16's 1 - 0.999 is 2% off), so
    float16/bfloat16 variables keep Keras' own Adam: identical values. (In bfloat16 Keras' Adam
    itself cannot step: 0.999 rounds to 1.0, so its bias correction is 0. Float32 variables, as
    every precision here keeps, are the way to train.)"""
    from electra_tf.training.optimizer import ElectraAdamW

    for dtype in ("float16", "bfloat16"):
        values = []
        for optimizer_class in (ElectraAdamW, keras.optimizers.AdamW):
            variable = keras.Variable(np.ones(4, "float32"), dtype=dtype)
            optimizer = optimizer_class(learning_rate=0.01, weight_decay=0.1)
            for _ in range(3):
                optimizer.apply([keras.ops.full((4,), 0.5, dtype)], [variable])
            values.append(np.asarray(keras.ops.cast(variable, "float32")))
        if dtype == "float16":
            assert not np.allclose(values[0], 1.0)  # it did step
        np.testing.assert_array_equal(values[0], values[1], err_msg=dtype)


def test_fused_update_compiles_with_xla():
    """The fused kernel has an XLA lowering (the TPU path): `jit_compile=True` takes the same
    steps as the graph without it."""
    results = []
    for jit_compile in (False, True):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                                  keras.layers.LayerNormalization(), keras.layers.Dense(1)])
        model.compile(optimizer=create_optimizer(OptimizerConfig(
            learning_rate=1e-2, warmup_steps=2, train_steps=20)), loss="mse",
            jit_compile=jit_compile)
        x = np.random.default_rng(0).normal(size=(64, 8)).astype("float32")
        losses = model.fit(x, x.sum(1), batch_size=16, epochs=3, verbose=0,
                           shuffle=False).history["loss"]
        results.append((losses, [np.asarray(w) for w in model.weights]))
    (losses, weights), (xla_losses, xla_weights) = results
    assert losses[-1] < losses[0] - 1.0  # it trains
    np.testing.assert_allclose(xla_losses, losses, rtol=1e-5)
    for a, b in zip(xla_weights, weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_global_norm_clipping():
    optimizer = create_optimizer(OptimizerConfig(learning_rate=1.0, warmup_steps=0,
                                                 train_steps=10**6, weight_decay=0.0))
    clipped = optimizer._clip_gradients([np.full((4,), 100.0, "float32")])[0]
    np.testing.assert_allclose(np.linalg.norm(np.asarray(clipped)), 1.0, rtol=1e-5)


@pytest.mark.slow(seconds=70)
def test_fit_on_synthetic_corpus_drives_losses_down():
    steps = 450
    # Seeds the weight initialisers too (the pretrainer's seed covers only masking/sampling), so
    # the run is reproducible: how fast replaced-token detection picks up depends on the initial
    # weights. Epoch-mean disc_auc at step 450 for init seeds 0/2/3: 0.67/0.67/0.79 (all rising).
    keras.utils.set_random_seed(3)
    config = ElectraConfig.from_dict({
        "model": dict(vocab_size=128, embedding_size=64, hidden_size=64, num_layers=2,
                      num_heads=1, intermediate_size=256, generator_hidden_fraction=0.25),
        "pretraining": dict(TINY_PRETRAINING_CONFIG, max_seq_length=32),
        "optimizer": dict(learning_rate=2e-3, warmup_steps=40, train_steps=steps),
    })
    pretrainer = ElectraPretrainer(config.model, config.pretraining, seed=0)
    pretrainer.compile(optimizer=create_optimizer(config.optimizer))
    history = pretrainer.fit(synthetic_dataset(2000, 32, 128, 32, seed=0),
                             steps_per_epoch=steps // 3, epochs=3, verbose=0).history
    for name in ("loss", "mlm_loss", "disc_loss", "mlm_accuracy", "disc_accuracy",
                 "disc_precision", "disc_recall", "disc_auc"):
        assert name in history, name
    first, last = {k: v[0] for k, v in history.items()}, {k: v[-1] for k, v in history.items()}
    # Measured (init seed 3, 2 CPU cores, epoch means; Glorot RTD output layer):
    # mlm_loss 4.66 -> 3.39, disc_loss 0.417 -> 0.273, disc_recall 0.017 -> 0.40, disc_auc
    # 0.55 -> 0.79. The bounds leave room for thread-order noise, not for a broken objective
    # (which keeps disc_loss near the 0.40 base-rate entropy and recall near 0).
    assert last["mlm_loss"] < first["mlm_loss"] - 0.7
    assert last["disc_loss"] < 0.75 * first["disc_loss"]
    assert last["disc_recall"] > 0.25
    assert last["disc_auc"] > 0.65
    assert last["disc_accuracy"] > first["disc_accuracy"]
    evaluation = pretrainer.evaluate(synthetic_dataset(256, 32, 128, 32, seed=1, repeat=False),
                                     verbose=0, return_dict=True)
    assert evaluation["disc_loss"] < first["disc_loss"]


def test_mlm_objective_trains_with_fit():
    config = ElectraConfig.from_dict({
        "model": dict(vocab_size=128, embedding_size=32, hidden_size=32, num_layers=1,
                      num_heads=1, intermediate_size=64),
        "pretraining": dict(TINY_PRETRAINING_CONFIG, max_seq_length=32, electra_objective=False),
        "optimizer": dict(learning_rate=3e-3, warmup_steps=10, train_steps=120),
    })
    pretrainer = ElectraPretrainer(config.model, config.pretraining, seed=0)
    pretrainer.compile(optimizer=create_optimizer(config.optimizer))
    history = pretrainer.fit(synthetic_dataset(1000, 32, 128, 32), steps_per_epoch=60,
                             epochs=2, verbose=0).history
    assert set(history) == {"loss", "mlm_loss", "mlm_accuracy"}
    assert history["mlm_loss"][-1] < history["mlm_loss"][0] - 0.3


@pytest.mark.slow(seconds=20)
@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_train_steps(policy):
    from conftest import TINY_MODEL_CONFIG

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        pretrainer = ElectraPretrainer(dict(TINY_MODEL_CONFIG, vocab_size=64),
                                       TINY_PRETRAINING_CONFIG, seed=0)
        optimizer = create_optimizer(OptimizerConfig(warmup_steps=2, train_steps=20))
        if policy == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        pretrainer.compile(optimizer=optimizer)
        history = pretrainer.fit(synthetic_dataset(200, 16, 64, 8, num_topics=4),
                                 steps_per_epoch=5, epochs=1, verbose=0).history
    finally:
        keras.config.set_dtype_policy(previous)
    layer = pretrainer.discriminator.encoder.transformer_layers[0]
    assert layer.compute_dtype == policy.split("_")[1]
    assert all(v.dtype == "float32" for v in pretrainer.trainable_variables)
    assert all(np.isfinite(values[-1]) for values in history.values())
    # Losses in float32 from logits: the untrained discriminator sits near log(2).
    assert abs(history["disc_loss"][-1] - np.log(2)) < 0.05


@pytest.mark.slow(seconds=20)
def test_discriminator_learns_token_level_replacement_detection():
    """Regression guard for a head that collapses to a constant prediction.

    Original tokens come from ids 5..99, replacements from 100..V-1: one token's own identity
    answers the question, so a healthy discriminator reaches ROC AUC ~1 within a few dozen Adam
    steps. With the RTD output layer initialised at stddev 0.02 (instead of the authors'
    Glorot default) an electra_tiny-shaped discriminator stayed at AUC 0.5 here.
    """
    from electra_tf import Discriminator, ElectraEncoder

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    vocab_size, batch, length = 1000, 16, 64

    def corrupted_batch():
        original = rng.integers(5, 100, (batch, length))
        replaced = rng.random((batch, length)) < 0.15
        token_ids = np.where(replaced, rng.integers(100, vocab_size, (batch, length)), original)
        return {"token_ids": token_ids.astype("int32")}, replaced.astype("float32")

    encoder = ElectraEncoder(vocab_size=vocab_size, embedding_size=128, hidden_size=128,
                             num_layers=4, num_heads=2, intermediate_size=512,
                             max_position_embeddings=64)
    discriminator = Discriminator(encoder)
    discriminator.compile(optimizer=keras.optimizers.AdamW(1e-3),
                          loss=keras.losses.BinaryCrossentropy(from_logits=True))
    for _ in range(40):
        inputs, labels = corrupted_batch()
        discriminator.train_on_batch(inputs, labels)
    inputs, labels = corrupted_batch()
    auc = keras.metrics.AUC(from_logits=True)
    auc.update_state(labels, discriminator.predict_on_batch(inputs))
    assert float(auc.result()) > 0.95


def test_checkpoint_retention_survives_a_garbled_state_file(tmp_path, caplog):
    """Issue 21 (8): a garbage `checkpoint` file once disabled --keep-checkpoints."""
    import logging

    from electra_tf.training.checkpoints import TrainingCheckpointer

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    optimizer = keras.optimizers.Adam()
    optimizer.build(model.trainable_variables)
    directory = tmp_path / "checkpoints"
    checkpointer = TrainingCheckpointer(str(directory), model, optimizer, keep=2)
    for _ in range(3):
        optimizer.iterations.assign_add(1)
        checkpointer.save()
    (directory / "checkpoint").write_text("\x00 not a checkpoint state \xff{{")
    with caplog.at_level(logging.WARNING):
        checkpointer = TrainingCheckpointer(str(directory), model, optimizer, keep=2)
        assert checkpointer.restore_latest() == 3
        for _ in range(3):
            optimizer.iterations.assign_add(1)
            checkpointer.save()
    assert sorted(p.name for p in directory.glob("*.index")) == ["ckpt-5.index", "ckpt-6.index"]
    assert sorted(p.name for p in directory.glob("*.data-*")) == [
        "ckpt-5.data-00000-of-00001", "ckpt-6.data-00000-of-00001"]
