"""AdamW as ELECTRA uses it."""

from __future__ import annotations

import keras
import tensorflow as tf

from electra_tf.compat import AdamSlots, GradientsSummedBeforeApply, PerVariableWeightDecay
from electra_tf.config import OptimizerConfig
from electra_tf.distribute.replicas import gradients_are_summed, sum_over_replicas
from electra_tf.training.schedules import WarmupLinearDecay

# LayerNormalization's scale/offset are `gamma`/`beta`; every Dense/EinsumDense/MLM-head bias is
# `bias`. Keras searches these patterns in `variable.name`, which on the TensorFlow backend is the
# tf.Variable's full name ("encoder/.../layer_norm/gamma:0"), not Keras's short name ("gamma"),
# so the patterns anchor on the last path component and allow the ":0" suffix.
NO_DECAY_NAME_PATTERNS = tuple(rf"(^|/){name}(:\d+)?$" for name in ("gamma", "beta", "bias"))

# Variable dtypes that take TensorFlow's fused Adam kernel (`ResourceApplyAdam`). It forms
# `1 - beta` in the variable's dtype: fine in float32, far off in 16 bits (float16's
# 1 - 0.999 is 0.000977; bfloat16 rounds 0.999 to 1.0), so 16-bit variables keep Keras' update.
_FUSED_ADAM_DTYPES = (tf.float32, tf.float64)


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraAdamW(GradientsSummedBeforeApply, PerVariableWeightDecay, AdamSlots,
                   keras.optimizers.AdamW):
    """`keras.optimizers.AdamW` with two corrections the authors' optimizer has and Keras lacks,
    and one fused update instead of ~20 graph ops per variable.

    1. Sparse (`tf.IndexedSlices`) gradients are made dense first. An embedding lookup's gradient
       has one row per *occurrence* of a token, so a token seen k times in a batch appears k
       times. Keras 3's Adam (TensorFlow backend) updates its moments with `scatter_add` over
       those rows: the first moment gets the sum of the k gradients (correct) but the second
       moment gets the sum of their *squares* instead of the square of their sum, and global-norm
       clipping measures the rows separately too. Frequent tokens ("the", [CLS], [SEP]) then take
       steps up to sqrt(k) times too large (measured in tests/test_finetune.py). The authors'
       TF1 optimizer densifies, as `tf.convert_to_tensor` does here.
    2. Under a `tf.distribute` strategy the gradients are summed over the replicas *before*
       global-norm clipping. Keras clips each replica's partial gradient and sums afterwards, so
       with 2 replicas a step differed from the same step on one device; here it does not
       (tests/test_distribute.py); Keras' own sum is turned off (`GradientsSummedBeforeApply`).

    Each variable's step is TensorFlow's fused Adam kernel (`ResourceApplyAdam`, the same
    arithmetic as Keras' Adam in the same order) after the decoupled weight decay, as Keras
    orders them. Keras builds it from ~20 separate ops per variable (and the weight decay from
    more, re-evaluating the learning-rate schedule for every variable): for a tiny pretrainer's
    80 variables that was 6.6 CPU-seconds of tracing before the first step and ~4,000 ops run
    per step, each a pass over the variable's memory. AMSGrad, and 16-bit variables (see
    `_FUSED_ADAM_DTYPES`), take Keras' own update. The one difference from Keras' arithmetic:
    the kernel forms `1 - beta` in the variable's dtype (float32: 1 - 0.999 = 0.00099998713,
    not 0.001), as TensorFlow's and the authors' TF1 Adam did; with betas that are exact float32
    numbers the two agree to rounding (tests/test_training.py).

    The name patterns given to `exclude_from_weight_decay` are part of the config (Keras leaves
    them out): an optimizer rebuilt by `from_config`, or loaded with a compiled `.keras` model,
    skips LayerNorm and bias variables as the original did instead of decaying them.
    """

    def __init__(self, *args, weight_decay_exclusions=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.weight_decay_exclusions = []
        if weight_decay_exclusions:
            self.exclude_from_weight_decay(var_names=list(weight_decay_exclusions))

    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        super().exclude_from_weight_decay(var_list=var_list, var_names=var_names)
        self.weight_decay_exclusions = list(var_names or [])

    def get_config(self):
        config = super().get_config()
        config["weight_decay_exclusions"] = list(self.weight_decay_exclusions)
        return config

    def apply(self, grads, trainable_variables=None):
        grads = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g
                 for g in grads]
        if not gradients_are_summed():  # else the train_step has (`gradients_already_summed`)
            grads = sum_over_replicas(grads)
        self._step_scalars = {}  # this step's, per dtype: built once, shared by all variables
        return super().apply(grads, trainable_variables)

    def _scalars(self, dtype) -> dict:
        """The step's hyperparameter scalars in `dtype`, built on first use in this `apply`."""
        scalars = getattr(self, "_step_scalars", {})
        if dtype not in scalars:
            step = tf.cast(self.iterations + 1, dtype)
            beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
            scalars[dtype] = dict(
                beta1=beta_1, beta2=beta_2, epsilon=tf.cast(self.epsilon, dtype),
                beta1_power=tf.pow(beta_1, step), beta2_power=tf.pow(beta_2, step),
                weight_decay=tf.cast(self.weight_decay or 0.0, dtype))
        return scalars[dtype]

    @tf.autograph.experimental.do_not_convert  # plain ops, no control flow: skip autograph
    def update_step(self, gradient, variable, learning_rate):
        """One variable's step: decoupled weight decay (`variable -= variable * wd * lr`,
        skipped for the excluded names), then Adam. Keras' own weight-decay pass over all
        variables is turned off (`PerVariableWeightDecay`)."""
        dtype = variable.dtype
        rate = tf.cast(learning_rate, dtype)
        scalars = self._scalars(dtype)
        if self.weight_decay is not None and self.decays(variable):
            variable.assign_sub(variable * scalars["weight_decay"] * rate)
        if self.amsgrad or dtype not in _FUSED_ADAM_DTYPES:
            return super().update_step(gradient, variable, learning_rate)
        momentum, velocity = self.adam_slots(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=momentum.handle, v=velocity.handle,
            beta1_power=scalars["beta1_power"], beta2_power=scalars["beta2_power"], lr=rate,
            beta1=scalars["beta1"], beta2=scalars["beta2"], epsilon=scalars["epsilon"],
            grad=tf.cast(gradient, dtype), use_locking=False)


def create_optimizer(config: OptimizerConfig | None = None, **overrides) -> keras.optimizers.AdamW:
    """Builds AdamW with the warm-up/linear-decay schedule, global-norm clipping and decoupled
    weight decay that skips LayerNorm and bias variables (the authors' `exclude_from_weight_decay`).

    Args:
        config: an `OptimizerConfig`; keyword overrides replace its fields
            (e.g. `create_optimizer(cfg, train_steps=500)`).

    Returns:
        an `ElectraAdamW` (a `keras.optimizers.AdamW`) ready for `model.compile(optimizer=...)`.
    """
    config = config or OptimizerConfig()
    if overrides:
        config = OptimizerConfig(**{**config.__dict__, **overrides})
    config.validate()
    schedule = WarmupLinearDecay(config.learning_rate, config.warmup_steps, config.train_steps)
    optimizer = ElectraAdamW(
        learning_rate=schedule,
        weight_decay=config.weight_decay,
        beta_1=config.beta_1,
        beta_2=config.beta_2,
        epsilon=config.epsilon,
        global_clipnorm=config.clipnorm if config.clipnorm > 0 else None,
    )
    optimizer.exclude_from_weight_decay(var_names=list(NO_DECAY_NAME_PATTERNS))
    return optimizer


def layerwise_lr_multipliers(model, decay: float) -> dict[str, float]:
    """Learning-rate multipliers of ELECTRA's layer-wise decay, keyed by `variable.path`.

    With `n` Transformer layers and decay `d` (the paper's definition):

        task head (everything outside the encoder)    1
        top Transformer layer (index n - 1)           d
        layer i (0-based)                             d ** (n - i)
        embeddings (+ the E->H projection)            d ** (n + 1)

    The authors' `_get_layer_lrs` multiplies everything below the head by one extra factor of `d`
    (a leftover of a removed pooler layer, they confirmed); this function does not.

    Args:
        model: a model with an `encoder` attribute holding an `ElectraEncoder`
            (e.g. `SequenceClassifier`), built.
        decay: `d` in (0, 1]; 1 disables the decay.

    Returns:
        {variable.path: multiplier} for every trainable variable of `model`.
    """
    if not 0.0 < decay <= 1.0:
        raise ValueError(f"Layer-wise learning-rate decay must be in (0, 1], got {decay}.")
    encoder = model.encoder
    n = len(encoder.transformer_layers)
    multipliers = {v.path: 1.0 for v in model.trainable_variables}
    bottom = [encoder.embeddings] + ([encoder.embedding_projection]
                                     if encoder.embedding_projection is not None else [])
    for layer in bottom:
        for v in layer.trainable_variables:
            multipliers[v.path] = decay ** (n + 1)
    for i, layer in enumerate(encoder.transformer_layers):
        for v in layer.trainable_variables:
            multipliers[v.path] = decay ** (n - i)
    return multipliers


@keras.saving.register_keras_serializable(package="electra_tf")
class LayerwiseAdamW(ElectraAdamW):
    """AdamW whose learning rate is scaled per variable (ELECTRA's layer-wise LR decay).

    Scaling gradients would not do it: Adam's update is invariant to the gradient's scale. The
    rate itself is scaled in `update_step`, for the decoupled weight decay too (`ElectraAdamW`
    applies it per variable with the rate it is given), as in the authors' optimizer where
    `lr * (adam_update + weight_decay * w)` uses the layer's rate for both terms.

    Args:
        lr_multipliers: {variable.path: multiplier}, e.g. from `layerwise_lr_multipliers`;
            variables not listed get 1.
        frozen_variables, frozen_steps: the variables (by `variable.path`) that keep their
            values for the first `frozen_steps` steps: their rate is 0 until then (LP-FT,
            Kumar et al. 2022: the head learns on the pretrained features before fine-tuning
            can distort them). Their Adam moments still accumulate, so they start moving with
            warmed-up moments rather than from Adam's first, largest steps.
        **kwargs: `keras.optimizers.AdamW` arguments.
    """

    def __init__(self, lr_multipliers=None, frozen_variables=(), frozen_steps: int = 0,
                 **kwargs):
        super().__init__(**kwargs)
        self.lr_multipliers = dict(lr_multipliers or {})
        self.frozen_variables = sorted(frozen_variables)
        self.frozen_steps = int(frozen_steps)
        self._lr_scales = []
        self._frozen = []

    def build(self, var_list):
        super().build(var_list)
        # Index-aligned with the optimizer's own slot lists, so `update_step` can look a
        # variable's scale up the same way Adam looks up its moments.
        self._lr_scales = [float(self.lr_multipliers.get(v.path, 1.0)) for v in var_list]
        frozen = set(self.frozen_variables) if self.frozen_steps > 0 else set()
        self._frozen = [v.path in frozen for v in var_list]

    def lr_multiplier(self, variable) -> float:
        return self._lr_scales[self.variable_index(variable)]

    def update_step(self, gradient, variable, learning_rate):
        rate = learning_rate * self.lr_multiplier(variable)
        if self._frozen[self.variable_index(variable)]:
            rate = tf.where(self.iterations >= self.frozen_steps, rate, tf.zeros_like(rate))
        super().update_step(gradient, variable, rate)

    def get_config(self):
        config = super().get_config()
        config.update(lr_multipliers=dict(self.lr_multipliers),
                      frozen_variables=list(self.frozen_variables),
                      frozen_steps=self.frozen_steps)
        return config


def create_finetuning_optimizer(model, learning_rate: float, train_steps: int, *,
                                warmup_fraction: float = 0.1, layerwise_decay: float = 0.8,
                                weight_decay: float = 0.01, epsilon: float = 1e-6,
                                clipnorm: float = 1.0,
                                frozen_encoder_steps: int = 0) -> LayerwiseAdamW:
    """ELECTRA's fine-tuning optimiser for `model` (built): AdamW, `warmup_fraction` of
    `train_steps` of linear warm-up then linear decay to 0, layer-wise LR decay, global-norm
    clipping, no weight decay on LayerNorm and bias variables; the encoder (`model.encoder`)
    frozen for the first `frozen_encoder_steps` steps (LP-FT; 0: never)."""
    schedule = WarmupLinearDecay(learning_rate, int(round(warmup_fraction * train_steps)),
                                 max(1, train_steps))
    optimizer = LayerwiseAdamW(
        lr_multipliers=layerwise_lr_multipliers(model, layerwise_decay),
        # Listed only when freezing, so an ordinary optimizer's config does not carry every path.
        frozen_variables=([v.path for v in model.encoder.trainable_variables]
                          if frozen_encoder_steps > 0 else ()),
        frozen_steps=frozen_encoder_steps,
        learning_rate=schedule, weight_decay=weight_decay, epsilon=epsilon,
        global_clipnorm=clipnorm if clipnorm > 0 else None)
    optimizer.exclude_from_weight_decay(var_names=list(NO_DECAY_NAME_PATTERNS))
    return optimizer
