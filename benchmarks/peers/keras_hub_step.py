"""KerasHub (keras-hub 0.32, Keras 3): a hand-written ELECTRA step on two `ElectraBackbone`s --
the generator's MLM head (dense -> GELU -> LayerNorm -> tied output) at the 20 masked positions,
Gumbel-max sampling, the discriminator's dense -> GELU -> dense(1) head, disc_weight 50. KerasHub
ships the backbone only, so this is what a KerasHub user writes.

    python keras_hub_step.py STEPS WARMUP [float32|mixed_bfloat16]
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["KERAS_BACKEND"] = "tensorflow"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import keras_hub  # noqa: E402
import tensorflow as tf  # noqa: E402

from common import (BATCH, EMBEDDING, GEN_HEADS, GEN_HIDDEN, GEN_INTERMEDIATE, HEADS,  # noqa
                    HIDDEN, INTERMEDIATE, LAYERS, MASK, PREDICTIONS, VOCAB, report,
                    synthetic_batch, time_steps)


def main(steps, warmup, precision="float32"):
    keras.config.set_dtype_policy(precision)
    keras.utils.set_random_seed(0)

    def backbone(hidden, heads, intermediate):
        return keras_hub.models.ElectraBackbone(
            vocab_size=VOCAB, num_layers=LAYERS, num_heads=heads, hidden_dim=hidden,
            embedding_dim=EMBEDDING, intermediate_dim=intermediate, max_sequence_length=512)

    generator = backbone(GEN_HIDDEN, GEN_HEADS, GEN_INTERMEDIATE)
    discriminator = backbone(HIDDEN, HEADS, INTERMEDIATE)
    mlm_dense = keras.layers.Dense(EMBEDDING, activation="gelu")
    mlm_norm = keras.layers.LayerNormalization(epsilon=1e-12)
    mlm_bias = keras.Variable(keras.ops.zeros([VOCAB]), name="mlm_bias")
    disc_dense = keras.layers.Dense(HIDDEN, activation="gelu")
    disc_out = keras.layers.Dense(1)
    heads = [mlm_dense, mlm_norm, disc_dense, disc_out]
    for layer, shape in zip(heads, [(None, GEN_HIDDEN), (None, EMBEDDING), (None, HIDDEN),
                                    (None, HIDDEN)]):
        layer.build(shape)
    optimizer = keras.optimizers.AdamW(learning_rate=5e-4, weight_decay=0.01, epsilon=1e-6,
                                       global_clipnorm=1.0)
    variables = (generator.trainable_variables + discriminator.trainable_variables
                 + [mlm_bias] + [v for layer in heads for v in layer.trainable_variables])
    optimizer.build(variables)

    ids, positions = synthetic_batch()
    ids, positions = tf.constant(ids), tf.constant(positions)
    original = tf.gather(ids, positions, batch_dims=1)
    scatter_index = tf.stack([tf.repeat(tf.range(BATCH), PREDICTIONS),
                              tf.reshape(positions, [-1])], axis=1)
    masked = tf.tensor_scatter_nd_update(ids, scatter_index, tf.fill([BATCH * PREDICTIONS], MASK))
    padding, segments = tf.ones_like(ids), tf.zeros_like(ids)

    @tf.function
    def train_step():
        with tf.GradientTape() as tape:
            hidden = generator({"token_ids": masked, "segment_ids": segments,
                                "padding_mask": padding})["sequence_output"]
            hidden = mlm_norm(mlm_dense(tf.gather(hidden, positions, batch_dims=1)))
            table = generator.token_embedding.embeddings
            logits = tf.cast(tf.matmul(hidden, tf.cast(table, hidden.dtype), transpose_b=True),
                             tf.float32) + mlm_bias
            mlm = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
                original, logits, from_logits=True))
            gumbel = -tf.math.log(-tf.math.log(tf.random.uniform(tf.shape(logits)) + 1e-9)
                                  + 1e-9)
            sampled = tf.argmax(tf.stop_gradient(logits) + gumbel, -1, output_type=tf.int32)
            corrupted = tf.tensor_scatter_nd_update(ids, scatter_index,
                                                    tf.reshape(sampled, [-1]))
            labels = tf.cast(tf.not_equal(corrupted, ids), tf.float32)
            disc_hidden = discriminator({"token_ids": corrupted, "segment_ids": segments,
                                         "padding_mask": padding})["sequence_output"]
            disc_logits = tf.cast(tf.squeeze(disc_out(disc_dense(disc_hidden)), -1), tf.float32)
            disc = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels, disc_logits))
            loss = mlm + 50.0 * disc
        optimizer.apply(tape.gradient(loss, variables), variables)
        return loss

    losses = []
    times = time_steps(lambda: losses.append(train_step().numpy()), steps, warmup)
    report(f"KerasHub ElectraBackbone x2, hand-written step, {precision}", times, losses,
           library="keras-hub", tensorflow=tf.__version__, precision=precision, jit_compile=False)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), *sys.argv[3:])
