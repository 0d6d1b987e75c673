"""Shared by the step scripts of benchmarks/pretrain_throughput.py (each runs in its own venv).

The ELECTRA-Small pretraining step every contender times: batch 32 x 128 tokens, BERT-uncased
vocabulary (30,522), 20 predicted positions per sequence, generator 1/4 of the discriminator's
width, disc_weight 50, AdamW with global-norm clipping.
"""

import json
import statistics
import sys
import time

import numpy as np

BATCH, SEQ_LEN, VOCAB, PREDICTIONS = 32, 128, 30522, 20
HIDDEN, LAYERS, HEADS, INTERMEDIATE, EMBEDDING = 256, 12, 4, 1024, 128
GEN_HIDDEN, GEN_HEADS, GEN_INTERMEDIATE = 64, 1, 256
CLS, SEP, MASK = 101, 102, 103


def synthetic_batch(seed=0):
    """Full-length sequences of random word-piece ids, [CLS] ... [SEP], plus 20 distinct
    masked positions per sequence (for peers whose masking happens in the input pipeline)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, VOCAB, size=(BATCH, SEQ_LEN)).astype("int32")
    ids[:, 0], ids[:, -1] = CLS, SEP
    positions = np.stack([np.sort(rng.choice(np.arange(1, SEQ_LEN - 1), PREDICTIONS,
                                             replace=False)) for _ in range(BATCH)])
    return ids, positions.astype("int32")


def time_steps(step, steps, warmup):
    """Runs `step()` warmup + steps times; returns the timed steps' wall seconds."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        began = time.perf_counter()
        step()
        times.append(time.perf_counter() - began)
    return times


def report(name, times, losses, **extra):
    median = statistics.median(times)
    print("RESULT " + json.dumps({
        "name": name, "step_times_s": [round(t, 4) for t in times], "median_step_s": median,
        "tokens_per_s": BATCH * SEQ_LEN / median, "losses": [round(float(x), 4) for x in losses],
        **extra}))
    sys.stdout.flush()
