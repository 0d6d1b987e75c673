"""Which WordPiece learner should be the default? Time, memory and held-out quality of
`tokenizers`' WordPiece trainer and tensorflow-text's BERT vocabulary learner.

    .venv/bin/python benchmarks/investigations/vocab_learning.py \\
        [--archive ../shared/data/aclImdb_v1-text.tar.gz] [--vocab-size 8192] [--repeats 3] \\
        [--slow-repeats 1] [--work-dir runs/vocab_learning]

Corpora (written once under `--work-dir` from the IMDB archive, https://ai.stanford.edu/~amaas/
data/sentiment/; the test split is never read):
- `imdb_train`: the 25,000 training reviews (train/pos + train/neg), as `finetune` learns from;
- `imdb_110mb`: the training and unlabelled reviews, less the held-out ones, shuffled and
  repeated with a new shuffle until the file passes 110 MB: a corpus at pretraining scale.
Held out: 2,000 unlabelled reviews that neither corpus contains.

Each learning run is a fresh process that streams the corpus file (`TextFileCorpus`) into
`electra_tf.data.vocab_learning.learn_vocabulary` and reports the seconds spent learning (the
import of TensorFlow excluded) and its peak resident memory. Runs alternate between the learners;
the tables give medians. Quality is measured with our own in-graph `WordPieceTokenizer` on the
held-out reviews: WordPiece pieces per word (fewer: more text fits in a sequence) and the share
of words that become [UNK]. Writes benchmarks/investigations/results/vocab_learning.{json,md}.
Time it on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))  # benchmarks/investigations
BENCHMARKS = os.path.dirname(HERE)
ROOT = os.path.dirname(BENCHMARKS)
sys.path.insert(0, BENCHMARKS)  # host_info
sys.path.insert(0, ROOT)

RESULTS = os.path.join(HERE, "results")
ARCHIVE = os.path.join(os.path.dirname(ROOT), "shared", "data", "aclImdb_v1-text.tar.gz")
HELD_OUT_REVIEWS = 2000
BIG_CORPUS_BYTES = 110_000_000
SEED = 0


def prepare_corpora(work_dir: str, archive: str) -> dict:
    """Writes the two corpora and the held-out reviews (blank-line-separated documents)."""
    paths = {name: os.path.join(work_dir, f"{name}.txt")
             for name in ("imdb_train", "imdb_110mb", "held_out")}
    if all(os.path.exists(path) for path in paths.values()):
        return paths
    import numpy as np

    from electra_tf.data.corpus import ImdbCorpus

    os.makedirs(work_dir, exist_ok=True)
    train, unsup = [], []
    for subset, text in ImdbCorpus(archive).labelled_documents():
        (unsup if subset == "train/unsup" else train).append(text)
    rng = np.random.default_rng(SEED)
    order = rng.permutation(len(unsup))
    held_out = [unsup[i] for i in order[:HELD_OUT_REVIEWS]]
    pool = [_as_written(d) for d in train + [unsup[i] for i in order[HELD_OUT_REVIEWS:]]]
    big, size = [], 0
    while size < BIG_CORPUS_BYTES:
        for i in rng.permutation(len(pool)):
            big.append(pool[i])
            size += len(pool[i].encode("utf-8"))
            if size >= BIG_CORPUS_BYTES:
                break
    for name, documents in (("imdb_train", train), ("imdb_110mb", big), ("held_out", held_out)):
        with open(f"{paths[name]}.tmp", "w", encoding="utf-8") as f:
            f.writelines(_as_written(document) for document in documents)
        os.replace(f"{paths[name]}.tmp", paths[name])
    return paths


def _as_written(document: str) -> str:
    """A document as a blank-line-separated corpus file holds it."""
    lines = [line.strip() for line in document.splitlines() if line.strip()]
    return "\n".join(lines) + "\n\n"


def learn_in_fresh_process(learner: str, corpus: str, vocab_size: int, out: str) -> dict:
    """One timed learning run in a new Python process (no warm caches, honest peak memory)."""
    output = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--worker", learner, corpus, str(vocab_size),
         out], check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def worker(learner: str, corpus: str, vocab_size: int, out: str) -> None:
    import time

    __import__("tensorflow")  # imported before the clock starts, for both learners

    from electra_tf.data.corpus import TextFileCorpus
    from electra_tf.data.vocab import save_vocabulary
    from electra_tf.data.vocab_learning import learn_vocabulary

    documents = TextFileCorpus([corpus], doc_format="blank").documents()
    sampler = _RssSampler()  # the resident memory the learning itself adds
    began = time.perf_counter()
    vocabulary = learn_vocabulary(documents, vocab_size, learner=learner)
    seconds = time.perf_counter() - began
    save_vocabulary(vocabulary, out)
    growth_mb = sampler.stop()
    print(json.dumps({"seconds": seconds, "rss_growth_mb": growth_mb}))


class _RssSampler:
    """Polls this process's resident memory (/proc/self/statm) every 50 ms from a thread and
    reports the peak over the starting value (`ru_maxrss` is useless here: importing TensorFlow
    peaks higher than either learner)."""

    def __init__(self):
        import threading

        self._page_mb = os.sysconf("SC_PAGE_SIZE") / 1e6
        self._start = self._peak = self._rss()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _rss(self) -> float:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * self._page_mb

    def _poll(self):
        while not self._done.wait(0.05):
            self._peak = max(self._peak, self._rss())

    def stop(self) -> float:
        self._done.set()
        self._thread.join()
        return max(self._peak, self._rss()) - self._start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archive", default=ARCHIVE, help="the IMDB archive or folder")
    parser.add_argument("--vocab-size", type=int, default=8192)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per learner/corpus")
    parser.add_argument("--slow-repeats", type=int, default=1,
                        help="runs of tensorflow-text's learner per corpus (~4 and ~10 min on "
                             "2 AVX2 cores; its 3 runs on imdb_train spread 250-258 s)")
    parser.add_argument("--work-dir", default=os.path.join(ROOT, "runs", "vocab_learning"))
    parser.add_argument("--memory-only", nargs="+", metavar="LEARNER", default=None,
                        help="only (re)measure the memory these learners add, one run per corpus, "
                             "into the existing results (memory does not need an idle machine)")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        learner, corpus, vocab_size, out = args.worker
        return worker(learner, corpus, int(vocab_size), out)
    if args.memory_only:
        return measure_memory(args)

    from host_info import host_summary

    from electra_tf.data.corpus import TextFileCorpus
    from electra_tf.data.vocab import SPECIAL_TOKENS, load_vocabulary
    from electra_tf.data.vocab_learning import DEFAULT_LEARNER, LEARNERS, tokenization_stats

    paths = prepare_corpora(args.work_dir, args.archive)
    held_out = list(TextFileCorpus([paths["held_out"]], doc_format="blank").documents())
    corpora = {}
    for name in ("imdb_train", "imdb_110mb"):
        documents = list(TextFileCorpus([paths[name]], doc_format="blank").documents())
        corpora[name] = {"documents": len(documents),
                         "megabytes": round(os.path.getsize(paths[name]) / 1e6, 1)}
    rows = []
    for corpus in ("imdb_train", "imdb_110mb"):
        repeats = {"tokenizers": args.repeats, "tensorflow-text": args.slow_repeats}
        runs = {learner: [] for learner in LEARNERS}
        for repeat in range(max(repeats.values())):
            for learner in LEARNERS:  # alternating, so drift in the host hits both alike
                if repeat < repeats[learner]:
                    out = os.path.join(args.work_dir, f"vocab_{corpus}_{learner}.txt")
                    runs[learner].append(
                        learn_in_fresh_process(learner, paths[corpus], args.vocab_size, out))
                    print(f"{corpus} {learner} run {repeat + 1}: "
                          f"{runs[learner][-1]['seconds']:.1f} s", flush=True)
        for learner in LEARNERS:
            vocabulary = load_vocabulary(os.path.join(args.work_dir,
                                                      f"vocab_{corpus}_{learner}.txt"))
            stats = tokenization_stats(vocabulary, held_out)
            seconds = [run["seconds"] for run in runs[learner]]
            rows.append({
                "learner": learner, "corpus": corpus, "vocab_size_requested": args.vocab_size,
                "vocab_size": len(vocabulary),
                "special_ids_0_to_4": tuple(vocabulary[:5]) == SPECIAL_TOKENS,
                "seconds": [round(s, 2) for s in seconds],
                "seconds_median": round(statistics.median(seconds), 2),
                "rss_growth_mb": round(max(run["rss_growth_mb"] for run in runs[learner])),
                "held_out_pieces_per_word": round(stats["pieces_per_word"], 4),
                "held_out_unk_per_word": round(stats["unk_per_word"], 6),
                "held_out_words": stats["words"]})
    write_results({"command": "python benchmarks/investigations/vocab_learning.py",
                   "host": host_summary(),
                   "corpora": corpora, "held_out_reviews": len(held_out),
                   "default_learner": DEFAULT_LEARNER, "rows": rows})


def measure_memory(args) -> None:
    with open(os.path.join(RESULTS, "vocab_learning.json"), encoding="utf-8") as f:
        data = json.load(f)
    paths = prepare_corpora(args.work_dir, args.archive)
    for row in data["rows"]:
        for stale in ("peak_rss_mb", "peak_rss_growth_mb"):  # ru_maxrss: TensorFlow's import
            row.pop(stale, None)
        if row["learner"] in args.memory_only:
            out = os.path.join(args.work_dir, f"memory_{row['corpus']}_{row['learner']}.txt")
            run = learn_in_fresh_process(row["learner"], paths[row["corpus"]],
                                         row["vocab_size_requested"], out)
            row["rss_growth_mb"] = round(run["rss_growth_mb"])
            print(f"{row['corpus']} {row['learner']}: +{run['rss_growth_mb']:.0f} MB", flush=True)
    write_results(data)


def write_results(data: dict) -> None:
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "vocab_learning.json"), "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
    host = data["host"]
    lines = ["# Vocabulary learning: tokenizers vs tensorflow-text", "",
             f"Command: `{data['command']}`. Host: {host['cpu_model']}, {host['cpu_cores']} "
             f"cores, flags {', '.join(host['cpu_flags']) or 'none of interest'}; idle machine. "
             "Each run is a fresh process streaming the corpus file; seconds exclude the import "
             "of TensorFlow. Quality: our in-graph `WordPieceTokenizer` on "
             f"{data['held_out_reviews']:,d} held-out unlabelled reviews.", "",
             "| corpus | learner | pieces (asked) | specials at 0-4 | seconds (median) | runs | "
             "memory added while learning | held-out pieces/word | held-out [UNK]/word |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in data["rows"]:
        corpus = data["corpora"][r["corpus"]]
        lines.append(
            f"| {r['corpus']} ({corpus['documents']:,d} docs, {corpus['megabytes']} MB) | "
            f"{r['learner']} | {r['vocab_size']:,d} ({r['vocab_size_requested']:,d}) | "
            f"{'yes' if r['special_ids_0_to_4'] else 'NO'} | {r['seconds_median']:.1f} | "
            f"{len(r['seconds'])} | {_memory(r)} | "
            f"{r['held_out_pieces_per_word']:.4f} | {r['held_out_unk_per_word']:.5f} |")
    lines += ["", "Memory added while learning: resident memory above its value when learning "
              "started, polled every 50 ms in the learning process (measured with "
              "`--memory-only`, which does not need an idle machine). Both learners keep word "
              "counts, not the text, so it grows with the number of distinct words.", "",
              *verdict_lines(data)]
    with open(os.path.join(RESULTS, "vocab_learning.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def _memory(row: dict) -> str:
    return f"{row['rss_growth_mb']:,d} MB" if "rss_growth_mb" in row else "not measured"


def verdict_lines(data: dict) -> list[str]:
    by = {(r["corpus"], r["learner"]): r for r in data["rows"]}
    lines = [f"Default learner: **{data['default_learner']}**."]
    for corpus in data["corpora"]:
        fast, slow = by.get((corpus, "tokenizers")), by.get((corpus, "tensorflow-text"))
        if not (fast and slow):
            continue
        lines.append(
            f"- {corpus}: tokenizers {fast['seconds_median']:.1f} s vs tensorflow-text "
            f"{slow['seconds_median']:.1f} s ({slow['seconds_median'] / fast['seconds_median']:.0f}x"
            f"); pieces/word {fast['held_out_pieces_per_word']:.4f} vs "
            f"{slow['held_out_pieces_per_word']:.4f}; [UNK]/word "
            f"{fast['held_out_unk_per_word']:.5f} vs {slow['held_out_unk_per_word']:.5f}.")
    return lines


if __name__ == "__main__":
    main()
