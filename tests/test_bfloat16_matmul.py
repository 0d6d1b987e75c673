"""The bfloat16_matmul precision (electra_tf.layers.matmul): matrix products in bfloat16, every
other op in float32, float32 weights; saved, reloaded, switched, trained and exported like the
other precisions. The per-layer checks (dtypes, policies, closeness to float32) run for every
registered class in tests/harness.py."""

import collections
import importlib
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import TINY_ENCODER, TINY_MODEL_CONFIG, TINY_PRETRAINING_CONFIG
from electra_tf import ElectraConfig, ElectraPretrainer, create_optimizer
from electra_tf.cli import main
from electra_tf.data import synthetic_dataset
from electra_tf.distribute import PRECISIONS, precision_policy, with_precision
from electra_tf.layers import ElectraEncoder
from electra_tf.layers.matmul import BFloat16MatmulPolicy
from electra_tf.models import Generator, SequenceClassifier

MATMULS = {"MatMul", "BatchMatMulV2", "BatchMatMulV3", "Einsum"}
# What the matmuls' bfloat16 operands also pass through: Keras' einsum and tensordot reshape
# and transpose them.
LAYOUT_OPS = {"Reshape", "Transpose", "Shape"}
ENCODER = dict(TINY_ENCODER, num_layers=1)  # E=16 -> H=24 projection, 2 heads


def _generator(precision):
    with precision_policy(precision):
        return Generator(ElectraEncoder(**ENCODER))


def _ops(graph):
    """Every op of `graph` and of the functions it calls (the fused XLA kernels of
    `electra_tf.layers.fused`), the call ops themselves left out."""
    for op in graph.get_operations():
        if op.type in ("PartitionedCall", "StatefulPartitionedCall"):
            yield from _ops(graph._get_function(op.get_attr("f").name).graph)
        else:
            yield op


def _bfloat16_op_types(graph) -> collections.Counter:
    """Op types (Cast aside) with a bfloat16 input or output in `graph` and inside the fused
    kernels, which read bfloat16 products and cast them to float32 first. Value-preserving
    plumbing (a function's arguments, identities of returns and custom gradients) is left out."""
    counts = collections.Counter()
    for op in _ops(graph):
        if op.type not in ("Cast", "Identity", "IdentityN", "Placeholder") and any(
                t.dtype == tf.bfloat16 for t in list(op.inputs) + list(op.outputs)):
            counts[op.type] += 1
    return counts


@pytest.mark.parametrize("training", [False, True])
def test_only_the_matmuls_compute_in_bfloat16(training, token_batch):
    """The traced generator (encoder + MLM head): every bfloat16 op is a matrix product or the
    reshaping of its operands; LayerNorm (Mean, Rsqrt), GELU (Erfc), softmax, dropout (SelectV2)
    and the adds stay float32; in inference and in training (with dropout) alike."""
    generator = _generator("bfloat16_matmul")
    graph = tf.function(lambda x: generator(x, training=training)).get_concrete_function(
        {"token_ids": tf.TensorSpec([None, None], tf.int32)}).graph
    bfloat16 = _bfloat16_op_types(graph)
    assert set(bfloat16) <= MATMULS | LAYOUT_OPS, bfloat16
    # E->H projection, Q, K, V, Q K^T, probs @ V, attention output, FFN in and out, MLM transform
    # and MLM output: 11 products.
    assert sum(bfloat16[op] for op in MATMULS) == 11, bfloat16
    float32_matmuls = [op.name for op in graph.get_operations() if op.type in MATMULS
                       and op.outputs[0].dtype == tf.float32]
    # The one float32 product: the token-type lookup written as a one-hot matmul.
    assert len(float32_matmuls) == 1 and "embeddings" in float32_matmuls[0], float32_matmuls
    float32_types = {op.type for op in _ops(graph)
                     if op.outputs and op.outputs[0].dtype == tf.float32}
    assert {"Mean", "Rsqrt", "Erfc", "Softmax", "AddV2", "BiasAdd"} <= float32_types
    outputs = generator(token_batch, training=training)
    assert outputs.dtype == tf.float32


def test_outputs_are_close_to_float32_and_closer_than_mixed_bfloat16(token_batch):
    """Same weights in the three precisions. bfloat16 keeps 8 bits of mantissa (~3 significant
    digits): each operand of a product is rounded by up to 0.2%, and the vocabulary logits of
    this untrained generator reach 0.2, so 0.01 (5% of the largest logit) is a generous bound.
    Measured maximum differences from float32: bfloat16_matmul 0.0021, mixed_bfloat16 0.0028
    (its elementwise ops round too). "Closer" compares the mean difference: the maximum is one
    logit's luck and reversed the order for 1 of 6 random initialisations (mean: 6 of 6, by
    ~20%)."""
    keras.utils.set_random_seed(0)
    generator = _generator("float32")
    expected = np.asarray(generator(token_batch))
    largest, mean = {}, {}
    for precision in ("bfloat16_matmul", "mixed_bfloat16"):
        difference = np.abs(np.asarray(with_precision(generator, precision)(token_batch))
                            - expected)
        largest[precision], mean[precision] = difference.max(), difference.mean()
    assert 0 < largest["bfloat16_matmul"] < 0.01, largest  # > 0: really bfloat16
    assert mean["bfloat16_matmul"] < mean["mixed_bfloat16"], mean


def test_a_keras_file_saved_under_bfloat16_matmul_reloads_in_it(token_batch, tmp_path):
    with precision_policy("bfloat16_matmul"):
        classifier = SequenceClassifier(ElectraEncoder(**ENCODER), num_labels=2)
    expected = np.asarray(classifier(token_batch))
    path = str(tmp_path / "classifier.keras")
    classifier.save(path)
    # Loaded under another global policy: the file's own policy wins.
    with precision_policy("mixed_bfloat16"):
        restored = keras.saving.load_model(path)
    policies = {type(layer.dtype_policy) for layer in restored._flatten_layers()}
    assert policies == {BFloat16MatmulPolicy}, policies
    np.testing.assert_array_equal(np.asarray(restored(token_batch)), expected)


def test_with_precision_switches_between_all_precisions_with_identical_weights(token_batch):
    start = _generator("bfloat16_matmul")
    expected = np.asarray(start(token_batch))
    model = start
    for precision in [p for p in PRECISIONS if p != "bfloat16_matmul"] + ["bfloat16_matmul"]:
        switched = with_precision(model, precision)
        assert switched.dtype_policy.name == precision
        assert switched.encoder.transformer_layers[0].attention.query_dense.dtype_policy.name \
            == precision
        for a, b in zip(model.get_weights(), switched.get_weights()):
            np.testing.assert_array_equal(a, b)
        model = switched
    assert type(model.dtype_policy) is BFloat16MatmulPolicy
    np.testing.assert_array_equal(np.asarray(model(token_batch)), expected)


@pytest.mark.slow(seconds=15)
def test_a_tiny_pretrainer_trains_under_bfloat16_matmul():
    """Three epochs of 4 compiled train steps on one repeated batch of 16 sequences at a high
    learning rate: both losses fall, every weight stays float32, and no loss scaling is involved
    (bfloat16 has float32's range). Most of the time goes into tracing the step, as in
    tests/test_training.py's `test_mixed_precision_train_steps`."""
    config = ElectraConfig.from_dict({
        "model": dict(TINY_MODEL_CONFIG, vocab_size=64, num_layers=1),
        "pretraining": TINY_PRETRAINING_CONFIG,
        "optimizer": dict(learning_rate=2e-2, warmup_steps=0, train_steps=100),
    })
    with precision_policy("bfloat16_matmul"):
        keras.utils.set_random_seed(0)
        pretrainer = ElectraPretrainer(config.model, config.pretraining, seed=0)
        pretrainer.compile(optimizer=create_optimizer(config.optimizer))
        history = pretrainer.fit(synthetic_dataset(16, 16, 64, 16, num_topics=1),
                                 steps_per_epoch=4, epochs=3, verbose=0).history
    assert type(pretrainer.discriminator.dtype_policy) is BFloat16MatmulPolicy
    assert not isinstance(pretrainer.optimizer, keras.optimizers.LossScaleOptimizer)
    assert all(v.dtype == "float32" for v in pretrainer.trainable_variables)
    # Measured: mlm_loss 4.12 -> 4.00, disc_loss 0.57 -> 0.45 (epoch means). Without learning
    # both would stay where the random masking puts them, within about 0.02.
    assert history["mlm_loss"][-1] < history["mlm_loss"][0] - 0.05, history["mlm_loss"]
    assert history["disc_loss"][-1] < history["disc_loss"][0] - 0.05, history["disc_loss"]


def _saved_model_op_types(export_dir, dtype_enum) -> set:
    """Op types of the SavedModel's functions whose type attribute `T` is `dtype_enum`."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    with open(os.path.join(export_dir, "saved_model.pb"), "rb") as f:
        saved.ParseFromString(f.read())
    graph = saved.meta_graphs[0].graph_def
    nodes = [node for function in graph.library.function for node in function.node_def]
    return {node.op for node in list(graph.node) + nodes
            if "T" in node.attr and node.attr["T"].type == dtype_enum}


def test_cli_exports_a_bfloat16_matmul_saved_model(tiny_pretrained_run, tmp_path):
    export_dir = str(tmp_path / "encoder")
    assert main(["export", "--model", tiny_pretrained_run, "--out", export_dir,
                 "--precision", "bfloat16_matmul"]) == 0
    importlib.import_module("tensorflow_text")  # registers the tokenizer ops
    texts = tf.constant(["a fine film", "dull and far too long", ""])
    served = tf.saved_model.load(export_dir).signatures["serving_default"](text=texts)
    discriminator = keras.saving.load_model(
        os.path.join(tiny_pretrained_run, "discriminator.keras"), safe_mode=True)
    expected = discriminator.encoder(
        {"token_ids": served["token_ids"], "padding_mask": served["padding_mask"]},
        training=False)
    output = served["sequence_output"].numpy()
    assert output.dtype == np.float32
    # LayerNorm-ed hidden states (up to 2.7 here) after one layer: measured 0.0032 (a
    # mixed_bfloat16 encoder: 0.028, its LayerNorm outputs are rounded to bfloat16).
    difference = np.abs(output - expected.numpy()).max()
    assert 0 < difference < 0.02, difference
    bfloat16 = _saved_model_op_types(export_dir, tf.bfloat16.as_datatype_enum)
    # Identity: the fused kernels' bfloat16 results, returned from their functions.
    assert bfloat16 and bfloat16 <= MATMULS | LAYOUT_OPS | {"Identity"}, bfloat16
    with open(os.path.join(export_dir, "assets.extra", "electra_tf.json")) as f:
        assert json.load(f)["precision"] == "bfloat16_matmul"
