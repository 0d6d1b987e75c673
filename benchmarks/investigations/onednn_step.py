"""Does turning TensorFlow's oneDNN kernels on pay on this CPU? The electra_tiny pretraining step
with `TF_ENABLE_ONEDNN_OPTS=0` vs `=1`, each in a fresh process (the variable is read when
TensorFlow loads), alternating, several repeats.

    .venv/bin/python benchmarks/investigations/onednn_step.py [--repeats 3] [--steps 20]

TensorFlow enables oneDNN by default only on CPUs with AVX-512 VNNI/BF16 or AMX; `import
electra_tf` sets the variable to 1 unless the user set it (electra_tf/__init__.py). Synthetic
batches of 32 x 128 tokens, vocabulary 7,942, float32; the first 5 steps (tracing) are not timed.
Run it with nothing else on the CPU. Writes benchmarks/investigations/results/onednn_step.{json,md}.
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
RESULTS = os.path.join(HERE, "results")

STEP = r"""
import os, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import electra_tf as et
import numpy as np, tensorflow as tf
steps = int(sys.argv[1])
config = et.load_config("electra_tiny", ["model.vocab_size=7942"])
pretrainer = et.ElectraPretrainer(config.model, config.pretraining, seed=0)
pretrainer.compile(optimizer=et.create_optimizer(config.optimizer))
ids = np.random.default_rng(0).integers(5, 7942, size=(32 * 8, 128)).astype("int32")
ids[:, 0], ids[:, -1] = 2, 3
data = tf.data.Dataset.from_tensor_slices({"token_ids": ids, "segment_ids": np.zeros_like(ids),
    "padding_mask": np.ones_like(ids)}).batch(32).repeat()
pretrainer.fit(data, steps_per_epoch=5, epochs=1, verbose=0)
began = time.time()
pretrainer.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
print("RESULT", (time.time() - began) / steps)
"""


def step_seconds(onednn: str, steps: int) -> float:
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=onednn)
    out = subprocess.run([sys.executable, "-c", STEP, str(steps)], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return float(next(line for line in out.splitlines() if line.startswith("RESULT")).split()[1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    from host_info import host_summary

    times = {"0": [], "1": []}
    for _ in range(args.repeats):
        for onednn in times:
            times[onednn].append(round(step_seconds(onednn, args.steps), 4))
            print(f"TF_ENABLE_ONEDNN_OPTS={onednn}: {times[onednn][-1]:.3f} s/step", flush=True)
    median = {k: statistics.median(v) for k, v in times.items()}
    host = host_summary()
    result = {"command": " ".join(["python benchmarks/investigations/onednn_step.py", *sys.argv[1:]]),
              "host": host, "steps_timed": args.steps, "seconds_per_step": times,
              "median_seconds_per_step": median, "speedup": round(median["0"] / median["1"], 2)}
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "onednn_step.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    with open(os.path.join(RESULTS, "onednn_step.md"), "w", encoding="utf-8") as f:
        f.write(f"""# electra_tiny pretraining step with and without oneDNN

`{result['command']}` on {host['cpu_model']}, {host['cpu_cores']} cores, flags
{' '.join(host['cpu_flags'])}; machine otherwise idle. Batch 32 x 128, float32, {args.steps} timed
steps per process after 5 untimed ones; {args.repeats} processes per setting, alternating.

| TF_ENABLE_ONEDNN_OPTS | s/step, median | runs |
|---|---|---|
| 0 (Eigen kernels) | {median['0']:.3f} | {', '.join(f'{t:.3f}' for t in times['0'])} |
| 1 (oneDNN, electra_tf's default) | {median['1']:.3f} | {', '.join(f'{t:.3f}' for t in times['1'])} |

oneDNN is **{result['speedup']:.2f}x** faster per step on this host.
""")
    print(open(os.path.join(RESULTS, "onednn_step.md"), encoding="utf-8").read())


if __name__ == "__main__":
    main()
