"""Run-to-run spread of `electra-tf pretrain`, with and without `--deterministic`, and its cost.

    .venv/bin/python benchmarks/determinism.py [--steps 120] [--batch-size 32]

At the electra_tiny size on the IMDB archive's texts (its train/ and unsup/ reviews) it runs

  * two uninterrupted runs with the same --seed, in the default mode and with --deterministic
    (interleaved: default, deterministic, default, deterministic), and
  * with --deterministic, a run SIGKILLed twice (soon after its checkpoints at 1/3 and 2/3 of
    the steps) and resumed with the same command each time,

  * with --deterministic and no --vocab (each run learns its own vocabulary from the corpus's
    first 20,000 documents), two uninterrupted runs and one killed twice and resumed,

then compares the discriminators' weights (largest absolute difference over all of them), the
learned vocabularies (byte for byte) and the training speed (sequences/s of the uninterrupted
runs, their training time only). Run it on an idle machine: the speed columns are only
comparable between peers of the same invocation. `--learned-vocabulary-only` runs only the
learned-vocabulary runs and replaces that part of an earlier invocation's results (the speed
columns stay the earlier invocation's; the results say which host gave which).
Writes benchmarks/results/determinism.{json,md}; run directories go to runs/determinism/.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
CORPUS = os.path.join(os.path.dirname(ROOT), "shared", "data", "aclImdb_v1-text.tar.gz")
CLI = [sys.executable, "-m", "electra_tf.cli"]
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
# Runs given one vocabulary (learned once, before them), and runs that each learn their own.
GIVEN = ("default_a", "deterministic_a", "default_b", "deterministic_b", "deterministic_killed")
LEARNED = ("learned_a", "learned_b", "learned_killed")


VOCAB_DOCUMENTS = 20000


def pretrain_command(args, out_dir, vocab, vocab_size, deterministic):
    """The run's command; `vocab=None`: the run learns its vocabulary (as many pieces as the
    config's model.vocab_size) from the corpus's first VOCAB_DOCUMENTS documents."""
    given = (["--vocab", vocab, "--set", f"model.vocab_size={vocab_size}"] if vocab else
             ["--vocab-documents", str(VOCAB_DOCUMENTS)])
    command = CLI + ["pretrain", "--config", "electra_tiny", "--corpus", args.corpus, *given,
                     "--out-dir", out_dir, "--steps", str(args.steps),
                     "--batch-size", str(args.batch_size), "--save-every", str(args.steps // 3),
                     "--log-every", str(args.steps // 6), "--seed", "0", "--quiet"]
    return command + (["--deterministic"] if deterministic else [])


def run(command, out_dir):
    log = open(os.path.join(os.path.dirname(out_dir), os.path.basename(out_dir) + ".log"), "a")
    subprocess.run(command, check=True, env=ENV, stdout=log, stderr=subprocess.STDOUT)


def run_then_kill(command, out_dir, checkpoint_step, timeout_s=900):
    """Starts the run and SIGKILLs it as soon as its checkpoint at `checkpoint_step` exists."""
    ready = os.path.join(out_dir, "checkpoints", f"ckpt-{checkpoint_step}.index")
    log = open(out_dir + ".log", "a")
    process = subprocess.Popen(command, env=ENV, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + timeout_s
    while not os.path.exists(ready):
        if process.poll() is not None:
            raise RuntimeError(f"{out_dir}: the run ended before step {checkpoint_step}")
        if time.time() > deadline:
            process.kill()
            raise RuntimeError(f"{out_dir}: no checkpoint {checkpoint_step} in {timeout_s} s")
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()


def discriminator_weights(out_dir):
    from electra_tf.runs.keras_files import load_keras_model

    return load_keras_model(os.path.join(out_dir, "discriminator.keras")).get_weights()


def max_abs_difference(a_dir, b_dir) -> float:
    import numpy as np

    return float(max(np.max(np.abs(a - b)) for a, b in
                     zip(discriminator_weights(a_dir), discriminator_weights(b_dir))))


def metrics(out_dir) -> dict:
    with open(os.path.join(out_dir, "metrics.json"), encoding="utf-8") as f:
        return json.load(f)


def first_interval_difference(a_dir, b_dir) -> float:
    a, b = metrics(a_dir)["first_interval"], metrics(b_dir)["first_interval"]
    return abs(a["loss"] - b["loss"])


def run_all(args, dirs, vocab):
    with open(vocab, encoding="utf-8") as f:
        vocab_size = sum(1 for _ in f)
    for name in ("default_a", "deterministic_a", "default_b", "deterministic_b"):
        print(f"{name} ...", flush=True)
        run(pretrain_command(args, dirs[name], vocab, vocab_size,
                             name.startswith("deterministic")), dirs[name])
    run_killed_twice(args, dirs["deterministic_killed"], vocab, vocab_size)


def run_learned_vocabulary(args, dirs):
    for name in ("learned_a", "learned_b"):
        print(f"{name} ...", flush=True)
        run(pretrain_command(args, dirs[name], None, None, True), dirs[name])
    run_killed_twice(args, dirs["learned_killed"], None, None)


def run_killed_twice(args, out_dir, vocab, vocab_size):
    """A --deterministic run SIGKILLed after its checkpoints at 1/3 and 2/3 of the steps, and
    resumed with the same command each time."""
    command = pretrain_command(args, out_dir, vocab, vocab_size, True)
    name = os.path.basename(out_dir)
    for step in (args.steps // 3, 2 * args.steps // 3):
        print(f"{name}: kill -9 after the checkpoint at step {step} ...", flush=True)
        run_then_kill(command, out_dir, step)
    run(command, out_dir)


def same_bytes(a_path, b_path) -> bool:
    with open(a_path, "rb") as a, open(b_path, "rb") as b:
        return a.read() == b.read()


def learned_vocabulary_result(args, dirs) -> dict:
    from host_info import host_summary

    vocabularies = [os.path.join(dirs[name], "vocab.txt") for name in LEARNED]
    with open(vocabularies[0], encoding="utf-8") as f:
        vocab_size = sum(1 for _ in f)
    return {
        "command": f"python benchmarks/determinism.py --steps {args.steps} "
                   f"--batch-size {args.batch_size} --learned-vocabulary-only",
        "host": host_summary(),
        "vocab_documents": VOCAB_DOCUMENTS, "vocab_size": vocab_size,
        "vocabularies_identical": all(same_bytes(vocabularies[0], other)
                                      for other in vocabularies[1:]),
        "max_abs_weight_difference": {
            "deterministic_two_runs": max_abs_difference(dirs["learned_a"], dirs["learned_b"]),
            "deterministic_killed_twice_vs_uninterrupted": max_abs_difference(
                dirs["learned_a"], dirs["learned_killed"]),
        },
        "killed_run_last_resumed_from_step": metrics(dirs["learned_killed"])["resumed_from_step"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--corpus", default=CORPUS)
    parser.add_argument("--out-dir", default=os.path.join(ROOT, "runs", "determinism"))
    parser.add_argument("--summarize-only", action="store_true",
                        help="only compare the run directories of an earlier invocation")
    parser.add_argument("--learned-vocabulary-only", action="store_true",
                        help="run only the runs that learn their vocabulary; keep the rest of "
                             "the earlier results")
    args = parser.parse_args()
    if args.steps % 6:
        parser.error("--steps must be a multiple of 6 (checkpoints at 1/3 and 2/3, log at 1/6)")
    vocab = os.path.join(args.out_dir, "vocab.txt")
    dirs = {name: os.path.join(args.out_dir, name) for name in GIVEN + LEARNED}
    if args.learned_vocabulary_only:
        for name in LEARNED:
            shutil.rmtree(dirs[name], ignore_errors=True)
        os.makedirs(args.out_dir, exist_ok=True)
        run_learned_vocabulary(args, dirs)
        with open(os.path.join(RESULTS, "determinism.json"), encoding="utf-8") as f:
            result = json.load(f)
        result["learned_vocabulary"] = learned_vocabulary_result(args, dirs)
        write_results(result)
        return
    if not args.summarize_only:
        shutil.rmtree(args.out_dir, ignore_errors=True)  # every run starts from nothing
        os.makedirs(args.out_dir)
        subprocess.run(CLI + ["train-tokenizer", "--corpus", args.corpus, "--vocab-size", "8192",
                              "--max-documents", "20000", "--out", vocab], check=True, env=ENV,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        run_all(args, dirs, vocab)
        run_learned_vocabulary(args, dirs)
    killed = dirs["deterministic_killed"]
    with open(vocab, encoding="utf-8") as f:
        vocab_size = sum(1 for _ in f)
    resumed_from = metrics(killed)["resumed_from_step"]

    from host_info import host_summary

    speed = {mode: [metrics(dirs[f"{mode}_{r}"])["sequences_per_s"] for r in "ab"]
             for mode in ("default", "deterministic")}
    result = {
        "command": f"python benchmarks/determinism.py --steps {args.steps} "
                   f"--batch-size {args.batch_size}",
        "host": host_summary(),
        "setup": {"config": "electra_tiny", "corpus": "IMDB archive (train/ + unsup/ texts)",
                  "steps": args.steps, "batch_size": args.batch_size, "seed": 0,
                  "vocab_size": vocab_size},
        "max_abs_weight_difference": {
            "default_two_runs": max_abs_difference(dirs["default_a"], dirs["default_b"]),
            "deterministic_two_runs": max_abs_difference(dirs["deterministic_a"],
                                                         dirs["deterministic_b"]),
            "deterministic_killed_twice_vs_uninterrupted": max_abs_difference(
                dirs["deterministic_a"], killed),
            "default_vs_deterministic": max_abs_difference(dirs["default_a"],
                                                           dirs["deterministic_a"]),
        },
        "first_interval_loss_difference": {
            "default_two_runs": first_interval_difference(dirs["default_a"], dirs["default_b"]),
            "deterministic_two_runs": first_interval_difference(dirs["deterministic_a"],
                                                                dirs["deterministic_b"]),
        },
        "killed_run_last_resumed_from_step": resumed_from,
        "sequences_per_s": speed,
        "deterministic_speed_ratio": round(statistics.median(speed["deterministic"]) /
                                           statistics.median(speed["default"]), 3),
        "learned_vocabulary": learned_vocabulary_result(args, dirs),
    }
    write_results(result)


def write_results(result: dict) -> None:
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "determinism.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    with open(os.path.join(RESULTS, "determinism.md"), "w", encoding="utf-8") as f:
        f.write(render_markdown(result))
    print(json.dumps(result, indent=2))


def render_markdown(result: dict) -> str:
    diff, speed, host = (result["max_abs_weight_difference"], result["sequences_per_s"],
                         result["host"])
    setup = result["setup"]
    killed = diff["deterministic_killed_twice_vs_uninterrupted"]
    if diff["default_two_runs"] == 0:
        spread = ("On this host the default mode was reproducible too at this size: "
                  "TensorFlow's kernels gave bit-identical results. TensorFlow promises that only "
                  "with op determinism on; other CPUs (oneDNN's AVX-512 paths), thread counts "
                  "and GPUs (atomic adds) need not, which `--deterministic` covers. The "
                  "default and `--deterministic` runs differ from each other (last row): the "
                  "deterministic mode uses other kernels, so compare runs made in the same "
                  "mode.")
    else:
        spread = (f"The default mode's run-to-run spread on this host is "
                  f"{diff['default_two_runs']:.3g} after {setup['steps']} steps; "
                  "`--deterministic` removes it.")
    return f"""# Determinism of `electra-tf pretrain` (`--deterministic`)

`{result['command']}` on {host['cpu_model']} ({host['cpu_cores']} cores; flags
{', '.join(host['cpu_flags'])}). `{setup['config']}`, {setup['corpus']}, {setup['steps']} steps
of batch {setup['batch_size']}, seed {setup['seed']}, a {setup['vocab_size']}-piece vocabulary
learned once and given to every run.

| comparison (discriminator weights) | largest absolute difference |
|---|---|
| two default runs, same seed | {diff['default_two_runs']:.3g} |
| two `--deterministic` runs, same seed | {diff['deterministic_two_runs']:.3g} |
| `--deterministic`: killed twice with kill -9 and resumed vs uninterrupted | {killed:.3g} |
| default vs `--deterministic` | {diff['default_vs_deterministic']:.3g} |

The first logging interval's mean loss differs by
{result['first_interval_loss_difference']['default_two_runs']:.3g} between the two default runs
and by {result['first_interval_loss_difference']['deterministic_two_runs']:.3g} between the two
`--deterministic` ones. The killed run was last resumed from step
{result['killed_run_last_resumed_from_step']}.

{spread}

**Speed** (sequences/s over the training time of the uninterrupted runs, interleaved on an idle
machine): default {', '.join(f'{s:.1f}' for s in speed['default'])}; `--deterministic`
{', '.join(f'{s:.1f}' for s in speed['deterministic'])}: `--deterministic` runs at
**{result['deterministic_speed_ratio']:.2f}x** the default speed (medians), a difference smaller
than the spread between two runs of the same mode.
{learned_vocabulary_markdown(result.get("learned_vocabulary"))}"""


def learned_vocabulary_markdown(learned: dict | None) -> str:
    if not learned:
        return ""
    diff, host = learned["max_abs_weight_difference"], learned["host"]
    identical = "byte-identical" if learned["vocabularies_identical"] else "**different**"
    return f"""
## Runs that learn their vocabulary

`{learned['command']}` on {host['cpu_model']} ({host['cpu_cores']} cores; flags
{', '.join(host['cpu_flags'])}): the same runs with `--deterministic` and no `--vocab`, so each
learns a {learned['vocab_size']}-piece vocabulary (default learner) from the corpus's first
{learned['vocab_documents']:,} documents. The three runs' `vocab.txt` files are {identical}.

| comparison (discriminator weights) | largest absolute difference |
|---|---|
| two `--deterministic` runs, same seed | {diff['deterministic_two_runs']:.3g} |
| `--deterministic`: killed twice with kill -9 and resumed vs uninterrupted | \
{diff['deterministic_killed_twice_vs_uninterrupted']:.3g} |

The killed run was last resumed from step {learned['killed_run_last_resumed_from_step']}.
"""


if __name__ == "__main__":
    main()
