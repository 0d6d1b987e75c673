"""The "bfloat16_matmul" precision: matrix multiplications in bfloat16, everything else float32.

Under Keras' `mixed_bfloat16` every op of a layer computes in bfloat16, the elementwise ones
too (LayerNorm, GELU, softmax pieces, dropout, bias adds, residual sums), and TensorFlow's CPU
kernels for bfloat16 elementwise work are slow: the FFN's exact GELU on a `[32, 256, 1024]`
tensor takes 30.0 ms in bfloat16 against 12.6 ms in float32, while the bfloat16 matmul before
it takes 12.2 ms against 21.8 ms (`benchmarks/investigations/results/gelu_precision.md`).
`BFloat16MatmulPolicy` computes in float32, and the layers of this package cast to bfloat16 only
at the inputs of their matmuls and einsums (`matmul`, `einsum`, `MatmulDense`,
`MatmulEinsumDense`), casting each product back to float32. Variables stay float32, as under the
mixed policies, so weights carry over exactly between all precisions.

    with electra_tf.distribute.precision_policy("bfloat16_matmul"):
        encoder = ElectraEncoder(...)   # or ElectraEncoder(..., dtype=BFloat16MatmulPolicy())
"""

from __future__ import annotations

import keras
from keras import ops

BFLOAT16_MATMUL = "bfloat16_matmul"


@keras.saving.register_keras_serializable(package="electra_tf")
class BFloat16MatmulPolicy(keras.DTypePolicy):
    """A float32 dtype policy (float32 variables and compute) named "bfloat16_matmul", whose
    layers multiply matrices in bfloat16: they read it through `matmul_dtype`. Keras' own layers
    under it compute in float32 throughout.

    Registered, so `.keras` files record it by class and reload it as itself.
    """

    def __init__(self, name=BFLOAT16_MATMUL):
        if name != BFLOAT16_MATMUL:
            raise ValueError(f"BFloat16MatmulPolicy is named {BFLOAT16_MATMUL!r}, got {name!r}.")
        super().__init__("float32")  # the compute and variable dtypes

    @property
    def name(self):
        return BFLOAT16_MATMUL

    def __repr__(self):
        return f'<BFloat16MatmulPolicy "{BFLOAT16_MATMUL}">'


def get_dtype_policy(dtype) -> keras.DTypePolicy:
    """`keras.dtype_policies.get` that also knows the name "bfloat16_matmul"."""
    if dtype == BFLOAT16_MATMUL:
        return BFloat16MatmulPolicy()
    return keras.dtype_policies.get(dtype)


class ReloadsDTypePolicy:
    """Layer mixin: `from_config` hands `__init__` the layer's dtype policy as a policy object.

    Keras' `Layer.from_config` passes a serialized policy to `__init__` by its name, and only the
    names of Keras' own policies resolve, so a layer saved under `BFloat16MatmulPolicy` would not
    reload. (`keras.Model.from_config` passes the serialized policy itself, which
    `Layer.__init__` deserializes by its registered class: models need no mixin.)
    """

    @classmethod
    def from_config(cls, config):
        if isinstance(config.get("dtype"), dict):
            config = dict(config, dtype=keras.dtype_policies.deserialize(config["dtype"]))
        return super().from_config(config)


def matmul_dtype(policy: keras.DTypePolicy) -> str:
    """The dtype matrix products compute in under `policy`: bfloat16 for bfloat16_matmul, the
    compute dtype for every other policy."""
    return "bfloat16" if isinstance(policy, BFloat16MatmulPolicy) else policy.compute_dtype


def matmul(a, b, policy: keras.DTypePolicy):
    """`a @ b` in `policy`'s matmul dtype, returned in its compute dtype (a no-op cast except
    under bfloat16_matmul)."""
    return ops.cast(matmul_product(a, b, policy), policy.compute_dtype)


def einsum(equation: str, a, b, policy: keras.DTypePolicy):
    """`ops.einsum(equation, a, b)` in `policy`'s matmul dtype, returned in its compute dtype."""
    return ops.cast(einsum_product(equation, a, b, policy), policy.compute_dtype)


def matmul_product(a, b, policy: keras.DTypePolicy):
    """`a @ b` in `policy`'s matmul dtype, left in that dtype: for a fused kernel
    (`electra_tf.layers.fused`) that reads the product and does the cast itself."""
    dtype = matmul_dtype(policy)
    return ops.matmul(ops.cast(a, dtype), ops.cast(b, dtype))


def einsum_product(equation: str, a, b, policy: keras.DTypePolicy):
    """`ops.einsum(equation, a, b)` in `policy`'s matmul dtype, left in that dtype."""
    dtype = matmul_dtype(policy)
    return ops.einsum(equation, ops.cast(a, dtype), ops.cast(b, dtype))


def _bias_and_activation(layer, x):
    """What Keras' Dense and EinsumDense do after their product: `+ bias`, then the activation
    (each when the layer has one), in the compute dtype."""
    if layer.bias is not None:
        x = ops.add(x, layer.bias)
    if layer.activation is not None:
        x = layer.activation(x)
    return x


@keras.saving.register_keras_serializable(package="electra_tf")
class MatmulDense(ReloadsDTypePolicy, keras.layers.Dense):
    """`keras.layers.Dense` whose matmul runs in the policy's matmul dtype (`matmul_dtype`); the
    bias and activation then run in the compute dtype. Under every policy but bfloat16_matmul it
    is Keras' Dense, op for op; same arguments, config and weights.

    Call args:
        inputs: float tensor `[..., input_dim]`.

    Returns:
        float tensor `[..., units]` in the compute dtype.
    """

    def call(self, inputs, training=None):
        return _bias_and_activation(self, matmul(inputs, self.kernel, self.dtype_policy))

    def product(self, inputs):
        """`inputs @ kernel` without bias or activation, in the matmul dtype (`matmul_product`),
        for a fused kernel that applies the bias itself."""
        return matmul_product(inputs, self.kernel, self.dtype_policy)


@keras.saving.register_keras_serializable(package="electra_tf")
class MatmulEinsumDense(ReloadsDTypePolicy, keras.layers.EinsumDense):
    """`keras.layers.EinsumDense` whose einsum runs in the policy's matmul dtype, like
    `MatmulDense`; same arguments, config and weights as Keras' layer.

    Call args:
        inputs: float tensor whose shape matches the left operand of `equation`.

    Returns:
        float tensor shaped by `equation` and `output_shape`, in the compute dtype.
    """

    def call(self, inputs, training=None):
        return _bias_and_activation(
            self, einsum(self.equation, inputs, self.kernel, self.dtype_policy))

    def product(self, inputs):
        """The einsum without bias or activation, in the matmul dtype (`einsum_product`)."""
        return einsum_product(self.equation, inputs, self.kernel, self.dtype_policy)
