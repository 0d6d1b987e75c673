"""How hard is replaced-token detection for a small discriminator? Train one *alone* against
fixed corruptions and record its ROC AUC.

    .venv/bin/python benchmarks/investigations/discriminator_alone.py [--steps 600] [--corpus SPEC]

The joint ELECTRA runs on IMDB show the discriminator's AUC peaking early and then sinking to
about 0.53 (results/imdb_tiny_pretraining.md). This separates "the discriminator
cannot learn" from "the joint training breaks it": the discriminator of the quickstart recipe
(`electra_tf.quickstart`, electra_tiny with 2 layers) is trained without a generator;
15% of the real tokens (the official positions) are replaced either by

- `uniform`: tokens drawn uniformly from the vocabulary (mostly rare pieces: easy to spot), or
- `unigram`: tokens drawn by their corpus frequency (what an early generator samples: frequent,
  plausible words),

with the same optimizer recipe at several learning rates. Writes
benchmarks/investigations/results/discriminator_alone.{json,md}.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import electra_tf as et  # noqa: E402
from electra_tf.data import SAMPLE_CORPUS, learn_vocabulary  # noqa: E402
from electra_tf.models.objective import mask_tokens, scatter_positions  # noqa: E402
from electra_tf.quickstart import sample_pretraining_config  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def unigram_log_probs(dataset, vocab_size, special_count, batches=50):
    """Log-frequencies `[1, V]` of the pieces in the first `batches` batches (specials excluded)."""
    counts = np.ones(vocab_size)
    for batch in dataset.take(batches):
        np.add.at(counts, batch["token_ids"].numpy()[batch["padding_mask"].numpy() > 0], 1)
    counts[:special_count] = 0.0
    with np.errstate(divide="ignore"):
        return tf.constant(np.log(counts / counts.sum())[None].astype("float32"))


def sample_stream(corpus_spec, batch_size, seed):
    """The quickstart's data: a 4,000-piece vocabulary learned from `corpus_spec` and its packed
    `[batch_size, 128]` pretraining stream. Returns (corpus, vocabulary, dataset, unigram
    log-probabilities `[1, V]`, the special ids as `pretraining.*` config overrides)."""
    corpus = et.open_corpus(corpus_spec)
    vocabulary = learn_vocabulary(itertools.islice(corpus.documents(), 20_000), 4000,
                                  learner="tensorflow-text")  # as measured
    tokenizer = et.WordPieceTokenizer(vocabulary)
    dataset = et.pretraining_dataset(corpus, tokenizer, 128, batch_size, seed=seed)
    log_probs = unigram_log_probs(dataset, len(vocabulary), 5)
    return corpus, vocabulary, dataset, log_probs, tokenizer.special_ids.as_pretraining_overrides()


def corrupt(batch, objective, replacement, vocab_size, log_probs, seed):
    """Replaces the official 15% of positions (`mask_tokens`'s choice) by `uniform` or `unigram`
    draws. Returns the corrupted ids and the labels (1.0 where the token changed), both
    `[batch, seq_len]`; a draw equal to the original counts as original, as in ELECTRA."""
    masked = mask_tokens(
        batch["token_ids"], batch["padding_mask"], num_predictions=objective.num_predictions,
        mask_prob=objective.mask_prob, mask_token_rate=objective.mask_token_rate,
        mask_id=objective.mask_id,
        special_ids=(objective.cls_id, objective.sep_id, objective.mask_id), seed=seed)
    shape = tf.shape(masked["masked_positions"])
    if replacement == "uniform":
        sampled = tf.random.uniform(shape, 5, vocab_size, dtype=tf.int32)
    else:
        sampled = tf.reshape(tf.random.categorical(
            tf.tile(log_probs, [shape[0] * shape[1], 1]), 1, dtype=tf.int32), shape)
    corrupted = scatter_positions(batch["token_ids"], masked["masked_positions"], sampled,
                                  masked["masked_lm_weights"] > 0)
    return corrupted, tf.cast(corrupted != batch["token_ids"], tf.float32)


def train_alone(config, dataset, replacement, log_probs, steps, seed, log_every):
    """Trains a fresh discriminator for `steps` batches; returns its AUC per `log_every` steps
    and the mean cosine similarity of its final token states (1.0 = all tokens alike)."""
    keras.utils.set_random_seed(seed)
    objective = config.pretraining
    discriminator = et.ElectraPretrainer(config.model, objective, seed=seed).discriminator
    optimizer = et.create_optimizer(config.optimizer)
    stream = keras.random.SeedGenerator(seed)
    vocab_size = config.model.vocab_size

    @tf.function
    def step(batch):
        corrupted, labels = corrupt(batch, objective, replacement, vocab_size, log_probs, stream)
        real = tf.cast(batch["padding_mask"], tf.float32)
        inputs = dict(batch, token_ids=corrupted)
        with tf.GradientTape() as tape:
            logits = discriminator(inputs, training=True)
            loss = tf.reduce_sum(keras.ops.binary_crossentropy(
                labels, logits, from_logits=True) * real) / tf.reduce_sum(real)
        gradients = tape.gradient(loss, discriminator.trainable_variables)
        optimizer.apply(gradients, discriminator.trainable_variables)
        return labels, tf.sigmoid(logits), real

    auc, curve = keras.metrics.AUC(num_thresholds=200), []
    for i, batch in enumerate(dataset.take(steps)):
        labels, probabilities, real = step(batch)
        auc.update_state(labels, probabilities, sample_weight=real)
        if (i + 1) % log_every == 0:
            curve.append({"step": i + 1, "auc": round(float(auc.result()), 4)})
            auc.reset_state()
    batch = next(iter(dataset))
    states = discriminator.encoder(batch, training=False).numpy()[batch["padding_mask"].numpy() > 0]
    unit = states / np.linalg.norm(states, axis=1, keepdims=True)
    similarity = float((unit @ unit.T)[np.triu_indices(len(unit), 1)].mean())
    return curve, similarity


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default=SAMPLE_CORPUS)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rates", type=float, nargs="+", default=[1e-4, 5e-4, 2e-3])
    parser.add_argument("--replacements", nargs="+", default=["uniform", "unigram"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="config override, e.g. model.initializer_range=0.1")
    parser.add_argument("--tag", default="", help="suffix of the results files")
    args = parser.parse_args()

    corpus, vocabulary, dataset, log_probs, ids = sample_stream(args.corpus, args.batch_size,
                                                                args.seed)
    runs = []
    for replacement, lr in itertools.product(args.replacements, args.learning_rates):
        config = sample_pretraining_config(args.steps, [
            f"model.vocab_size={len(vocabulary)}", f"optimizer.learning_rate={lr}",
            f"optimizer.train_steps={args.steps}",
            *(f"pretraining.{k}={v}" for k, v in ids.items()), *args.overrides])
        began = time.time()
        curve, similarity = train_alone(config, dataset, replacement, log_probs, args.steps,
                                        args.seed, log_every=max(1, args.steps // 6))
        runs.append({"replacement": replacement, "learning_rate": lr, "curve": curve,
                     "final_auc": curve[-1]["auc"], "state_cosine_similarity": round(similarity, 3),
                     "seconds": round(time.time() - began, 1)})
        print(json.dumps(runs[-1]), flush=True)

    command = " ".join(["python benchmarks/investigations/discriminator_alone.py",
                        f"--steps {args.steps}",
                        *([f"--corpus {args.corpus}"] if args.corpus != SAMPLE_CORPUS else []),
                        *(f"--set {o}" for o in args.overrides),
                        *([f"--tag {args.tag}"] if args.tag else []),
                        *(["--learning-rates", *map(str, args.learning_rates)]
                          if args.learning_rates != [1e-4, 5e-4, 2e-3] else []),
                        *(["--replacements", *args.replacements]
                          if args.replacements != ["uniform", "unigram"] else [])])
    name = "discriminator_alone" + (f"_{args.tag}" if args.tag else "")
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, f"{name}.json"), "w") as f:
        json.dump({"command": command, "corpus": repr(corpus), "vocab_size": len(vocabulary),
                   "overrides": args.overrides,
                   "batch_size": args.batch_size, "steps": args.steps, "runs": runs}, f, indent=2)
    lines = [
        "# A discriminator trained alone against fixed replacements", "",
        f"`{command}` on 2 CPU cores: the quickstart recipe's discriminator (electra_tiny, 2 "
        f"layers, hidden 128{', ' + ', '.join(args.overrides) if args.overrides else ''}), "
        f"no generator; {corpus!r}, vocabulary {len(vocabulary)}, batch "
        f"{args.batch_size} x 128, {args.steps} steps; 15% of real tokens replaced. AUC = ROC AUC "
        "of replaced vs original tokens over the last interval (0.5 = chance); state similarity = "
        "mean cosine similarity of the final token states (1.0 = every token looks the same).", "",
        "| replacements | learning rate | " + " | ".join(
            f"AUC @ {p['step']}" for p in runs[0]["curve"]) + " | state similarity |",
        "|---|---|" + "---|" * len(runs[0]["curve"]) + "---|"]
    for run in runs:
        lines.append(f"| {run['replacement']} | {run['learning_rate']:g} | " + " | ".join(
            f"{p['auc']:.3f}" for p in run["curve"]) + f" | {run['state_cosine_similarity']:.2f} |")
    with open(os.path.join(RESULTS, f"{name}.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
