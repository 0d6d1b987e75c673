"""Exported-model throughput: our SavedModel (raw text in) vs HuggingFace transformers (PyTorch).

Both sides hold the *same weights* of an `electra_small`-sized classifier (random init, BERT-uncased
vocabulary; ours is converted to HuggingFace format with `save_huggingface`) and classify the same
IMDB test reviews, batch 32, truncated to 256 tokens, tokenization included on both sides:

  ours:  tf.saved_model.load(export)  ->  signatures["serving_default"](text=<32 raw strings>)
  HF:    ElectraTokenizerFast(32 strings, max_length=256) -> ElectraModel -> [CLS] -> Linear

HF's `ElectraForSequenceClassification` head is dense -> GELU -> dense, not the paper's single
dense layer that we use, so the HF side runs `ElectraModel` and applies our head's weights to
[CLS] with `torch.nn.functional.linear` (a negligible cost). Batches alternate between the two
sides; medians over the timed batches. Predictions are compared.

    .venv/bin/python benchmarks/export_throughput.py [--batches 8]

Writes benchmarks/results/export_throughput.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
RESULTS = os.path.join(ROOT, "benchmarks", "results")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=os.path.join(SHARED, "aclImdb_v1-text.tar.gz"))
    parser.add_argument("--vocab", default=os.path.join(SHARED, "bert-uncased-vocab.txt"))
    parser.add_argument("--batches", type=int, default=8, help="timed batches per side")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-seq-length", type=int, default=256)
    parser.add_argument("--precision", default="float32",
                        choices=("float32", "mixed_bfloat16", "mixed_float16"),
                        help="compute precision of our SavedModel (HF stays float32); results go "
                             "to export_throughput_<precision>.* unless float32")
    args = parser.parse_args()

    import keras
    import torch
    import transformers

    from electra_tf import load_config
    from electra_tf.convert import save_huggingface
    from electra_tf.data.classification import load_labelled_texts
    from electra_tf.data.preprocessor import ClassificationPreprocessor
    from electra_tf.data.tokenizer import WordPieceTokenizer
    from electra_tf.data.vocab import load_vocabulary
    from electra_tf.export.saved_model import export_classifier
    from electra_tf.models.classifier import SequenceClassifier
    from electra_tf.models.discriminator import Discriminator

    torch.set_num_threads(os.cpu_count() or 2)
    keras.utils.set_random_seed(0)
    config = load_config(os.path.join(ROOT, "configs", "electra_small.yaml"))
    classifier = SequenceClassifier.from_scratch(config.model, 2, ["neg", "pos"])
    classifier({"token_ids": np.array([[101, 2000, 102]], np.int32)})
    work = tempfile.mkdtemp(prefix="export_throughput_")
    vocabulary = load_vocabulary(args.vocab)
    preprocessor = ClassificationPreprocessor(WordPieceTokenizer(vocabulary), args.max_seq_length,
                                              truncation="head")
    export_dir = export_classifier(classifier, preprocessor, args.vocab,
                                   os.path.join(work, "export"), precision=args.precision)
    # Same encoder weights on the HF side (the RTD head is unused there).
    discriminator = Discriminator(classifier.encoder)
    discriminator({"token_ids": np.array([[101, 102]], np.int32)})
    save_huggingface(discriminator, os.path.join(work, "hf"), args.vocab)
    hf_encoder = transformers.ElectraModel.from_pretrained(os.path.join(work, "hf")).eval()
    hf_tokenizer = transformers.ElectraTokenizerFast(os.path.join(work, "hf", "vocab.txt"),
                                                     do_lower_case=True)
    head_w = torch.tensor(classifier.classifier_head.kernel.numpy().T)
    head_b = torch.tensor(classifier.classifier_head.bias.numpy())

    served = tf.saved_model.load(export_dir).signatures["serving_default"]

    def ours(texts):
        return served(text=tf.constant(texts))["probabilities"].numpy()

    def theirs(texts):
        with torch.no_grad():
            enc = hf_tokenizer(texts, truncation=True, max_length=args.max_seq_length,
                               padding=True, return_tensors="pt")
            hidden = hf_encoder(**enc).last_hidden_state[:, 0]
            return torch.softmax(torch.nn.functional.linear(hidden, head_w, head_b), -1).numpy()

    test = load_labelled_texts("imdb", args.data, "test")
    lengths = preprocessor.tokenizer(tf.constant(test.texts[:4000])).row_lengths().numpy()
    long_reviews = [t for t, n in zip(test.texts[:4000], lengths) if n >= args.max_seq_length]
    needed = args.batch_size * (args.batches + 1)
    if len(long_reviews) < needed:
        sys.exit(f"only {len(long_reviews)} reviews of >= {args.max_seq_length} pieces")
    batches = [long_reviews[i * args.batch_size:(i + 1) * args.batch_size]
               for i in range(args.batches + 1)]
    ours(batches[0]), theirs(batches[0])  # warm-up (graph tracing, allocations)
    times = {"ours": [], "hf": []}
    max_diff, agree, total = 0.0, 0, 0
    for batch in batches[1:]:
        start = time.perf_counter()
        p_ours = ours(batch)
        times["ours"].append(time.perf_counter() - start)
        start = time.perf_counter()
        p_hf = theirs(batch)
        times["hf"].append(time.perf_counter() - start)
        max_diff = max(max_diff, float(np.abs(p_ours - p_hf).max()))
        agree += int((p_ours.argmax(-1) == p_hf.argmax(-1)).sum())
        total += len(batch)
    rate = {k: args.batch_size / statistics.median(v) for k, v in times.items()}
    result = {
        "command": "python benchmarks/export_throughput.py --batches " + str(args.batches)
                   + ("" if args.precision == "float32" else f" --precision {args.precision}"),
        "precision_ours": args.precision,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores",
        "versions": {"tensorflow": tf.__version__, "torch": torch.__version__,
                     "transformers": transformers.__version__},
        "model": "electra_small-sized classifier (12 x 256, E=128), random weights",
        "batch_size": args.batch_size, "max_seq_length": args.max_seq_length,
        "timed_batches": args.batches,
        "median_batch_s": {k: round(statistics.median(v), 3) for k, v in times.items()},
        "reviews_per_s": {k: round(v, 2) for k, v in rate.items()},
        "ratio_ours_over_hf": round(rate["ours"] / rate["hf"], 3), "target_ratio": 1.5,
        "predictions_agree": f"{agree}/{total}", "max_probability_diff": max_diff,
    }
    name = "export_throughput" + ("" if args.precision == "float32" else f"_{args.precision}")
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, f"{name}.json"), "w") as f:
        json.dump(result, f, indent=2)
    with open(os.path.join(RESULTS, f"{name}.md"), "w") as f:
        f.write("# Exported classifier throughput vs HuggingFace transformers\n\n"
                f"`{result['command']}` on {result['machine']}; {result['model']}; batch "
                f"{args.batch_size} IMDB test reviews of >= {args.max_seq_length} pieces, raw "
                "text in, tokenization included on both sides; median of "
                f"{args.batches} alternating batches.\n\n"
                "| side | median s/batch | reviews/s |\n|---|---|---|\n"
                f"| electra_tf SavedModel ({args.precision}) | {result['median_batch_s']['ours']} | "
                f"{result['reviews_per_s']['ours']} |\n"
                f"| transformers (PyTorch, float32) | {result['median_batch_s']['hf']} | "
                f"{result['reviews_per_s']['hf']} |\n\n"
                f"Ratio ours / HF: **{result['ratio_ours_over_hf']}** (target 1.5). Predictions "
                f"agree on {result['predictions_agree']} reviews, max probability difference "
                f"{max_diff:.2e}. Versions: {result['versions']}.\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
