"""The machine a benchmark ran on: CPU model, the vector/matrix flags that change TensorFlow's
speed (AVX2, AVX-512, native bfloat16, AMX) and the core count, for every results file."""

from __future__ import annotations

import os

FLAGS_OF_INTEREST = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16")


def host_summary() -> dict:
    model, flags = "unknown", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model == "unknown":
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:  # not Linux: the model name is all we cannot tell
        pass
    return {"cpu_model": model, "cpu_cores": os.cpu_count(),
            "cpu_flags": [flag for flag in FLAGS_OF_INTEREST if flag in flags]}
