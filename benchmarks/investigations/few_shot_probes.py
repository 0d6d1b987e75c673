"""What do the ELECTRA preset's frozen states know about sentiment, with 400 labelled reviews?
Two probes that need no fine-tuning, for the encoders of discriminator_transfer.py:

    .venv/bin/pip install -e ".[benchmark]"      # scikit-learn, for the linear probes
    .venv/bin/python benchmarks/investigations/few_shot_probes.py [--rows NAME ...]

- **Prompted detection, zero-shot** (Xia et al. 2022, "Prompting ELECTRA", arXiv 2205.15223):
  append a template with a label word to the review ("... it was great ." / "... it was
  terrible .") and ask the discriminator's own replaced-token head which word looks original; the
  review is called positive when the positive word's "replaced" logit is lower. A discriminator
  that had linked sentiment words to their context would score above 0.5 without any training.
- **Linear probes per layer**: the mean over real tokens of each layer's states (the embeddings,
  then each block; `ElectraEncoder.hidden_states`), 128 pieces as the quickstart fine-tunes,
  standardised -> logistic regression fitted on the 400 shipped labelled reviews (C chosen by
  5-fold cross-validation on those 400) -> accuracy on the first 1,000 reviews of the IMDB
  validation split, which discriminator_transfer.py scores on. The test split is never read.

Rows: the random initialisation of the preset's architecture (the floor), the preset, and
checkpoints of the long run of the preset's recipe (discriminator_transfer.py's RUNS), when they
exist. Writes benchmarks/investigations/results/few_shot_probes.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
BENCHMARKS = os.path.dirname(HERE)
ROOT = os.path.dirname(BENCHMARKS)
sys.path.insert(0, ROOT)
sys.path.insert(0, BENCHMARKS)
sys.path.insert(0, HERE)
RESULTS = os.path.join(HERE, "results")

import numpy as np  # noqa: E402

MAX_PIECES = 128
VALIDATION_REVIEWS = 1000
LONG_RUN = "runs/preset_long/pretrain_electra"
# (name, what it is, source: "random", a preset name or a run; checkpoint step or None)
ROWS = (
    ("random", "random initialisation of the preset's architecture", "random", None),
    ("preset", "ELECTRA: the shipped preset (8,000 of 8,000 steps)", "electra_cpu_imdb", None),
    *((f"long_{step}", f"ELECTRA, the preset's recipe: step {step:,} of a 24,000-step schedule",
       LONG_RUN, step) for step in (4000, 8000, 12000, 16000)),
    ("long_24000", "ELECTRA, the preset's recipe: finished (24,000 steps, 3x the preset)",
     LONG_RUN, None),
)
# Templates appended to the review; None marks the label word.
TEMPLATES = (("it", "was", None, "."), ("this", "movie", "is", None, "."))
LABEL_WORDS = (("terrible", "great"), ("bad", "good"), ("awful", "excellent"))


def load_rows(names, work_dir: str, vocab_size: int):
    """Yields (name, what, discriminator or None, encoder) for the rows that exist yet."""
    from discriminator_transfer import encoder_folder
    from encoder_proxies import random_encoder

    from electra_tf.pretrained.presets import preset_path
    from electra_tf.runs.keras_files import load_keras_model
    from electra_tf.runs.layouts import PretrainPaths

    preset = preset_path("electra_cpu_imdb")
    for name, what, source, step in ROWS:
        if name not in names:
            continue
        if source == "random":
            yield name, what, None, random_encoder(os.path.join(preset, "config.yaml"),
                                                   vocab_size)
            continue
        folder = encoder_folder(work_dir, name, source, step)
        if folder is None:
            print(f"skipped {name}: {source} has not got there yet", flush=True)
            continue
        discriminator = load_keras_model(PretrainPaths(folder).discriminator)
        yield name, what, discriminator, discriminator.encoder


def padded(sequences, pad_id: int = 0) -> dict:
    """Encoder inputs `[batch, MAX_PIECES]` from lists of ids."""
    ids = np.full((len(sequences), MAX_PIECES), pad_id, dtype="int32")
    for row, sequence in enumerate(sequences):
        ids[row, :len(sequence)] = sequence
    return {"token_ids": ids, "segment_ids": np.zeros_like(ids),
            "padding_mask": (ids != pad_id).astype("int32")}


def prompted_scores(discriminator, pieces, template, word_id, special) -> np.ndarray:
    """`[reviews]` replaced-token logits of the label word in "[CLS] review template [SEP]"
    (the review cut to fit MAX_PIECES)."""
    template_ids = [word_id if piece is None else piece for piece in template]
    offset = template.index(None)
    sequences, positions = [], []
    for review in pieces:
        body = review[:MAX_PIECES - 2 - len(template_ids)]
        sequences.append([special.cls, *body, *template_ids, special.sep])
        positions.append(1 + len(body) + offset)
    logits = []
    for start in range(0, len(sequences), 100):
        batch = padded(sequences[start:start + 100])
        out = np.asarray(discriminator(batch, training=False), dtype="float64")
        logits.append(out[np.arange(len(out)), positions[start:start + 100]])
    return np.concatenate(logits)


def zero_shot(discriminator, pieces, labels, vocabulary, special) -> list[dict]:
    """Accuracy of every template x label-word pair: positive when the positive word looks
    more original (lower "replaced" logit)."""
    index = {piece: i for i, piece in enumerate(vocabulary)}
    results = []
    for template in TEMPLATES:
        template_ids = tuple(None if piece is None else index[piece] for piece in template)
        for negative, positive in LABEL_WORDS:
            neg = prompted_scores(discriminator, pieces, template_ids, index[negative], special)
            pos = prompted_scores(discriminator, pieces, template_ids, index[positive], special)
            results.append({"template": " ".join(piece or "_" for piece in template),
                            "words": [negative, positive],
                            "accuracy": float(np.mean((pos < neg) == labels))})
    return results


def layer_features(encoder, pieces, special) -> np.ndarray:
    """`[num_layers + 1, reviews, hidden]`: each layer's mean over real tokens."""
    import tensorflow as tf

    @tf.function(reduce_retracing=True, autograph=False)
    def pooled(inputs):
        mask = tf.cast(inputs["padding_mask"], tf.float32)[..., None]
        return tf.stack([tf.reduce_sum(tf.cast(state, tf.float32) * mask, 1)
                         / tf.reduce_sum(mask, 1)
                         for state in encoder.hidden_states(inputs, training=False)])

    sequences = [[special.cls, *review[:MAX_PIECES - 2], special.sep] for review in pieces]
    return np.concatenate([pooled(padded(sequences[start:start + 100])).numpy()
                           for start in range(0, len(sequences), 100)], axis=1)


def linear_probes(encoder, train_pieces, train_labels, val_pieces, val_labels, special):
    """Validation accuracy of a logistic regression on each layer's pooled states."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train = layer_features(encoder, train_pieces, special)
    validation = layer_features(encoder, val_pieces, special)
    accuracies = []
    for layer in range(train.shape[0]):
        probe = make_pipeline(StandardScaler(), LogisticRegressionCV(
            Cs=[0.001, 0.01, 0.1, 1.0, 10.0], cv=5, scoring="accuracy", max_iter=5000))
        with warnings.catch_warnings():  # scikit-learn's notices about its future defaults
            warnings.simplefilter("ignore", FutureWarning)
            probe.fit(train[layer], train_labels)
        accuracies.append(float(probe.score(validation[layer], val_labels)))
    return accuracies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", default=os.path.join(ROOT, "runs", "discriminator_transfer"),
                        help="where checkpoints are exported (shared with discriminator_transfer)")
    parser.add_argument("--corpus", default=os.path.join(os.path.dirname(ROOT), "shared", "data",
                                                         "aclImdb_v1-text.tar.gz"))
    parser.add_argument("--rows", nargs="+", default=[row[0] for row in ROWS])
    args = parser.parse_args()

    import tensorflow as tf
    from host_info import host_summary

    from electra_tf.data.classification import load_labelled_texts, stratified_split
    from electra_tf.data.samples import SAMPLE_LABELLED
    from electra_tf.data.tokenizer import WordPieceTokenizer
    from electra_tf.pretrained.presets import preset_path

    # Every row shares the preset's vocabulary (the long run was started with --vocab).
    tokenizer = WordPieceTokenizer(os.path.join(preset_path("electra_cpu_imdb"), "vocab.txt"))
    special = tokenizer.special_ids
    train = load_labelled_texts("csv", SAMPLE_LABELLED, "train")
    validation = stratified_split(load_labelled_texts("imdb", args.corpus, "train"), 0.1, 0)[1]
    validation = validation.subset(range(VALIDATION_REVIEWS))
    pieces = lambda data: tokenizer(tf.constant(list(data.texts))).to_list()  # noqa: E731
    train_pieces, val_pieces = pieces(train), pieces(validation)
    train_labels, val_labels = np.array(train.labels), np.array(validation.labels)

    rows = []
    for name, what, discriminator, encoder in load_rows(args.rows, args.work_dir,
                                                         tokenizer.vocabulary_size):
        row = {"name": name, "encoder": what,
               "linear_probe": linear_probes(encoder, train_pieces, train_labels, val_pieces,
                                             val_labels, special),
               "zero_shot": (None if discriminator is None else
                             zero_shot(discriminator, val_pieces, val_labels,
                                       tokenizer.vocabulary, special))}
        rows.append(row)
        print(json.dumps(row), flush=True)
    host = host_summary()
    result = {"command": "python benchmarks/investigations/few_shot_probes.py",
              "train_examples": len(train_labels), "validation_examples": len(val_labels),
              "max_pieces": MAX_PIECES, "rows": rows, "host": host}
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "few_shot_probes.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    with open(os.path.join(RESULTS, "few_shot_probes.md"), "w", encoding="utf-8") as f:
        f.write(markdown(result))
    print(markdown(result))
    return 0


def markdown(result) -> str:
    host = result["host"]
    layers = len(result["rows"][0]["linear_probe"]) if result["rows"] else 0
    lines = ["# What the frozen encoders know about sentiment (400 labelled reviews)", "",
             f"`{result['command']}` on {host['cpu_cores']} CPU cores ({host['cpu_model']}, "
             f"{'/'.join(host['cpu_flags'])}). Reviews cut to {result['max_pieces']} pieces; "
             f"probes fitted on the {result['train_examples']} shipped labelled reviews and "
             f"scored on {result['validation_examples']} IMDB validation reviews (chance 0.5).",
             "", "## Linear probes on each layer's mean state", "",
             "| encoder | " + " | ".join(["embeddings"] + [f"block {i + 1}"
                                           for i in range(layers - 1)]) + " |",
             "|---|" + "---|" * layers]
    for row in result["rows"]:
        lines.append(f"| {row['encoder']} | "
                     + " | ".join(f"{a:.3f}" for a in row["linear_probe"]) + " |")
    prompted = [row for row in result["rows"] if row["zero_shot"]]
    if prompted:
        pairs = [f"{p['template']} ({'/'.join(p['words'])})" for p in prompted[0]["zero_shot"]]
        lines += ["", "## Prompted replaced-token detection, zero-shot", "",
                  "| encoder | " + " | ".join(pairs) + " |", "|---|" + "---|" * len(pairs)]
        for row in prompted:
            lines.append(f"| {row['encoder']} | "
                         + " | ".join(f"{p['accuracy']:.3f}" for p in row["zero_shot"]) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
