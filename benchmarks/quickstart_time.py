"""How long the README's first command takes: `electra-tf quickstart`, timed end to end.

    .venv/bin/python benchmarks/quickstart_time.py [--repeats 3] [--work-dir runs/quickstart_time]

Runs the quickstart `--repeats` times, each into a fresh output folder (so nothing is resumed),
as a subprocess timed by wall clock: what a newcomer waits for after installing, including
TensorFlow's start-up. Run it with nothing else on the CPU. Records the median and every run,
the test accuracies each run printed (`summary.json`), and the host. Writes
benchmarks/results/quickstart_time.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
RESULTS = os.path.join(HERE, "results")


def time_one_run(out_dir: str) -> dict:
    """One quickstart into an empty `out_dir`: wall seconds and its summary.json."""
    shutil.rmtree(out_dir, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "electra_tf.cli", "quickstart", "--out-dir", out_dir],
                   check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    wall_s = time.perf_counter() - start
    with open(os.path.join(out_dir, "summary.json"), encoding="utf-8") as f:
        summary = json.load(f)
    return {"wall_s": round(wall_s, 1), "test_accuracy": summary["test_accuracy"],
            "preset": summary.get("preset")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work-dir", default=os.path.join(ROOT, "runs", "quickstart_time"))
    args = parser.parse_args(argv)
    from host_info import host_summary

    runs = []
    for index in range(args.repeats):
        runs.append(time_one_run(os.path.join(args.work_dir, f"run{index}")))
        print(f"run {index}: {runs[-1]['wall_s']:.0f} s, {runs[-1]['test_accuracy']}", flush=True)
    median_s = statistics.median(run["wall_s"] for run in runs)
    host = host_summary()
    record = {"command": "electra-tf quickstart --out-dir <fresh folder>",
              "median_wall_s": median_s, "runs": runs, "host": host}
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "quickstart_time.json"), "w", encoding="utf-8") as f:
        json.dump(record, f, indent=2)
    lines = [
        "# How long the quickstart takes",
        "",
        f"`python benchmarks/quickstart_time.py --repeats {args.repeats}` on "
        f"{host['cpu_cores']} CPU cores ({host['cpu_model']}, {'/'.join(host['cpu_flags'])}), "
        "nothing else running. Each run is `electra-tf quickstart` into a fresh folder, timed "
        "by wall clock from the process start (TensorFlow's import included).",
        "",
        f"**Median: {median_s // 60:.0f} min {median_s % 60:.0f} s.**",
        "",
        "| run | wall | test accuracy, pretrained | from scratch | preset |",
        "|---|---|---|---|---|",
    ]
    for index, run in enumerate(runs):
        accuracy = run["test_accuracy"]
        lines.append(f"| {index} | {run['wall_s']:.0f} s | {accuracy['pretrained']:.3f} | "
                     f"{accuracy['scratch']:.3f} | {run['preset']} |")
    with open(os.path.join(RESULTS, "quickstart_time.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(f"median {median_s:.0f} s -> benchmarks/results/quickstart_time.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
