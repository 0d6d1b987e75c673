"""electra_tf: `ElectraPretrainer` (configs/electra_small.yaml) driven by `model.fit`, timed per
step by a callback -- masking and sampling run inside the step (dynamic masking), so our step
does strictly more work than Model Garden's, whose masks come precomputed.

    python ours_step.py STEPS WARMUP PRECISION JIT(0|1) STEPS_PER_EXECUTION

For ablations, ELECTRA_BENCH_SET="model.dropout=0.0 ..." adds config overrides.
"""

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["KERAS_BACKEND"] = "tensorflow"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from common import BATCH, PREDICTIONS, report, synthetic_batch  # noqa: E402


class StepTimer(keras.callbacks.Callback):
    def __init__(self, steps_per_call):
        super().__init__()
        self.steps_per_call, self.times, self.losses, self._began = steps_per_call, [], [], None

    def on_train_batch_begin(self, batch, logs=None):
        self._began = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        seconds = (time.perf_counter() - self._began) / self.steps_per_call
        self.times.extend([seconds] * self.steps_per_call)
        self.losses.append(float(logs["loss"]))


def build(precision, jit, steps_per_execution):
    """The compiled ELECTRA-Small `ElectraPretrainer` and an endless dataset of one synthetic
    batch (also used by benchmarks/investigations/profile_pretrain_step.py)."""
    from electra_tf import ElectraPretrainer, create_optimizer, load_config
    from electra_tf.distribute import compile_options, set_precision

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    config = load_config(os.path.join(root, "configs", "electra_small.yaml"), [
        f"pretraining.max_predictions_per_seq={PREDICTIONS}", "pretraining.pad_id=0",
        "pretraining.cls_id=101", "pretraining.sep_id=102", "pretraining.mask_id=103",
        f"optimizer.batch_size={BATCH}", "optimizer.warmup_steps=10",
        *os.environ.get("ELECTRA_BENCH_SET", "").split()])
    set_precision(precision)
    keras.utils.set_random_seed(0)
    pretrainer = ElectraPretrainer(config.model, config.pretraining, seed=0)
    pretrainer.compile(optimizer=create_optimizer(config.optimizer),
                       **compile_options(bool(int(jit)), int(steps_per_execution)))
    ids, _ = synthetic_batch()
    dataset = tf.data.Dataset.from_tensors(
        {"token_ids": ids, "segment_ids": tf.zeros_like(ids),
         "padding_mask": tf.ones_like(ids)}).repeat()
    return pretrainer, dataset


def main(steps, warmup, precision, jit, steps_per_execution):
    pretrainer, dataset = build(precision, jit, steps_per_execution)
    timer = StepTimer(int(steps_per_execution))
    pretrainer.fit(dataset, steps_per_epoch=warmup + steps, epochs=1, verbose=0,
                   callbacks=[timer])
    report(f"electra_tf ElectraPretrainer, {precision}, jit_compile={bool(int(jit))}, "
           f"steps_per_execution={steps_per_execution}", timer.times[warmup:], timer.losses,
           library="electra_tf", tensorflow=tf.__version__, precision=precision,
           jit_compile=bool(int(jit)), steps_per_execution=int(steps_per_execution))


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])
