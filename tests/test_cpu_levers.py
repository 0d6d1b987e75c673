"""The small-compute switches (ALiBi, query/key init scale, pre-LN, no position embeddings, a
depthwise convolution in the FFN):
the shared harness for each, their numbers, mixed precision, config validation and the refusal
to export what HuggingFace ELECTRA cannot express."""

import keras
import numpy as np
import pytest
from harness import run_layer_checks

from conftest import TINY_ENCODER, TINY_MODEL_CONFIG, TINY_PRETRAINING_CONFIG
from electra_tf.config import ConfigError, ElectraConfig
from electra_tf.errors import CheckpointError
from electra_tf.layers import ElectraEncoder, MultiHeadSelfAttention, TransformerEncoderBlock
from electra_tf.layers.attention import alibi_bias, alibi_slopes
from electra_tf.models import Discriminator, ElectraPretrainer

LEVERS = dict(position_embedding="none", attention_bias="alibi", layer_norm_position="pre",
              query_key_initializer_range=0.09, ffn_convolution_kernel=3)
HIDDEN = np.random.default_rng(0).normal(size=(3, 12, 24)).astype("float32")


def test_attention_with_alibi_and_query_key_init(tmp_path):
    run_layer_checks(MultiHeadSelfAttention,
                     dict(num_heads=3, key_dim=8, attention_bias="alibi",
                          query_key_initializer_range=0.09),
                     HIDDEN, (3, 12, 24), tmp_path, shorter_inputs=HIDDEN[:, :7])


def test_pre_layer_norm_block(tmp_path):
    run_layer_checks(TransformerEncoderBlock,
                     dict(num_heads=2, intermediate_size=48, layer_norm_position="pre",
                          attention_bias="alibi"),
                     HIDDEN, (3, 12, 24), tmp_path, shorter_inputs=HIDDEN[:, :7])


def test_encoder_with_every_lever(token_batch, tmp_path):
    encoder = run_layer_checks(ElectraEncoder, dict(TINY_ENCODER, **LEVERS), token_batch,
                               (3, 12, 24), tmp_path,
                               shorter_inputs={k: v[:, :7] for k, v in token_batch.items()})
    names = [w.path for w in encoder.weights]
    assert not any("position_embeddings" in n for n in names)
    assert sum("ffn_convolution" in n for n in names) == 2  # one kernel per layer
    assert sum("final_layer_norm" in n for n in names) == 2  # gamma and beta


def test_ffn_convolution_block(tmp_path):
    run_layer_checks(TransformerEncoderBlock,
                     dict(num_heads=2, intermediate_size=48, ffn_convolution_kernel=5),
                     HIDDEN, (3, 12, 24), tmp_path, shorter_inputs=HIDDEN[:, :7])


def test_ffn_convolution_mixes_neighbours_but_never_padding():
    block = TransformerEncoderBlock(2, 48, dropout=0.0, attention_dropout=0.0,
                                    ffn_convolution_kernel=3)
    plain = TransformerEncoderBlock(2, 48, dropout=0.0, attention_dropout=0.0)
    mask = np.array([[1] * 9 + [0] * 3])
    x = HIDDEN[:1]
    changed = x.copy()
    changed[0, 10] += 5.0  # a padding position
    for layer in (block, plain):
        np.testing.assert_allclose(np.asarray(layer(x, padding_mask=mask))[0, :9],
                                   np.asarray(layer(changed, padding_mask=mask))[0, :9],
                                   atol=1e-5)
    # Attention sees the whole sequence, so compare the FFN alone: the convolution makes
    # position 4's FFN output depend on position 5's input.
    inner = np.asarray(block.intermediate_dense(x))
    moved = x.copy()
    moved[0, 5] += 1.0
    mixed = np.asarray(block.ffn_convolution(block.intermediate_dense(moved)))
    assert not np.allclose(np.asarray(block.ffn_convolution(inner))[0, 4], mixed[0, 4])
    assert np.allclose(np.asarray(block.ffn_convolution(inner))[0, 8], mixed[0, 8])


def test_alibi_slopes_follow_the_paper():
    # Press et al.: 8 heads -> 1/2, 1/4, ..., 1/256; other counts interleave the next power of 2.
    np.testing.assert_allclose(alibi_slopes(8), 2.0 ** -np.arange(1, 9))
    np.testing.assert_allclose(alibi_slopes(2), [2 ** -4, 2 ** -8])
    np.testing.assert_allclose(alibi_slopes(3), [2 ** -4, 2 ** -8, 2 ** -2])


def test_alibi_attention_prefers_near_tokens_from_the_start():
    """With zero query/key kernels the logits are the bias alone: each query's probabilities are
    softmax(-slope * |i - j|) over the real keys, and padding keys still get nothing."""
    layer = MultiHeadSelfAttention(2, 4, attention_bias="alibi")
    layer.build((1, 6, 8))
    for dense in (layer.query_dense, layer.key_dense):
        dense.kernel.assign(np.zeros(dense.kernel.shape, "float32"))
    mask = np.array([[1, 1, 1, 1, 1, 0]])
    _, probs = layer(np.ones((1, 6, 8), "float32"), padding_mask=mask,
                     return_attention_scores=True)
    bias = np.asarray(alibi_bias(2, 6))[0, :, :, :5]
    expected = np.exp(bias) / np.exp(bias).sum(-1, keepdims=True)
    np.testing.assert_allclose(np.asarray(probs)[0, :, :, :5], expected, atol=1e-6)
    np.testing.assert_allclose(np.asarray(probs)[0, :, :, 5], 0.0, atol=1e-7)
    assert probs[0, 0, 2, 1] > probs[0, 0, 2, 4]  # the nearer key gets more


def test_alibi_fused_and_explicit_paths_agree():
    layer = MultiHeadSelfAttention(2, 12, attention_bias="alibi", query_key_initializer_range=0.3)
    mask = np.array([[1] * 12, [1] * 9 + [0] * 3, [1] * 5 + [0] * 7])
    fused = layer(HIDDEN, padding_mask=mask)
    explicit, _ = layer(HIDDEN, padding_mask=mask, return_attention_scores=True)
    np.testing.assert_allclose(np.asarray(fused), np.asarray(explicit), atol=1e-5)


def test_query_key_init_scale_applies_to_queries_and_keys_only():
    keras.utils.set_random_seed(0)
    layer = MultiHeadSelfAttention(2, 64, initializer_range=0.02, query_key_initializer_range=0.1)
    layer.build((1, 4, 128))
    std = {d.name: float(np.std(np.asarray(d.kernel))) for d in
           (layer.query_dense, layer.key_dense, layer.value_dense, layer.output_dense)}
    # A truncated normal (cut at 2 sigma) has 0.88 of its nominal stddev.
    assert std["query"] == pytest.approx(0.088, rel=0.05)
    assert std["key"] == pytest.approx(0.088, rel=0.05)
    assert std["value"] == pytest.approx(0.0176, rel=0.05)
    assert std["attention_output"] == pytest.approx(0.0176, rel=0.05)


def test_pre_layer_norm_keeps_the_residual_stream_unnormalised():
    """Post-LN outputs are normalised per token (std ~1); pre-LN adds to the input unnormalised."""
    x = 10.0 * HIDDEN
    post = TransformerEncoderBlock(2, 48, dropout=0.0, attention_dropout=0.0)(x)
    pre = TransformerEncoderBlock(2, 48, dropout=0.0, attention_dropout=0.0,
                                  layer_norm_position="pre")(x)
    assert np.asarray(post).std(-1).mean() == pytest.approx(1.0, abs=0.01)
    assert np.asarray(pre).std(-1).mean() > 5.0
    # The encoder's final LayerNorm normalises pre-LN's output again.
    encoder = ElectraEncoder(**dict(TINY_ENCODER, layer_norm_position="pre"))
    out = np.asarray(encoder({"token_ids": np.array([[2, 7, 9, 3]])}))
    assert out.std(-1).mean() == pytest.approx(1.0, abs=0.01)


def test_levers_run_under_mixed_bfloat16(token_batch):
    keras.utils.set_random_seed(0)
    reference = ElectraEncoder(**dict(TINY_ENCODER, **LEVERS))
    expected = np.asarray(reference(token_batch))
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        mixed = ElectraEncoder(**dict(TINY_ENCODER, **LEVERS))
        mixed(token_batch)
        mixed.set_weights(reference.get_weights())
        actual = np.asarray(keras.ops.cast(mixed(token_batch), "float32"))
    finally:
        keras.config.set_dtype_policy(previous)
    assert np.all(np.isfinite(actual))
    np.testing.assert_allclose(actual, expected, atol=0.1)


@pytest.mark.slow(seconds=20)
def test_pretrainer_with_levers_trains_and_saves(token_batch, tmp_path):
    model = dict(TINY_MODEL_CONFIG, **LEVERS)
    run_layer_checks(
        ElectraPretrainer, lambda: ElectraPretrainer(model, TINY_PRETRAINING_CONFIG, seed=0),
        token_batch, {"disc_logits": (3, 12)}, tmp_path, call_kwargs={"training": False})
    keras.utils.set_random_seed(0)
    pretrainer = ElectraPretrainer(model, TINY_PRETRAINING_CONFIG, seed=0)
    pretrainer.compile(optimizer=keras.optimizers.AdamW(1e-3))
    history = pretrainer.fit(x=token_batch, batch_size=3, epochs=5, verbose=0).history
    assert np.all(np.isfinite(history["loss"]))
    assert history["loss"][-1] < history["loss"][0]


def test_config_validates_the_levers():
    with pytest.raises(ConfigError, match="blind to word order.*attention_bias='alibi'"):
        ElectraConfig.from_dict({"model": {"position_embedding": "none"}})
    with pytest.raises(ConfigError, match="attention_bias must be one of"):
        ElectraConfig.from_dict({"model": {"attention_bias": "rotary"}})
    with pytest.raises(ConfigError, match="layer_norm_position must be one of"):
        ElectraConfig.from_dict({"model": {"layer_norm_position": "sandwich"}})
    with pytest.raises(ConfigError, match="ffn_convolution_kernel must be 0 .off. or an odd"):
        ElectraConfig.from_dict({"model": {"ffn_convolution_kernel": 4}})
    with pytest.raises(ConfigError, match="query_key_initializer_range must be > 0"):
        ElectraConfig.from_dict({"model": {"query_key_initializer_range": 0}})
    config = ElectraConfig.from_dict({"model": dict(LEVERS)})
    assert config.model.encoder_kwargs()["attention_bias"] == "alibi"
    assert config.model.generator_encoder_kwargs()["layer_norm_position"] == "pre"


@pytest.mark.parametrize("lever", [{"attention_bias": "alibi"},
                                   {"layer_norm_position": "pre"},
                                   {"ffn_convolution_kernel": 3},
                                   {"position_embedding": "none", "attention_bias": "alibi"}])
def test_huggingface_export_refuses_what_it_cannot_express(lever, tmp_path):
    from electra_tf.convert import save_huggingface

    discriminator = Discriminator(ElectraEncoder(**dict(TINY_ENCODER, **lever)))
    discriminator({"token_ids": np.array([[2, 7, 3]])})
    with pytest.raises(CheckpointError, match="HuggingFace ELECTRA cannot express"):
        save_huggingface(discriminator, str(tmp_path / "hf"))
    assert not (tmp_path / "hf").exists()


def test_query_key_init_alone_still_exports_to_huggingface(tmp_path):
    from electra_tf.convert import save_huggingface

    discriminator = Discriminator(ElectraEncoder(**dict(TINY_ENCODER,
                                                        query_key_initializer_range=0.09)))
    discriminator({"token_ids": np.array([[2, 7, 3]])})
    save_huggingface(discriminator, str(tmp_path / "hf"))
    assert (tmp_path / "hf" / "config.json").exists()


@pytest.mark.parametrize("name", ["electra_tiny", "electra_small", "electra_base", "electra_large"])
def test_paper_configs_keep_every_lever_off(name):
    from electra_tf.config import load_config

    model = load_config(name).model
    assert (model.position_embedding, model.layer_norm_position, model.attention_bias,
            model.query_key_initializer_range, model.ffn_convolution_kernel) == (
        "learned", "post", "none", None, 0)


def test_cpu_recipe_config_turns_its_levers_on_at_electra_tiny_cost():
    from electra_tf.config import load_config
    from electra_tf.training.flops import pretraining_flops_per_sequence

    recipe, tiny = load_config("electra_cpu"), load_config("electra_tiny")
    assert recipe.model.attention_bias == "alibi" and recipe.model.position_embedding == "none"
    assert recipe.model.dropout == 0.0 and recipe.model.ffn_convolution_kernel == 5
    # Same size as electra_tiny; the FFN convolution adds ~1% of the FLOPs.
    ratio = pretraining_flops_per_sequence(recipe) / pretraining_flops_per_sequence(tiny)
    assert 1.0 < ratio < 1.02
