"""Shared by the kernel micro-benchmarks (investigations/gelu_precision.py,
investigations/step_kernels.py): median wall time of a compiled function (alone, or alternating
with the one it replaced), and the JSON + Markdown table they write to their results folder."""

from __future__ import annotations

import json
import os
import statistics
import time

import tensorflow as tf


def _run_and_fetch(function, args):
    """Calls `function(*args)` and fetches every output with `.numpy()`, so a timing covers the
    whole computation."""
    return tf.nest.map_structure(lambda t: t.numpy(), function(*args))


def median_ms(function, *args, calls=20):
    """Median milliseconds of `function(*args)` over `calls` calls, after one warm-up call that
    traces it."""
    _run_and_fetch(function, args)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        _run_and_fetch(function, args)
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1000, 1)


def paired_median_ms(old, new, *args, calls=100):
    """Median milliseconds of `old(*args)` and of `new(*args)`, timed in alternation (old, new,
    new, old, ...) after one warm-up call each, so that a slow spell of the host falls on both:
    on a shared 2-core host, timing one after the other moved single medians by 20-30%.
    Returns `(old ms, new ms)`."""
    _run_and_fetch(old, args)
    _run_and_fetch(new, args)
    times = {old: [], new: []}
    for call in range(calls):
        for function in ((old, new) if call % 2 == 0 else (new, old)):
            start = time.perf_counter()
            _run_and_fetch(function, args)
            times[function].append(time.perf_counter() - start)
    return tuple(round(statistics.median(times[f]) * 1000, 1) for f in (old, new))


def write_timings(name, title, command, setting, rows, *, results_dir):
    """Writes RESULTS_DIR/NAME.{json,md}: `rows` maps operation -> median ms; `setting`
    (e.g. "medians of 20 calls.") follows the command line in the Markdown."""
    from host_info import host_summary

    host = host_summary()
    os.makedirs(results_dir, exist_ok=True)
    with open(os.path.join(results_dir, f"{name}.json"), "w") as f:
        json.dump({"command": command, "cpu_cores": os.cpu_count(), "host": host,
                   "tensorflow": tf.__version__, "median_ms": rows}, f, indent=2)
    flags = "/".join(host["cpu_flags"]) or "no listed vector flags"
    lines = [f"# {title}", "",
             f"`{command}` on {os.cpu_count()} CPU cores ({host['cpu_model']}, {flags}), "
             f"TensorFlow {tf.__version__}; {setting}",
             "", "| operation | median ms |", "|---|---|"]
    lines += [f"| {operation} | {ms} |" for operation, ms in rows.items()]
    with open(os.path.join(results_dir, f"{name}.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
