"""TF Model Garden (tf-models-official 2.20, Keras 2 / tf_keras): `ElectraPretrainer` on two
`BertEncoder`s, trained by a `tf.function` step with a GradientTape (Model Garden's ELECTRA
cannot be driven by `fit`; its trainer runs the same kind of step). Masked positions come from
the input, as in Model Garden's data pipeline.

    python model_garden_step.py STEPS WARMUP
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402
from official.nlp.modeling import models, networks  # noqa: E402

from common import (BATCH, EMBEDDING, GEN_HEADS, GEN_HIDDEN, GEN_INTERMEDIATE, HEADS,  # noqa
                    HIDDEN, INTERMEDIATE, LAYERS, MASK, PREDICTIONS, VOCAB, report,
                    synthetic_batch, time_steps)


def encoder(hidden, heads, intermediate):
    return networks.BertEncoder(
        vocab_size=VOCAB, hidden_size=hidden, num_layers=LAYERS, num_attention_heads=heads,
        intermediate_size=intermediate, max_sequence_length=512, type_vocab_size=2,
        embedding_width=EMBEDDING, activation="gelu", dict_outputs=True)


def main(steps, warmup):
    tf.random.set_seed(0)
    pretrainer = models.ElectraPretrainer(
        generator_network=encoder(GEN_HIDDEN, GEN_HEADS, GEN_INTERMEDIATE),
        discriminator_network=encoder(HIDDEN, HEADS, INTERMEDIATE),
        vocab_size=VOCAB, num_classes=2, num_token_predictions=PREDICTIONS,
        mlm_activation="gelu")
    optimizer = tf_keras.optimizers.experimental.AdamW(
        learning_rate=5e-4, weight_decay=0.01, epsilon=1e-6, global_clipnorm=1.0)
    ids, positions = synthetic_batch()
    original = tf.gather(ids, positions, batch_dims=1)
    masked = tf.tensor_scatter_nd_update(
        ids, tf.stack([tf.repeat(tf.range(BATCH), PREDICTIONS),
                       tf.reshape(positions, [-1])], axis=1),
        tf.fill([BATCH * PREDICTIONS], MASK))
    inputs = {"input_word_ids": masked, "input_mask": tf.ones_like(ids),
              "input_type_ids": tf.zeros_like(ids), "masked_lm_positions": positions,
              "masked_lm_ids": original}

    @tf.function
    def train_step():
        with tf.GradientTape() as tape:
            outputs = pretrainer(inputs, training=True)
            mlm = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(
                original, outputs["lm_outputs"], from_logits=True))
            disc = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
                tf.cast(outputs["disc_label"], tf.float32), outputs["disc_logits"]))
            loss = mlm + 50.0 * disc
        variables = pretrainer.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    losses = []
    times = time_steps(lambda: losses.append(train_step().numpy()), steps, warmup)
    report("Model Garden ElectraPretrainer (tf_keras), float32", times, losses,
           library="tf-models-official", tensorflow=tf.__version__, precision="float32",
           jit_compile=False)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
