"""One learner of benchmarks/investigations/context_learning.py: trains a replaced-token detector
on fixed, pre-corrupted batches and prints its ROC AUC curve as a RESULT line.

    python context_learner.py MODEL BATCHES.npz LEARNING_RATE [LOG_EVERY]

MODEL is `electra_tf` (the quickstart's discriminator, run from this checkout), `keras_hub`
(KerasHub's `ElectraBackbone` of the same shape with the same dense -> GELU -> dense(1) head;
run in the keras_hub venv) or `conv` (token embeddings -> two width-5 convolutions -> the same
head: a model that sees +-4 neighbours by construction). All three: Keras AdamW (weight decay
0.01, epsilon 1e-6, global-norm clipping 1.0), linear warm-up over 10% of the steps then linear
decay to 0, the loss averaged over real tokens, seed 0.
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["KERAS_BACKEND"] = "tensorflow"

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

HIDDEN, LAYERS, HEADS, INTERMEDIATE, EMBEDDING = 128, 2, 2, 512, 128  # the quickstart's


def roc_auc(labels, scores):
    """Exact ROC AUC (Mann-Whitney U over ranks; ties broken by order, negligible for floats)."""
    ranks = np.empty(len(scores))
    ranks[np.argsort(scores, kind="mergesort")] = np.arange(1, len(scores) + 1)
    positives = labels.sum()
    negatives = len(labels) - positives
    return float((ranks[labels > 0].sum() - positives * (positives + 1) / 2)
                 / (positives * negatives))


class DetectionHead(keras.layers.Layer):
    """dense(hidden) -> GELU -> dense(1): `[B, T, H]` states -> `[B, T]` logits."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(HIDDEN, activation="gelu")
        self.prediction = keras.layers.Dense(1)

    def call(self, states):
        return self.prediction(self.dense(states))[..., 0]


def build(model, vocab_size, example):
    """Returns `forward(inputs, training) -> [B, T] logits` and its trainable variables."""
    if model == "electra_tf":
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__)))))
        import electra_tf as et
        from electra_tf.quickstart import sample_pretraining_config

        config = sample_pretraining_config(100, [f"model.vocab_size={vocab_size}"])
        network = et.ElectraPretrainer(config.model, config.pretraining, seed=0).discriminator
        forward = network
    elif model == "keras_hub":
        import keras_hub

        backbone = keras_hub.models.ElectraBackbone(
            vocab_size=vocab_size, num_layers=LAYERS, num_heads=HEADS, hidden_dim=HIDDEN,
            embedding_dim=EMBEDDING, intermediate_dim=INTERMEDIATE, max_sequence_length=512)
        head = DetectionHead()
        network = [backbone, head]

        def forward(inputs, training=False):
            return head(backbone(inputs, training=training)["sequence_output"])
    elif model == "conv":
        layers = [keras.layers.Embedding(vocab_size, EMBEDDING),
                  keras.layers.Conv1D(HIDDEN, 5, padding="same", activation="gelu"),
                  keras.layers.Conv1D(HIDDEN, 5, padding="same", activation="gelu"),
                  DetectionHead()]
        network = layers

        def forward(inputs, training=False):
            x = inputs["token_ids"]
            for layer in layers:
                x = layer(x)
            return x
    else:
        raise SystemExit(f"unknown model {model!r}")
    forward(example)
    parts = network if isinstance(network, list) else [network]
    return forward, [v for part in parts for v in part.trainable_variables]


def main(model, path, learning_rate, log_every=200):
    data = np.load(path)
    steps = len(data["token_ids"])
    batch = lambda i: {k: data[k][i] for k in ("token_ids", "segment_ids", "padding_mask")}  # noqa
    keras.utils.set_random_seed(0)
    forward, variables = build(model, int(data["vocab_size"]), batch(0))
    warmup = max(1, steps // 10)
    decay = keras.optimizers.schedules.PolynomialDecay(learning_rate, steps, 0.0)

    class WarmupThenDecay(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            step = tf.cast(step, tf.float32)
            return tf.where(step < warmup, learning_rate * (step + 1) / warmup, decay(step))

    optimizer = keras.optimizers.AdamW(WarmupThenDecay(), weight_decay=0.01, epsilon=1e-6,
                                       clipnorm=1.0)

    @tf.function
    def step(inputs, labels):
        real = tf.cast(inputs["padding_mask"], tf.float32)
        with tf.GradientTape() as tape:
            logits = forward(inputs, training=True)
            loss = tf.reduce_sum(keras.ops.binary_crossentropy(
                labels, logits, from_logits=True) * real) / tf.reduce_sum(real)
        optimizer.apply(tape.gradient(loss, variables), variables)
        return tf.sigmoid(logits)

    curve, seen, began = [], [], time.time()
    for i in range(steps):
        probabilities = step(batch(i), data["labels"][i]).numpy()
        real = data["padding_mask"][i] > 0
        seen.append((data["labels"][i][real], probabilities[real]))
        if (i + 1) % log_every == 0 or i + 1 == steps:
            labels = np.concatenate([s[0] for s in seen])
            scores = np.concatenate([s[1] for s in seen])
            curve.append({"step": i + 1, "auc": round(roc_auc(labels, scores), 4),
                          "p05_p50_p95": np.percentile(scores, [5, 50, 95]).round(3).tolist()})
            seen = []
    print("RESULT " + json.dumps({"model": model, "learning_rate": learning_rate,
                                  "curve": curve, "seconds": round(time.time() - began, 1)}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]), *map(int, sys.argv[4:]))
