"""One set of checks that every registered class of electra_tf passes (KerasHub's `run_layer_test`
idea): a new layer or model gets them all by adding one case to `tests/test_harness_cases.py`.

A case runs every check of `CHECKS` or skips it with a reason a reader can judge; `run_case`
fails when a check neither ran nor was skipped, so no check is dropped silently.

    build_call             an eager call builds the object; the output has the stated shape
                           (and, for the text layers, the stated ids); every weight is finite
    symbolic_call          a call on `keras.Input`s of unknown batch size and sequence length
                           gives output shapes that agree with the eager call's
    config_round_trip      the config names every `__init__` argument (or `NOT_IN_CONFIG` says
                           why not); `keras.saving.serialize_keras_object` -> JSON -> deserialize
                           (by registered name, through `from_config`) gives the same class and
                           the same config
    keras_reload           saved as `.keras` (a layer inside a functional model) and loaded
                           without `custom_objects`: same number of weights and parameters,
                           identical outputs
    weight_counts          exactly the stated numbers of trainable and non-trainable weights
    fit_step               one eager `fit` step (a layer inside a functional model, or a model,
                           with an MSE loss; or the model's own `train_step`) gives a finite loss
                           and changes every trainable weight
    mixed_bfloat16         built under the global `mixed_bfloat16` policy (restored afterwards,
                           also on failure): finite outputs of the dtype the class intends,
                           float32 weights, the expected policy in every sub-layer
    mixed_matches_float32  given the float32 object's weights, the mixed outputs are within
                           `mixed_atol` of the float32 ones
    bfloat16_matmul        built under the global `bfloat16_matmul` policy (matmuls in bfloat16,
                           the rest float32; restored afterwards): finite outputs, float32 where
                           they are floats, float32 weights, that policy in every sub-layer
    bfloat16_matmul_matches_float32
                           given the float32 object's weights, the bfloat16_matmul outputs are
                           within `mixed_atol` of the float32 ones
    sequence_length        a shorter sequence works with the same weights (finite outputs whose
                           shapes agree with the symbolic call's)

Layers and models are `LayerCase`s. Optimizers and schedules are `ObjectCase`s: their own check
function (`run_optimizer_checks`, `run_schedule_checks`) returns the checks it performed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import os
from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf

from electra_tf.layers.matmul import get_dtype_policy

# `__init__` arguments that a class leaves out of `get_config` on purpose, and why.
_KERAS_DENSE_OPTIONAL = {
    "activity_regularizer": "Keras' Layer.get_config saves it only when one is set",
    "lora_rank": "Keras' Dense/EinsumDense save it only when LoRA is enabled",
    "lora_alpha": "Keras' Dense/EinsumDense save it only when LoRA is enabled",
}
NOT_IN_CONFIG = {
    "electra_tf>ElectraEncoder": {
        "embeddings": "a shared embedding block (the pretrainer's tie) is not saved with the "
                      "encoder: a saved encoder reloads with its own copy"},
    "electra_tf>MatmulDense": _KERAS_DENSE_OPTIONAL,
    "electra_tf>MatmulEinsumDense": dict(
        _KERAS_DENSE_OPTIONAL, gptq_unpacked_column_size="Keras' EinsumDense saves it only for "
                                                         "GPTQ quantization"),
}

CHECKS = ("build_call", "symbolic_call", "config_round_trip", "keras_reload", "weight_counts",
          "fit_step", "mixed_bfloat16", "mixed_matches_float32", "bfloat16_matmul",
          "bfloat16_matmul_matches_float32", "sequence_length")
# The 16-bit precisions the harness builds every case in, and the check comparing each with float32.
SIXTEEN_BIT_CHECKS = {"mixed_bfloat16": "mixed_matches_float32",
                      "bfloat16_matmul": "bfloat16_matmul_matches_float32"}


@dataclasses.dataclass
class LayerCase:
    """A layer or model and what the harness should see when it runs it.

    Attributes:
        cls: the class under test (what the registry test matches against).
        init: constructor arguments, or a factory `f(tmp_path) -> object` for objects whose
            arguments are layers or files.
        inputs: a numpy array or tf tensor, a tuple of them (positional call args) or a dict.
        output_shape: shape of the (first) output, or a dict output name -> shape.
        expected_output: the exact (first) output, where the class's numbers are known
            (token ids of the text layers).
        trainable_weights, non_trainable_weights: exact weight counts of the built object.
        call_kwargs: extra keyword arguments of `call` (e.g. `training=False`).
        shorter_inputs: the same inputs with a shorter sequence.
        own_train_step: `fit` without a loss: the model's `train_step` computes its own.
        mixed_output_dtype: output dtype under mixed_bfloat16 (a dict name -> dtype for dict
            outputs; keys not listed are not checked).
        mixed_policy: the dtype policy every sub-layer must have under mixed_bfloat16 ("string"
            for text layers, which keep it whatever the global policy; under bfloat16_matmul
            they keep it too, and every other sub-layer must have bfloat16_matmul).
        mixed_atol: tolerance of `mixed_matches_float32` and of
            `bfloat16_matmul_matches_float32` (which keeps more in float32, so is closer).
        skip: check name -> why it does not apply to this class.
        id: test id (default: the class name).
    """

    cls: type
    init: dict | Callable
    inputs: Any
    output_shape: tuple | dict
    expected_output: Any = None
    trainable_weights: int | None = None
    non_trainable_weights: int | None = None
    call_kwargs: dict = dataclasses.field(default_factory=dict)
    shorter_inputs: Any = None
    own_train_step: bool = False
    mixed_output_dtype: str | dict = "bfloat16"
    mixed_policy: str = "mixed_bfloat16"
    mixed_atol: float = 0.1
    skip: dict = dataclasses.field(default_factory=dict)
    id: str = ""

    def make(self, tmp_path):
        if callable(self.init):
            return self.init(tmp_path)
        return self.cls(**self.init)


@dataclasses.dataclass
class ObjectCase:
    """Something registered that is not a layer (optimizer, schedule).

    `run(tmp_path)` performs the checks that apply and returns their names; `skip` explains the
    others.
    """

    cls: type
    run: Callable
    skip: dict = dataclasses.field(default_factory=dict)
    id: str = ""


def case_id(case) -> str:
    return case.id or case.cls.__name__


def run_case(case, tmp_path):
    """Runs a `LayerCase` or `ObjectCase` and checks that every check of `CHECKS` ran or was
    skipped with a reason. Returns the object a `LayerCase` built (float32, after its fit step)."""
    unknown = set(case.skip) - set(CHECKS)
    assert not unknown, f"{case_id(case)} skips unknown checks {sorted(unknown)}"
    unexplained = [name for name, reason in case.skip.items() if not str(reason).strip()]
    assert not unexplained, f"{case_id(case)} skips {unexplained} without a reason"
    if isinstance(case, ObjectCase):
        performed, result = set(case.run(tmp_path)), None
    else:
        performed, result = _run_layer_case(case, tmp_path)
    both = performed & set(case.skip)
    assert not both, f"{case_id(case)} both ran and skipped {sorted(both)}"
    missing = set(CHECKS) - performed - set(case.skip)
    assert not missing, f"{case_id(case)}: checks neither run nor skipped: {sorted(missing)}"
    return result


def run_layer_checks(cls, init_kwargs, inputs, expected_output_shape, tmp_path, call_kwargs=None,
                     shorter_inputs=None):
    """The checks that need no per-case numbers, for variants of a class that already has a full
    case in `tests/test_harness_cases.py` (the CPU levers): build/call, symbolic call, config round
    trip, `.keras` reload and another sequence length.

    `init_kwargs` may be a zero-argument factory instead of constructor arguments.
    """
    init = (lambda _: init_kwargs()) if callable(init_kwargs) else init_kwargs
    variant = "a variant of a class whose full case is in tests/test_harness_cases.py"
    skipped = ("weight_counts", "fit_step", *SIXTEEN_BIT_CHECKS, *SIXTEEN_BIT_CHECKS.values())
    skip = {name: variant for name in skipped}
    if shorter_inputs is None:
        skip["sequence_length"] = "no shorter inputs given"
    case = LayerCase(cls, init, inputs, expected_output_shape, call_kwargs=dict(call_kwargs or {}),
                     shorter_inputs=shorter_inputs, skip=skip)
    return run_case(case, tmp_path)


@contextlib.contextmanager
def global_dtype_policy(name):
    """Sets Keras' global dtype policy for the block and restores the previous one, also when the
    block raises (a leaked mixed policy would change every later test of the process)."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(get_dtype_policy(name))
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


# ------------------------------------------------------------------ layers and models


def _run_layer_case(case: LayerCase, tmp_path):
    performed = set()
    wanted = [name for name in CHECKS if name not in case.skip]
    is_model = isinstance(case.cls, type) and issubclass(case.cls, keras.Model)

    # build_call: an eager call with the expected shapes, finite weights.
    obj = case.make(tmp_path)
    outputs = _call(obj, case.inputs, case.call_kwargs)
    assert obj.built
    _assert_output_shapes(outputs, case.output_shape)
    if case.expected_output is not None:
        first = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
        if isinstance(first, tf.RaggedTensor):
            assert first.to_list() == case.expected_output, first.to_list()
        else:
            np.testing.assert_array_equal(np.asarray(first), case.expected_output)
    for w in obj.weights:
        assert np.all(np.isfinite(np.asarray(w))), f"{w.path} is not finite"
    performed.add("build_call")

    if "weight_counts" in wanted:
        counts = (len(obj.trainable_weights), len(obj.non_trainable_weights))
        assert counts == (case.trainable_weights, case.non_trainable_weights), (
            f"(trainable, non-trainable) weights: {counts}, expected "
            f"{(case.trainable_weights, case.non_trainable_weights)}")
        performed.add("weight_counts")

    # symbolic_call: keras.Input with unknown batch and sequence dimensions. A layer's symbolic
    # outputs become a functional model, which the reload and fit checks then use.
    symbolic_inputs = symbolic_outputs = None
    if "symbolic_call" in wanted:
        symbolic_inputs = _symbolic_inputs(case.inputs)
        symbolic_outputs = _call(obj, symbolic_inputs, case.call_kwargs)
        _assert_shapes_agree(symbolic_outputs, outputs)
        performed.add("symbolic_call")

    if "config_round_trip" in wanted:
        _check_config_round_trip(obj)
        performed.add("config_round_trip")

    wrapper = obj
    if not is_model and symbolic_inputs is not None:
        wrapper = keras.Model(symbolic_inputs, symbolic_outputs)
    model_inputs = list(case.inputs) if isinstance(case.inputs, tuple) else case.inputs
    model_kwargs = case.call_kwargs if is_model else {}

    expected = None  # float32 outputs of the current weights and random-stream state
    if "keras_reload" in wanted:
        assert wrapper is not obj or is_model, "keras_reload of a layer needs symbolic_call"
        path = os.path.join(str(tmp_path), f"{case_id(case)}.keras")
        wrapper.save(path)
        restored = keras.saving.load_model(path)
        assert type(restored) is type(wrapper)
        assert len(restored.weights) == len(wrapper.weights)
        assert restored.count_params() == wrapper.count_params()
        # Random streams (dropout seeds, the pretrainer's masking) are variables saved with the
        # weights, so both copies start from the same state and must agree exactly.
        expected = _call(wrapper, model_inputs, model_kwargs)
        _assert_trees_close(expected, _call(restored, model_inputs, model_kwargs), atol=1e-6)
        performed.add("keras_reload")

    if "sequence_length" in wanted:
        shorter = _call(obj, case.shorter_inputs, case.call_kwargs)
        _assert_finite(shorter)
        if symbolic_outputs is not None:
            _assert_shapes_agree(symbolic_outputs, shorter)
        performed.add("sequence_length")

    for precision, matches_float32 in SIXTEEN_BIT_CHECKS.items():
        if precision not in wanted:
            continue
        with global_dtype_policy(precision):
            mixed = case.make(tmp_path)
            mixed_outputs = _call(mixed, case.inputs, case.call_kwargs)
        _check_mixed_precision(mixed, mixed_outputs, case, precision)
        performed.add(precision)
        if matches_float32 in wanted:
            if expected is None:
                expected = _call(obj, case.inputs, case.call_kwargs)
            mixed.set_weights(obj.get_weights())
            actual = _call(mixed, case.inputs, case.call_kwargs)
            _assert_trees_close(expected, actual, atol=case.mixed_atol)
            performed.add(matches_float32)

    if "fit_step" in wanted:  # last: it changes the weights
        assert wrapper is not obj or is_model, "fit_step of a layer needs symbolic_call"
        _check_fit_step(wrapper, model_inputs, outputs, case.own_train_step)
        performed.add("fit_step")
    return performed, obj


def _check_config_round_trip(obj):
    """What `.keras` files store and load: the registered name and a JSON config, rebuilt by
    `from_config`. An argument missing from the config would silently take its default there."""
    config = obj.get_config()
    _assert_config_names_init_arguments(type(obj), config)
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(obj)))
    revived = keras.saving.deserialize_keras_object(serialized)
    assert type(revived) is type(obj)
    assert _json(revived.get_config()) == _json(config)


def _assert_config_names_init_arguments(cls, config):
    not_in_config = NOT_IN_CONFIG.get(keras.saving.get_registered_name(cls), {})
    parameters = inspect.signature(cls.__init__).parameters.values()
    named = {p.name for p in parameters if p.name != "self" and p.kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}
    missing = sorted(named - set(config) - set(not_in_config))
    assert not missing, f"{cls.__name__}.get_config() lacks the __init__ arguments {missing}"


def _check_fit_step(model, inputs, outputs, own_train_step):
    """One `fit` step on one batch. Adam moves every element whose gradient is non-zero by about
    the learning rate and leaves the others exactly in place, so an unchanged variable is one the
    loss does not reach. Eager (`run_eagerly`), because the point here is the wiring: a traced
    step of the 1-layer Discriminator took 5.9 s against 2.3 s, and the pretraining and
    fine-tuning tests run the compiled steps."""
    if own_train_step:
        data = tf.data.Dataset.from_tensors(inputs)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)
    else:
        first = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
        targets = np.random.default_rng(0).normal(size=first.shape).astype("float32")
        data = tf.data.Dataset.from_tensors((_as_tuple(inputs), targets))
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", run_eagerly=True)
    before = [np.array(v) for v in model.trainable_variables]
    assert before, "nothing to train"
    history = model.fit(data, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0]), history
    unchanged = [v.path for v, old in zip(model.trainable_variables, before)
                 if np.array_equal(np.asarray(v), old)]
    assert not unchanged, f"one fit step left these weights unchanged: {unchanged}"


def _check_mixed_precision(mixed, outputs, case, precision):
    """`mixed` built under the global `precision` policy gave `outputs`."""
    if precision == "bfloat16_matmul":  # only matmuls are bfloat16, inside the layers
        floats = [x for x in tf.nest.flatten(outputs) if keras.backend.is_float_dtype(_dtype(x))]
        assert all(_dtype(x) == "float32" for x in floats), [_dtype(x) for x in floats]
        policy = "string" if case.mixed_policy == "string" else precision
    else:
        _check_mixed_output_dtypes(outputs, case.mixed_output_dtype)
        policy = case.mixed_policy
    _assert_finite(outputs)
    for w in mixed.weights:
        assert _dtype(w) == "float32", f"{w.path} is {_dtype(w)} under {precision}"
    # A sub-layer with a policy of its own (a hard-coded dtype) would compute in float32 (slow)
    # or, for a text layer, try to cast its strings.
    for layer in mixed._flatten_layers():  # Keras 3's walk over a layer and all its sub-layers
        assert layer.dtype_policy.name == policy, (layer.name, layer.dtype_policy)


def _check_mixed_output_dtypes(outputs, expected):
    if isinstance(outputs, dict):
        assert isinstance(expected, dict), "dict outputs need a dict mixed_output_dtype"
        for key, dtype in expected.items():
            assert _dtype(outputs[key]) == dtype, (key, _dtype(outputs[key]), dtype)
    else:
        first = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
        assert _dtype(first) == expected, (_dtype(first), expected)


# ------------------------------------------------------------------ optimizers and schedules


def _tiny_regression_model():
    """Embedding -> Dense: an embedding's gradient is a `tf.IndexedSlices`, the case ElectraAdamW
    densifies; the Dense has a bias, which the weight-decay exclusions skip."""
    tokens = keras.Input(shape=(None,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(20, 8, name="embedding")(tokens)
    x = keras.layers.LayerNormalization(name="layer_norm")(x)
    outputs = keras.layers.Dense(1, name="dense")(keras.layers.GlobalAveragePooling1D()(x))
    return keras.Model(tokens, outputs)


def _regression_data():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 20, size=(4, 6)).astype("int32")
    y = rng.normal(size=(4, 1)).astype("float32")
    return tf.data.Dataset.from_tensors((x, y))


def run_optimizer_checks(make_optimizer, tmp_path, expected_class):
    """An optimizer's checks, on a tiny Embedding -> LayerNorm -> Dense model.

    build_call, fit_step: one `fit` step builds the optimizer (one step counted), gives a finite
        loss and moves every weight.
    config_round_trip: the config names every `__init__` argument; `from_config(get_config())` and a
        JSON serialize/deserialize give the same class and config.
    keras_reload: the compiled model saved as `.keras` and reloaded without `custom_objects` has an
        optimizer of the same class and config, the same variables (step, moments), and its next
        step gives exactly the same weights as the original's next step.
    mixed_bfloat16: a step under the global mixed_bfloat16 policy keeps the weights float32 and
        finite and moves every one of them.

    `make_optimizer(model)` builds the optimizer for a built model (per-variable settings, such as
    layer-wise learning rates, are keyed by the model's variable paths). Steps run eagerly: the
    pretraining and fine-tuning tests run these optimizers in compiled train steps.
    """
    model = _tiny_regression_model()
    optimizer = make_optimizer(model)
    assert type(optimizer) is expected_class
    model.compile(optimizer=optimizer, loss="mse", run_eagerly=True)
    before = [np.array(v) for v in model.trainable_variables]
    loss = model.fit(_regression_data(), epochs=1, verbose=0).history["loss"][0]
    assert np.isfinite(loss)
    assert int(optimizer.iterations.numpy()) == 1
    unchanged = [v.path for v, old in zip(model.trainable_variables, before)
                 if np.array_equal(np.asarray(v), old)]
    assert not unchanged, f"one step left these weights unchanged: {unchanged}"

    config = optimizer.get_config()
    _assert_config_names_init_arguments(type(optimizer), config)
    assert _json(type(optimizer).from_config(dict(config)).get_config()) == _json(config)
    revived = keras.saving.deserialize_keras_object(
        json.loads(json.dumps(keras.saving.serialize_keras_object(optimizer))))
    assert type(revived) is type(optimizer)
    assert _json(revived.get_config()) == _json(config)

    path = os.path.join(str(tmp_path), "optimizer.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    restored.run_eagerly = True
    assert type(restored.optimizer) is type(optimizer)
    assert _json(restored.optimizer.get_config()) == _json(config)
    assert len(restored.optimizer.variables) == len(optimizer.variables)
    for a, b in zip(optimizer.variables, restored.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)
    for m in (model, restored):
        m.fit(_regression_data(), epochs=1, verbose=0)
    for a, b in zip(model.trainable_variables, restored.trainable_variables):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=1e-7,
                                   err_msg=f"second step after reload: {a.path}")

    with global_dtype_policy("mixed_bfloat16"):
        mixed = _tiny_regression_model()
        mixed.compile(optimizer=make_optimizer(mixed), loss="mse", run_eagerly=True)
        before = [np.array(v) for v in mixed.trainable_variables]
        loss = mixed.fit(_regression_data(), epochs=1, verbose=0).history["loss"][0]
    assert np.isfinite(loss)
    for v, old in zip(mixed.trainable_variables, before):
        assert _dtype(v) == "float32", v.path
        assert np.all(np.isfinite(np.asarray(v))) and not np.array_equal(np.asarray(v), old), v.path
    return {"build_call", "fit_step", "config_round_trip", "keras_reload", "mixed_bfloat16"}


def run_schedule_checks(schedule, expected_values, tmp_path):
    """A learning-rate schedule's checks.

    build_call: float32 rates equal to `expected_values` ({step: rate}).
    config_round_trip: the config names every `__init__` argument; `from_config(get_config())` and a
        JSON serialize/deserialize give the same class, config and rates.
    keras_reload: a model compiled with an optimizer on this schedule, saved as `.keras` and
        reloaded without `custom_objects`, has the same schedule (class, config, rates).
    mixed_bfloat16, mixed_matches_float32, bfloat16_matmul, bfloat16_matmul_matches_float32:
        under each global 16-bit policy the rates are still float32 and identical (the optimizer
        updates float32 variables).
    """
    def rates(s):
        values = {step: s(step) for step in expected_values}
        assert all(_dtype(v) == "float32" for v in values.values())
        return {step: float(v) for step, v in values.items()}

    np.testing.assert_allclose(list(rates(schedule).values()), list(expected_values.values()),
                               rtol=1e-6, atol=1e-12)
    config = schedule.get_config()
    _assert_config_names_init_arguments(type(schedule), config)
    assert type(schedule).from_config(config).get_config() == config
    revived = keras.saving.deserialize_keras_object(
        json.loads(json.dumps(keras.saving.serialize_keras_object(schedule))))
    assert type(revived) is type(schedule) and revived.get_config() == config
    assert rates(revived) == rates(schedule)

    model = _tiny_regression_model()
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=schedule), loss="mse")
    path = os.path.join(str(tmp_path), "schedule.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path).optimizer.get_config()["learning_rate"]
    assert _json(reloaded) == _json(keras.saving.serialize_keras_object(schedule))
    reloaded = keras.saving.deserialize_keras_object(reloaded)
    assert type(reloaded) is type(schedule) and rates(reloaded) == rates(schedule)

    for precision in SIXTEEN_BIT_CHECKS:
        with global_dtype_policy(precision):
            mixed = rates(schedule)
        assert mixed == rates(schedule), precision
    return {"build_call", "config_round_trip", "keras_reload", *SIXTEEN_BIT_CHECKS,
            *SIXTEEN_BIT_CHECKS.values()}


def run_dtype_policy_checks(policy, tmp_path):
    """A dtype policy's checks (`BFloat16MatmulPolicy`), on a `MatmulDense` computing under it.

    build_call: float32 compute and variable dtypes; the Dense's output is exactly its product
        of bfloat16-rounded inputs and kernel, cast to float32, plus the bias.
    config_round_trip: a JSON serialize/deserialize gives the same class, name and config, and
        `get_dtype_policy(name)` the same policy.
    keras_reload: a functional model of that Dense, saved as `.keras` and reloaded without
        `custom_objects`, computes under the same policy with identical outputs.
    bfloat16_matmul, bfloat16_matmul_matches_float32: a Dense made under the global policy has
        it, float32 weights, and float32 outputs (of size ~1) within 0.05 of float32 arithmetic.
    """
    from electra_tf.layers.matmul import MatmulDense

    x = np.random.default_rng(0).normal(size=(3, 8)).astype("float32")
    assert (policy.compute_dtype, policy.variable_dtype) == ("float32", "float32")
    dense = MatmulDense(4, dtype=policy)
    y = np.asarray(dense(x))
    bf16 = tf.cast(tf.matmul(tf.cast(x, tf.bfloat16), tf.cast(dense.kernel, tf.bfloat16)),
                   tf.float32)
    np.testing.assert_array_equal(y, np.asarray(bf16 + dense.bias))

    serialized = json.loads(json.dumps(keras.dtype_policies.serialize(policy)))
    revived = keras.dtype_policies.deserialize(serialized)
    assert type(revived) is type(policy) and revived.name == policy.name
    assert revived.get_config() == policy.get_config()
    assert get_dtype_policy(policy.name) == policy

    inputs = keras.Input((8,))
    model = keras.Model(inputs, MatmulDense(4, dtype=policy)(inputs))
    path = os.path.join(str(tmp_path), "policy.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert type(restored.layers[-1].dtype_policy) is type(policy)
    np.testing.assert_array_equal(np.asarray(restored(x)), np.asarray(model(x)))

    with global_dtype_policy(policy.name):
        dense = MatmulDense(4)
        y = dense(x)
    assert dense.dtype_policy == policy and _dtype(dense.kernel) == "float32"
    assert _dtype(y) == "float32"
    exact = x @ np.asarray(dense.kernel) + np.asarray(dense.bias)
    np.testing.assert_allclose(np.asarray(y), exact, rtol=0, atol=0.05)
    return {"build_call", "config_round_trip", "keras_reload", "bfloat16_matmul",
            "bfloat16_matmul_matches_float32"}


# ------------------------------------------------------------------ helpers


def _call(obj, inputs, call_kwargs):
    if isinstance(inputs, (list, tuple)) and not isinstance(obj, keras.Model):
        return obj(*inputs, **call_kwargs)
    if isinstance(inputs, (list, tuple)):  # a functional model with several inputs
        return obj(list(inputs), **call_kwargs)
    return obj(inputs, **call_kwargs)


def _as_tuple(inputs):
    return tuple(inputs) if isinstance(inputs, list) else inputs


def _is_string(x) -> bool:
    return getattr(x, "dtype", None) == tf.string or np.asarray(x).dtype.kind in "USO"


def _symbolic_inputs(inputs):
    """keras.Input per input, batch and sequence length unknown: ids `[batch, seq_len]` ->
    `(None, None)`, float `[batch, ..., features]` -> `(None, ..., features)`, strings `[batch]`."""
    def symbolic(x, name=None):
        shape = tuple(x.shape)
        if _is_string(x):
            return keras.Input(shape=shape[1:], dtype="string", name=name)
        dtype = str(np.asarray(x).dtype)
        if np.issubdtype(np.asarray(x).dtype, np.integer):
            return keras.Input(shape=(None,) * (len(shape) - 1), dtype=dtype, name=name)
        return keras.Input(shape=(None,) * (len(shape) - 2) + shape[-1:], dtype=dtype, name=name)

    if isinstance(inputs, dict):  # named after their keys (keeps Keras quiet)
        return {k: symbolic(v, k) for k, v in inputs.items()}
    if isinstance(inputs, (list, tuple)):
        return type(inputs)(symbolic(x) for x in inputs)
    return symbolic(inputs)


def _shape(x):
    return tuple(x.shape)


def _assert_output_shapes(outputs, expected):
    if isinstance(expected, dict):
        for key, shape in expected.items():
            assert _shape(outputs[key]) == tuple(shape), (key, _shape(outputs[key]), shape)
        return
    first = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
    assert _shape(first) == tuple(expected), (_shape(first), expected)


def _assert_shapes_agree(symbolic, eager):
    """Same structure; every symbolic dimension is unknown or equal to the eager one."""
    tf.nest.assert_same_structure(symbolic, eager)
    for s, e in zip(tf.nest.flatten(symbolic), tf.nest.flatten(eager)):
        s_shape, e_shape = _shape(s), _shape(e)
        assert len(s_shape) == len(e_shape) and all(
            a is None or a == b for a, b in zip(s_shape, e_shape)), (s_shape, e_shape)


def _dtype(x) -> str:
    return keras.backend.standardize_dtype(x.dtype)


def _json(config):
    return json.dumps(config, sort_keys=True, default=str)


def _leaves(tree):
    """Ragged tensors as nested lists, 16-bit floats as float32 numpy arrays, the rest as numpy."""
    leaves = []
    for x in tf.nest.flatten(tree):
        if isinstance(x, tf.RaggedTensor):
            leaves.append(x.to_list())
        elif _dtype(x) in ("bfloat16", "float16"):
            leaves.append(np.asarray(keras.ops.cast(x, "float32")))
        else:
            leaves.append(np.asarray(x))
    return leaves


def _assert_finite(tree):
    for x in _leaves(tree):
        if isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating):
            assert np.all(np.isfinite(x))


def _assert_trees_close(a, b, atol):
    tf.nest.assert_same_structure(a, b)
    for x, y in zip(_leaves(a), _leaves(b)):
        if isinstance(x, list):  # ragged ids
            assert x == y
        else:
            np.testing.assert_allclose(np.asarray(x, "float64"), np.asarray(y, "float64"),
                                       atol=atol, rtol=0)
