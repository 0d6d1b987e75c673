"""Mixed precision: Keras' dtype policy while a model is built, and float32 <-> 16-bit copies.

    with precision_policy("mixed_bfloat16"):  # models built here compute in bfloat16
        model = ...
    with_precision(model, "float32")          # the same weights, computing in float32

Mixed policies compute in 16 bits and keep float32 variables, so a model's weights carry over
exactly between precisions.
"""

from __future__ import annotations

import contextlib

import keras

from electra_tf.errors import ConfigError

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


def set_precision(name: str | None) -> str:
    """Sets Keras' global dtype policy: "float32", "mixed_bfloat16" or "mixed_float16".

    Mixed policies compute in 16 bits and keep float32 variables; the ELECTRA heads return
    float32 logits, and the objective samples replacements, softmaxes and computes its losses
    in float32. Under "mixed_float16" Keras' `compile` wraps the optimizer in a
    `LossScaleOptimizer`, whose scale `train_step` applies. Call it before building the model.

    Returns:
        the policy name now in force.
    """
    name = name or "float32"
    if name not in PRECISIONS:
        raise ConfigError(f"Unknown precision {name!r}: choose one of {', '.join(PRECISIONS)}.")
    keras.config.set_dtype_policy(name)
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
    if precision not in PRECISIONS:
        raise ConfigError(f"Unknown precision {precision!r}: choose one of "
                          f"{', '.join(PRECISIONS)}.")
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
    return _replace_float_policies(keras.saving.serialize_keras_object(model), precision)


def _replace_float_policies(config, precision):
    if isinstance(config, dict):
        if config.get("class_name") in ("DTypePolicy", "FloatDTypePolicy") and \
                isinstance(config.get("config"), dict):
            return dict(config, config=dict(config["config"], name=precision))
        return {key: _replace_float_policies(value, precision) for key, value in config.items()}
    if isinstance(config, list):
        return [_replace_float_policies(value, precision) for value in config]
    return config
