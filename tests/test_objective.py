"""The replaced-token-detection objective: masking statistics, labels and gradient routing."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import TINY_MODEL_CONFIG, TINY_PRETRAINING_CONFIG
from electra_tf.models import ElectraPretrainer
from electra_tf.models.objective import mask_tokens, sample_tokens

CLS, SEP, MASK, PAD = 2, 3, 4, 0


def _corpus(batch=64, seq_len=128, seed=0):
    """Sequences of varied length with [CLS]/[SEP] inside, a few literal [MASK]s, then padding."""
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(5, 1000, size=(batch, seq_len)).astype("int32")
    padding_mask = np.zeros_like(token_ids)
    for row in range(batch):
        length = int(rng.integers(10, seq_len + 1))
        token_ids[row, 0], token_ids[row, length - 1] = CLS, SEP
        token_ids[row, length // 2] = SEP  # a second segment boundary
        token_ids[row, 1] = MASK  # a literal [MASK] in the text must never be chosen
        token_ids[row, length:] = PAD
        padding_mask[row, :length] = 1
    return token_ids, padding_mask


def _mask(token_ids, padding_mask, seed, num_predictions=19):
    return mask_tokens(tf.constant(token_ids), tf.constant(padding_mask),
                       num_predictions=num_predictions, mask_prob=0.15, mask_token_rate=0.85,
                       mask_id=MASK, special_ids=(CLS, SEP, MASK), seed=seed)


def test_masking_statistics_over_many_draws():
    token_ids, padding_mask = _corpus()
    seed = keras.random.SeedGenerator(7)
    chosen = shown_as_mask = real_tokens = 0
    for _ in range(40):
        out = {k: v.numpy() for k, v in _mask(token_ids, padding_mask, seed).items()}
        used = out["masked_lm_weights"] > 0
        positions = out["masked_positions"]
        for row in range(len(token_ids)):
            pos = positions[row][used[row]]
            n_real = padding_mask[row].sum()
            # The authors' count: max(1, min(P, round(0.15 * n_real))).
            assert len(pos) == max(1, min(19, int(np.round(0.15 * n_real))))
            assert len(set(pos.tolist())) == len(pos), "sampled without replacement"
            assert np.all(padding_mask[row, pos] == 1), "padding chosen"
            assert not np.isin(token_ids[row, pos], [CLS, SEP, MASK]).any(), "special chosen"
            np.testing.assert_array_equal(out["masked_lm_ids"][row][used[row]],
                                          token_ids[row, pos])
            # Chosen positions are [MASK] or unchanged; everything else is untouched.
            masked_row = out["masked_token_ids"][row]
            assert np.all((masked_row[pos] == MASK) | (masked_row[pos] == token_ids[row, pos]))
            others = np.setdiff1d(np.arange(token_ids.shape[1]), pos)
            np.testing.assert_array_equal(masked_row[others], token_ids[row, others])
            chosen += len(pos)
            shown_as_mask += int((masked_row[pos] == MASK).sum())
        real_tokens += int(padding_mask.sum())
    rate = chosen / real_tokens
    mask_fraction = shown_as_mask / chosen
    # Rounding and the cap at 19 of 128 keep the rate a little under 15%.
    assert 0.135 < rate < 0.155, rate
    assert abs(mask_fraction - 0.85) < 0.02, mask_fraction


def test_masking_is_random_per_step_and_seeded():
    token_ids, padding_mask = _corpus(batch=8)
    first = _mask(token_ids, padding_mask, keras.random.SeedGenerator(1))["masked_positions"]
    again = _mask(token_ids, padding_mask, keras.random.SeedGenerator(1))["masked_positions"]
    seed = keras.random.SeedGenerator(1)
    _mask(token_ids, padding_mask, seed)
    next_step = _mask(token_ids, padding_mask, seed)["masked_positions"]
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first.numpy(), next_step.numpy())


def test_sequence_with_no_candidates_masks_nothing():
    token_ids = np.array([[CLS, SEP, PAD, PAD]], dtype="int32")
    out = _mask(token_ids, (token_ids != PAD).astype("int32"), keras.random.SeedGenerator(0),
                num_predictions=2)
    assert out["masked_lm_weights"].numpy().sum() == 0
    np.testing.assert_array_equal(out["masked_token_ids"].numpy(), token_ids)


def _pretrainer(**pretraining):
    return ElectraPretrainer(TINY_MODEL_CONFIG, dict(TINY_PRETRAINING_CONFIG, **pretraining),
                             seed=0)


@pytest.mark.parametrize("vocab", [300, 128, 50])  # blocks of 128: padded, exact, single short
def test_sampled_tokens_follow_the_softmax(vocab):
    # 200 x 40 draws from one fixed distribution with probabilities from ~1e-6 to ~0.1: the
    # empirical frequencies match softmax(logits / T) (chi-square and largest gap), at T = 1 and 2.
    rng = np.random.default_rng(0)
    logits = rng.normal(0.0, 3.0, size=vocab).astype("float32")
    seed = keras.random.SeedGenerator(3)
    for temperature in (1.0, 2.0):
        expected = np.exp(logits / temperature - (logits / temperature).max())
        expected /= expected.sum()
        draws = np.concatenate([sample_tokens(
            tf.constant(np.broadcast_to(logits, (200, 40, vocab))), temperature, seed).numpy()
            .ravel() for _ in range(5)])
        assert draws.min() >= 0 and draws.max() < vocab
        counts = np.bincount(draws, minlength=vocab)
        n = len(draws)
        assert np.abs(counts / n - expected).max() < 5 * np.sqrt(expected.max() / n)
        frequent = expected * n >= 5  # chi-square over the cells with enough expected counts
        chi2 = (((counts - expected * n) ** 2) / (expected * n))[frequent].sum()
        dof = frequent.sum() - 1
        assert chi2 < dof + 5 * np.sqrt(2 * dof), (chi2, dof)
    # Tokens of probability 0 (exp underflows) are never drawn, wherever the peak sits.
    peaked = np.full(vocab, -1e4, "float32")
    peaked[vocab - 1] = 0.0
    assert np.all(sample_tokens(tf.constant(np.broadcast_to(peaked, (4, 8, vocab))), 1.0,
                                seed).numpy() == vocab - 1)


def test_labels_follow_sampled_tokens(token_batch):
    pretrainer = _pretrainer()
    for _ in range(5):
        out = {k: np.asarray(v) for k, v in pretrainer(token_batch, training=False).items()}
        token_ids = token_batch["token_ids"]
        used = out["masked_lm_weights"] > 0
        for row in range(len(token_ids)):
            pos = out["masked_positions"][row][used[row]]
            sampled = out["sampled_ids"][row][used[row]]
            # Samples are written into the original sequence at every masked position.
            np.testing.assert_array_equal(out["corrupted_token_ids"][row, pos], sampled)
            np.testing.assert_array_equal(out["disc_labels"][row, pos],
                                          (sampled != token_ids[row, pos]).astype("float32"))
            others = np.setdiff1d(np.arange(token_ids.shape[1]), pos)
            assert np.all(out["disc_labels"][row, others] == 0)
            np.testing.assert_array_equal(out["corrupted_token_ids"][row, others],
                                          token_ids[row, others])


def test_sample_equal_to_original_is_labelled_original(token_batch):
    # Temperature -> 0 makes the sampler near-greedy; forcing the generator to predict the
    # original token (a huge bias on it) makes every sample equal the original.
    pretrainer = _pretrainer(temperature=1e-3)
    pretrainer(token_batch)
    original = pretrainer(token_batch, training=False)
    bias = pretrainer.generator.mlm_head.bias
    target = int(np.asarray(original["masked_lm_ids"])[0, 0])
    bias.assign(np.where(np.arange(50) == target, 1e4, 0.0).astype("float32"))
    batch = dict(token_batch, token_ids=np.where(token_batch["padding_mask"] > 0,
                                                 np.where(np.isin(token_batch["token_ids"],
                                                                  [CLS, SEP]),
                                                          token_batch["token_ids"], target), 0))
    out = pretrainer(batch, training=False)
    assert np.asarray(out["masked_lm_weights"]).sum() > 0
    assert np.asarray(out["disc_labels"]).sum() == 0


def test_total_loss_weights_discriminator_by_50(token_batch):
    out = _pretrainer()(token_batch, training=False)
    np.testing.assert_allclose(float(out["loss"]),
                               float(out["mlm_loss"]) + 50.0 * float(out["disc_loss"]), rtol=1e-6)


def test_disc_loss_reaches_shared_embeddings_but_not_generator(token_batch):
    pretrainer = _pretrainer()
    pretrainer(token_batch)
    generator_only = [v for v in pretrainer.generator.trainable_variables
                      if not any(v is e for e in pretrainer.embeddings.trainable_variables)]
    with tf.GradientTape(persistent=True) as tape:
        out = pretrainer(token_batch, training=True)
    embedding_grad = tape.gradient(out["disc_loss"], pretrainer.embeddings.embedding_matrix)
    assert embedding_grad is not None
    assert float(tf.norm(tf.convert_to_tensor(embedding_grad))) > 0
    generator_grads = tape.gradient(out["disc_loss"], generator_only)
    assert all(g is None for g in generator_grads), "disc loss leaked into the generator"
    disc_grads = tape.gradient(out["disc_loss"], pretrainer.discriminator.trainable_variables)
    assert all(g is not None for g in disc_grads)
    # The MLM loss does train the generator.
    mlm_grads = tape.gradient(out["mlm_loss"], generator_only)
    assert all(g is not None for g in mlm_grads)


def test_embeddings_are_shared_once(token_batch):
    pretrainer = _pretrainer()
    pretrainer(token_batch)
    assert pretrainer.generator.encoder.embeddings is pretrainer.discriminator.encoder.embeddings
    ids = [id(v) for v in pretrainer.trainable_variables]
    assert len(ids) == len(set(ids))
    total = pretrainer.count_params()
    separate = pretrainer.generator.count_params() + pretrainer.discriminator.count_params()
    assert total == separate - pretrainer.embeddings.count_params()


def test_disentangled_sharing_routes_each_loss_to_its_own_table(token_batch):
    # DeBERTaV3's gradient-disentangled sharing: the shared table learns from the MLM loss only,
    # the discriminator's residual from the replaced-token loss only.
    pretrainer = _pretrainer(embedding_sharing="gradient_disentangled")
    pretrainer(token_batch)
    shared = pretrainer.embeddings.embedding_matrix
    residual = pretrainer.discriminator.encoder.embeddings.word_embeddings.embeddings
    with tf.GradientTape(persistent=True) as tape:
        out = pretrainer(token_batch, training=True)
    assert tape.gradient(out["disc_loss"], shared) is None
    assert float(tf.norm(tf.convert_to_tensor(tape.gradient(out["mlm_loss"], shared)))) > 0
    assert tape.gradient(out["mlm_loss"], residual) is None
    assert float(tf.norm(tf.convert_to_tensor(tape.gradient(out["disc_loss"], residual)))) > 0
    # Every discriminator weight still gets the replaced-token loss's gradient except the shared
    # block's, which the discriminator no longer reaches at all.
    own = [v for v in pretrainer.discriminator.trainable_variables
           if not any(v is e for e in pretrainer.embeddings.trainable_variables)]
    assert all(g is not None for g in tape.gradient(out["disc_loss"], own))
    ids = [id(v) for v in pretrainer.trainable_variables]
    assert len(ids) == len(set(ids))


def test_disentangled_discriminator_saves_as_a_plain_one(token_batch, tmp_path):
    pretrainer = _pretrainer(embedding_sharing="gradient_disentangled")
    pretrainer(token_batch)
    residual = pretrainer.discriminator.encoder.embeddings.word_embeddings.embeddings
    residual.assign(tf.random.normal(residual.shape, stddev=0.1))  # as if trained: not zero
    inputs = {k: token_batch[k] for k in ("token_ids", "segment_ids", "padding_mask")}
    expected = np.asarray(pretrainer.discriminator(inputs))
    standalone = pretrainer.standalone_discriminator()
    assert type(standalone.encoder.embeddings).__name__ == "ElectraEmbeddings"
    np.testing.assert_allclose(np.asarray(standalone(inputs)), expected, atol=1e-5)
    path = str(tmp_path / "discriminator.keras")
    standalone.save(path)
    np.testing.assert_allclose(np.asarray(keras.models.load_model(path)(inputs)), expected,
                               atol=1e-5)
    # At step 0 the residual is zero: the discriminator starts from the shared vectors exactly.
    fresh = _pretrainer(embedding_sharing="gradient_disentangled")
    fresh(token_batch)
    np.testing.assert_array_equal(
        fresh.discriminator.encoder.embeddings.embedding_matrix.numpy(),
        fresh.embeddings.embedding_matrix.numpy())


def test_shared_encoder_is_one_encoder_with_two_heads(token_batch):
    # The paper's "tie all encoder weights": both losses train the one encoder.
    pretrainer = ElectraPretrainer(dict(TINY_MODEL_CONFIG, generator_hidden_fraction=1.0),
                                   dict(TINY_PRETRAINING_CONFIG, share_encoder=True), seed=0)
    pretrainer(token_batch)
    encoder = pretrainer.discriminator.encoder
    assert pretrainer.generator.encoder is encoder
    assert pretrainer.count_params() == (pretrainer.discriminator.count_params()
                                         + pretrainer.generator.mlm_head.count_params())
    with tf.GradientTape(persistent=True) as tape:
        out = pretrainer(token_batch, training=True)
    for loss in ("mlm_loss", "disc_loss"):
        grads = tape.gradient(out[loss], encoder.trainable_variables)
        assert all(g is not None for g in grads), loss


def test_shared_encoder_needs_a_full_size_generator():
    with pytest.raises(ValueError, match="generator_hidden_fraction=1.0"):
        ElectraPretrainer(TINY_MODEL_CONFIG, dict(TINY_PRETRAINING_CONFIG, share_encoder=True))


def test_mlm_objective_has_no_discriminator(token_batch):
    pretrainer = _pretrainer(electra_objective=False)
    out = pretrainer(token_batch, training=False)
    assert pretrainer.discriminator is None
    assert pretrainer.generator.encoder.hidden_size == TINY_MODEL_CONFIG["hidden_size"]
    assert pretrainer.encoder is pretrainer.generator.encoder
    assert "disc_loss" not in out
    np.testing.assert_allclose(float(out["loss"]), float(out["mlm_loss"]))
