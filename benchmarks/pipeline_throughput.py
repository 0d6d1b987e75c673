"""Is the input pipeline fast enough never to starve training?

Measures, in one process on this machine:
  (a) the pretraining pipeline alone: corpus -> tokenize -> pack -> shuffle -> batch, in
      sequences/s (batches of 32 x 128 pulled as fast as it gives them);
  (b) how fast `electra_tiny` (the fastest config we ship) consumes sequences in `fit`, fed from
      memory so that only the model is timed;
and reports the ratio (target: >= 10x). Medians over several windows; windows of (a) and (b)
alternate so that load from other processes hits both alike.

    .venv/bin/python benchmarks/pipeline_throughput.py            # IMDB archive from ../shared
    .venv/bin/python benchmarks/pipeline_throughput.py \
        --corpus electra_tf/data/samples/imdb_unsup_400.txt

Writes benchmarks/results/pipeline_throughput.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from electra_tf import ElectraPretrainer, create_optimizer, load_config  # noqa: E402
from electra_tf.data import WordPieceTokenizer, open_corpus, pretraining_dataset  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
RESULTS = os.path.join(ROOT, "benchmarks", "results")


def pipeline_windows(dataset, batch_size, batches, windows):
    iterator = iter(dataset)
    for _ in range(20):  # warm-up: tracing, shuffle buffer fill
        next(iterator)
    for _ in range(windows):
        began = time.perf_counter()
        for _ in range(batches):
            next(iterator)
        yield batches * batch_size / (time.perf_counter() - began)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default_corpus = os.path.join(SHARED, "aclImdb_v1-text.tar.gz")
    if not os.path.exists(default_corpus):
        default_corpus = os.path.join(ROOT, "electra_tf", "data", "samples", "imdb_unsup_400.txt")
    parser.add_argument("--corpus", default=default_corpus)
    parser.add_argument("--vocab", default=os.path.join(SHARED, "bert-uncased-vocab.txt"))
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--pipeline-batches", type=int, default=60)
    parser.add_argument("--train-steps", type=int, default=10)
    args = parser.parse_args()

    config = load_config(os.path.join(ROOT, "configs", "electra_tiny.yaml"))
    batch, seq_len = config.optimizer.batch_size, config.pretraining.max_seq_length

    tokenizer = WordPieceTokenizer(args.vocab)
    dataset = pretraining_dataset(open_corpus(args.corpus), tokenizer, seq_len, batch, seed=0)
    pipeline_rates = pipeline_windows(dataset, batch, args.pipeline_batches, args.windows)

    keras.utils.set_random_seed(0)
    model = ElectraPretrainer(config.model, config.pretraining, seed=0)
    model.compile(optimizer=create_optimizer(config.optimizer))
    rng = np.random.default_rng(0)
    token_ids = rng.integers(5, config.model.vocab_size, (batch * 8, seq_len)).astype("int32")
    token_ids[:, 0] = config.pretraining.cls_id
    memory = tf.data.Dataset.from_tensor_slices({"token_ids": token_ids}).batch(batch).repeat()
    model.fit(memory, steps_per_epoch=5, epochs=1, verbose=0)  # warm-up: tracing

    pipeline, training = [], []
    for _ in range(args.windows):
        pipeline.append(next(pipeline_rates))
        began = time.perf_counter()
        model.fit(memory, steps_per_epoch=args.train_steps, epochs=1, verbose=0)
        training.append(args.train_steps * batch / (time.perf_counter() - began))
        print(f"pipeline {pipeline[-1]:8.0f} seq/s   training {training[-1]:6.1f} seq/s")

    result = {
        "pipeline_sequences_per_s_median": round(statistics.median(pipeline), 1),
        "training_sequences_per_s_median": round(statistics.median(training), 2),
        "ratio_median": round(statistics.median(pipeline) / statistics.median(training), 1),
        "pipeline_windows": [round(x, 1) for x in pipeline],
        "training_windows": [round(x, 2) for x in training],
        "target_ratio": 10,
        "config": "electra_tiny", "batch_size": batch, "max_seq_length": seq_len,
        "corpus": os.path.relpath(args.corpus, ROOT), "vocab": os.path.basename(args.vocab),
        "cpu_cores": os.cpu_count(), "machine": platform.machine(),
        "tensorflow": tf.__version__, "keras": keras.__version__,
        "command": "python benchmarks/pipeline_throughput.py",
        "date": time.strftime("%Y-%m-%d"),
    }
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "pipeline_throughput.json"), "w") as f:
        json.dump(result, f, indent=2)
    with open(os.path.join(RESULTS, "pipeline_throughput.md"), "w") as f:
        f.write(
            "# Input pipeline vs training rate (electra_tiny, batch 32 x 128)\n\n"
            f"`{result['command']}` on {result['cpu_cores']} CPU cores, TF {tf.__version__}, "
            f"{result['date']}. Medians of {args.windows} alternating windows.\n\n"
            "| | sequences/s |\n|---|---|\n"
            f"| pipeline alone ({result['corpus']}, {result['vocab']}) | "
            f"{result['pipeline_sequences_per_s_median']:,.0f} |\n"
            f"| electra_tiny training (`fit`, fed from memory) | "
            f"{result['training_sequences_per_s_median']:,.1f} |\n"
            f"| **ratio** (target >= 10) | **{result['ratio_median']:,.1f}x** |\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
