"""Precision: Keras' dtype policy while a model is built, and float32 <-> 16-bit copies.

    with precision_policy("mixed_bfloat16"):  # models built here compute in bfloat16
        model = ...
    with_precision(model, "float32")          # the same weights, computing in float32

"mixed_bfloat16" and "mixed_float16" are Keras' mixed policies: every op in 16 bits.
"bfloat16_matmul" (`electra_tf.layers.matmul`) multiplies matrices in bfloat16 and keeps every
other op in float32. All of them keep float32 variables, so a model's weights carry over exactly
between precisions.
"""

from __future__ import annotations

import contextlib

import keras

from electra_tf.errors import ConfigError
from electra_tf.layers.matmul import BFLOAT16_MATMUL, get_dtype_policy

PRECISIONS = ("float32", "mixed_bfloat16", BFLOAT16_MATMUL, "mixed_float16")
# Classes of the serialized dtype policies `serialized_in_precision` replaces.
_POLICY_CLASSES = ("DTypePolicy", "FloatDTypePolicy", "BFloat16MatmulPolicy")


def _check_precision(name: str) -> None:
    if name not in PRECISIONS:
        raise ConfigError(f"Unknown precision {name!r}: choose one of {', '.join(PRECISIONS)}.")


def set_precision(name: str | None) -> str:
    """Sets Keras' global dtype policy: one of `PRECISIONS`.

    The 16-bit precisions keep float32 variables; the ELECTRA heads return float32 logits, and
    the objective samples replacements, softmaxes and computes its losses in float32. Under
    "mixed_float16" Keras' `compile` wraps the optimizer in a `LossScaleOptimizer`, whose scale
    `train_step` applies; bfloat16 has float32's range and needs no loss scaling. Call it before
    building the model.

    Returns:
        the policy name now in force.
    """
    name = name or "float32"
    _check_precision(name)
    keras.config.set_dtype_policy(get_dtype_policy(name))
    return name


@contextlib.contextmanager
def precision_policy(name: str | None):
    """Sets the Keras dtype policy while a model is built (`set_precision`), then restores the
    caller's: the models keep the policy they were built with."""
    previous = keras.config.dtype_policy()
    set_precision(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def with_precision(model: keras.Model, precision: str) -> keras.Model:
    """A copy of `model` (same weights) whose every layer computes under `precision`.

    A `.keras` file records each layer's dtype policy, so a model saved from a mixed_bfloat16
    run would reload in bfloat16 and a float32 one stays float32 whatever policy is in force.
    Pretraining therefore saves float32 copies of its products, and fine-tuning turns the
    loaded encoder into the requested precision with this function. Variables are float32 under
    every policy, so the weights carry over exactly. Returns `model` itself when nothing changes.
    """
    _check_precision(precision)
    if model.dtype_policy.name == precision:
        return model
    copy = keras.saving.deserialize_keras_object(serialized_in_precision(model, precision))
    build_config = model.get_build_config() or {}
    if not copy.built and "input_shape" in build_config:
        copy.build(build_config["input_shape"])
    copy.set_weights(model.get_weights())
    return copy


def serialized_in_precision(model: keras.Model, precision: str) -> dict:
    """`model`'s Keras config (architecture, no weights) with every layer under `precision`."""
    _check_precision(precision)
    policy = keras.dtype_policies.serialize(get_dtype_policy(precision))
    return _replace_policies(keras.saving.serialize_keras_object(model), policy)


def _replace_policies(config, policy: dict):
    """Replaces every serialized dtype policy named in `PRECISIONS` (a text layer's "string"
    policy stays) by `policy`."""
    if isinstance(config, dict):
        if config.get("class_name") in _POLICY_CLASSES and isinstance(config.get("config"), dict):
            return policy if config["config"].get("name") in PRECISIONS else config
        return {key: _replace_policies(value, policy) for key, value in config.items()}
    if isinstance(config, list):
        return [_replace_policies(value, policy) for value in config]
    return config
