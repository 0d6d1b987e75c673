"""One set of checks that every layer and model of electra_tf passes (KerasHub's idea).

`run_layer_checks` builds the object, calls it, round-trips `get_config`, saves and reloads it as
a `.keras` file and compares outputs, and checks a second sequence length. New layers get the
checks by adding one parametrised case to `tests/test_harness_cases.py`.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf


def _to_numpy(tree):
    return tf.nest.map_structure(lambda t: np.asarray(t), tree)


def _assert_trees_close(a, b, atol=1e-6):
    tf.nest.assert_same_structure(a, b)
    for x, y in zip(tf.nest.flatten(_to_numpy(a)), tf.nest.flatten(_to_numpy(b))):
        np.testing.assert_allclose(x, y, atol=atol, rtol=0)


def _as_model(obj, inputs, call_kwargs):
    """Wraps a layer in a functional model so it can be saved as `.keras`; models pass through."""
    if isinstance(obj, keras.Model):
        return obj
    symbolic = tf.nest.map_structure(
        lambda x: keras.Input(shape=x.shape[1:], dtype=str(np.asarray(x).dtype)), inputs)
    if isinstance(inputs, dict):  # name the inputs after their keys (keeps Keras quiet)
        symbolic = {k: keras.Input(shape=v.shape[1:], dtype=str(v.dtype), name=k)
                    for k, v in inputs.items()}
    if isinstance(symbolic, (list, tuple)):
        outputs = obj(*symbolic, **call_kwargs)
    else:
        outputs = obj(symbolic, **call_kwargs)
    return keras.Model(symbolic, outputs)


def _call(obj, inputs, call_kwargs):
    if isinstance(inputs, (list, tuple)):
        return obj(*inputs, **call_kwargs)
    return obj(inputs, **call_kwargs)


def run_layer_checks(cls, init_kwargs, inputs, expected_output_shape, tmp_path, call_kwargs=None,
                     shorter_inputs=None):
    """Runs the shared checks.

    Args:
        cls: layer or model class.
        init_kwargs: constructor arguments (a factory callable may be given instead, for objects
            whose arguments are themselves layers).
        inputs: a numpy array, a tuple of them (positional call args) or a dict.
        expected_output_shape: shape of the (first) output, or a dict name -> shape.
        call_kwargs: extra keyword arguments of `call` (e.g. `training=False`).
        shorter_inputs: the same inputs with a shorter sequence, to check variable length.

    Objects with a random stream (the pretrainer's masking) keep its state in a variable, so the
    original and the reloaded copy start from the same state and must agree exactly too.
    """
    call_kwargs = dict(call_kwargs or {})
    make = init_kwargs if callable(init_kwargs) else (lambda: cls(**init_kwargs))

    # 1. build + call with the expected shape.
    obj = make()
    outputs = _call(obj, inputs, call_kwargs)
    first = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
    if isinstance(expected_output_shape, dict):
        for key, shape in expected_output_shape.items():
            assert tuple(first[key].shape) == tuple(shape), (key, first[key].shape, shape)
    else:
        assert tuple(first.shape) == tuple(expected_output_shape), (
            first.shape, expected_output_shape)
    assert obj.built
    assert all(np.all(np.isfinite(np.asarray(w))) for w in obj.weights)

    # 2. get_config round trip: the config is exactly the constructor's arguments.
    config = obj.get_config()
    clone = type(obj).from_config(config)
    assert clone.get_config() == config
    _call(clone, inputs, call_kwargs)
    assert len(clone.weights) == len(obj.weights)
    assert clone.count_params() == obj.count_params()

    # 3. `.keras` save/load without custom_objects gives identical outputs.
    model = _as_model(obj, inputs, call_kwargs) if not isinstance(obj, keras.Model) else obj
    path = os.path.join(str(tmp_path), f"{cls.__name__}.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    if isinstance(obj, keras.Model):
        expected, actual = _call(obj, inputs, call_kwargs), _call(restored, inputs, call_kwargs)
    else:
        expected = model(inputs if not isinstance(inputs, tuple) else list(inputs))
        actual = restored(inputs if not isinstance(inputs, tuple) else list(inputs))
    _assert_trees_close(expected, actual)

    # 4. another sequence length works with the same weights.
    if shorter_inputs is not None:
        shorter = _call(obj, shorter_inputs, call_kwargs)
        shorter = shorter[0] if isinstance(shorter, (list, tuple)) else shorter
        if isinstance(shorter, dict):
            shorter = shorter[next(iter(expected_output_shape))]
        assert np.all(np.isfinite(np.asarray(shorter)))
    return obj
