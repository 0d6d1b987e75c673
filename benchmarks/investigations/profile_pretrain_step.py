"""Where the ELECTRA-Small pretraining step spends its time, by kind of work.

    .venv/bin/python benchmarks/investigations/profile_pretrain_step.py [--steps 5] \\
        [--precisions float32 mixed_bfloat16 bfloat16_matmul] [--name pretrain_step_profile]

Runs the exact step that benchmarks/pretrain_throughput.py times (`peers/ours_step.build`:
batch 32 x 128, vocabulary 30,522, 20 predictions per sequence), traces a few steps with the
TensorFlow profiler and adds up the time of every kernel, grouped by what it does: matmuls,
dropout (random mask + select), LayerNorm, GELU, attention softmax/mask, the optimizer update,
and the rest of the objective (masking, sampling, losses, metrics). Kernel times are summed over
TensorFlow's compute threads (2 here), so they exceed the wall time; the shares are what matter.
The matmul share bounds what any non-matmul work could still buy: a step that did nothing but
its matmuls would take `share x wall`.

Writes benchmarks/investigations/results/NAME.{json,md} (default pretrain_step_profile; the
profile taken before the fused kernels of issue 57 is pretrain_step_profile_before_fusion).
Kernels that XLA compiled (`electra_tf.layers.fused`) run outside TensorFlow's executor
threads and are counted apart, as "XLA-fused elementwise kernels".
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))  # benchmarks/investigations
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "benchmarks", "peers"))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))  # host_info
RESULTS = os.path.join(HERE, "results")

MATMUL_OPS = {"MatMul", "_MklMatMul", "_MklFusedMatMul", "_MklNativeFusedMatMul",
              "BatchMatMulV2", "_MklBatchMatMulV2", "Einsum", "_MklEinsum"}
# Checked in order against the kernel's full name (its Keras layer scopes); first match wins.
NAME_CATEGORIES = (
    ("dropout", "dropout (random mask, select)"),
    ("layer_norm", "LayerNorm"),
    ("gelu", "GELU"),
    ("attention", "attention softmax, mask, reshapes"),
    ("adam", "optimizer update"), ("optimizer", "optimizer update"),
    ("embeddings", "embeddings (gather, scatter-add)"),
)


XLA_KERNELS = "XLA-fused elementwise kernels"


def categorize(name: str, op_type: str) -> str:
    if op_type == XLA_KERNELS:
        return "XLA-fused kernels (bias, GELU, softmax, dropout, residual, LayerNorm)"
    if op_type in MATMUL_OPS:
        return "matmuls (dense layers, attention, MLM output)"
    lowered = name.lower()
    for key, category in NAME_CATEGORIES:
        if key in lowered:
            return category
    return "objective: masking, sampling, losses, metrics, other"


def kernel_times(logdir: str, steps: int):
    """{(full name, op type): ms per step} from the newest trace under `logdir`."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    path = sorted(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True))[-1]
    space = xplane_pb2.XSpace()
    with open(path, "rb") as f:
        space.ParseFromString(f.read())
    times = collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue  # executor threads; other lines hold the enclosing call's span
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if ":" in name and "::" not in name:  # "scope/op_name:OpType", not wrappers
                    full_name, op_type = name.rsplit(":", 1)
                    times[(full_name, op_type)] += event.duration_ps / 1e9 / steps
                elif name == "CpuExecutable::ExecuteAsyncOnStream":  # one XLA kernel's run
                    times[("xla", XLA_KERNELS)] += event.duration_ps / 1e9 / steps
    return times


def profile(precision: str, steps: int) -> dict:
    import tensorflow as tf
    from ours_step import StepTimer, build

    pretrainer, dataset = build(precision, 0, 1)
    timer = StepTimer(1)
    # Wall time: median of `steps` steps after 10 warm-up steps (the first ones are slower).
    pretrainer.fit(dataset, steps_per_epoch=10 + steps, epochs=1, verbose=0, callbacks=[timer])
    wall = statistics.median(timer.times[10:])
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        pretrainer.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
        tf.profiler.experimental.stop()
        times = kernel_times(logdir, steps)
    by_category, by_type = collections.Counter(), collections.Counter()
    for (name, op_type), ms in times.items():
        by_category[categorize(name, op_type)] += ms
        by_type[op_type] += ms
    total = sum(times.values())
    return {
        "precision": precision, "wall_s_per_step": round(wall, 3),
        "kernel_ms_per_step": round(total, 1),
        "categories": [{"category": c, "ms": round(ms, 1), "share": round(ms / total, 3)}
                       for c, ms in by_category.most_common()],
        "top_op_types": [{"op_type": t, "ms": round(ms, 1), "share": round(ms / total, 3)}
                         for t, ms in by_type.most_common(12)],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--precisions", nargs="+",
                        default=["float32", "mixed_bfloat16", "bfloat16_matmul"])
    parser.add_argument("--name", default="pretrain_step_profile",
                        help="results file name (without extension)")
    parser.add_argument("--json-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    # Each precision in a fresh process: the dtype policy is global.
    if len(args.precisions) > 1:
        import subprocess

        runs = []
        for precision in args.precisions:
            out = subprocess.run([sys.executable, __file__, "--steps", str(args.steps),
                                  "--precisions", precision, "--name", args.name,
                                  "--json-only"],
                                 capture_output=True, text=True, check=True).stdout
            runs.append(json.loads(out.strip().splitlines()[-1]))
        write(runs, args)
    else:
        result = profile(args.precisions[0], args.steps)
        if args.json_only:
            print(json.dumps(result))
        else:
            write([result], args)


def write(runs, args):
    from host_info import host_summary

    host = host_summary()
    command = (f"python benchmarks/investigations/profile_pretrain_step.py --steps {args.steps}"
               f" --precisions {' '.join(args.precisions)} --name {args.name}")
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, f"{args.name}.json"), "w") as f:
        json.dump({"command": command, "date": time.strftime("%Y-%m-%d"), "host": host,
                   "runs": runs}, f, indent=2)
    flags = "/".join(host["cpu_flags"]) or "no listed vector flags"
    lines = ["# Where the ELECTRA-Small pretraining step spends its time", "",
             f"`{command}` on {os.cpu_count()} CPU cores ({host['cpu_model']}, {flags}; "
             f"{time.strftime('%Y-%m-%d')}): the "
             "step of `pretrain_throughput.py` (batch 32 x 128, vocabulary 30,522, 20 "
             "predictions), traced with the TensorFlow profiler. Kernel time is summed over the "
             "compute threads, so it exceeds the wall time; read the shares.", ""]
    for run in runs:
        matmul = next(c for c in run["categories"] if c["category"].startswith("matmuls"))
        lines += [f"## {run['precision']}: {run['wall_s_per_step']:.2f} s per step (wall), "
                  f"{run['kernel_ms_per_step']:.0f} ms of kernel time", "",
                  "| work | kernel ms per step | share |", "|---|---|---|"]
        lines += [f"| {c['category']} | {c['ms']:.0f} | {100 * c['share']:.0f}% |"
                  for c in run["categories"]]
        lines += ["", f"Matmuls are {100 * matmul['share']:.0f}% of the kernel time: a step "
                  "with every other kernel free would take about "
                  f"{matmul['share'] * run['wall_s_per_step']:.2f} s.", "",
                  "Top op types: " + ", ".join(
                      f"{t['op_type']} {100 * t['share']:.0f}%" for t in run["top_op_types"]), ""]
    with open(os.path.join(RESULTS, f"{args.name}.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
