"""Reading a fine-tuning run back: its classifier (finished, or an interrupted run's best
checkpoint) and the preprocessing it was trained with."""

from __future__ import annotations

import logging

import keras

from electra_tf.config.finetuning import load_finetune_config
from electra_tf.data.tokenizer import WordPieceTokenizer
from electra_tf.data.vocab import load_vocabulary
from electra_tf.errors import CheckpointError
from electra_tf.files import read_json
from electra_tf.runs.keras_files import load_keras_model
from electra_tf.runs.layouts import FinetunePaths
from electra_tf.tasks import get_task

logger = logging.getLogger(__name__)


def load_classifier(paths: FinetunePaths):
    """The finished run's classifier.keras, or an unfinished run's best weights in the
    architecture it recorded (with a warning saying so)."""
    if paths.is_finished():
        return load_keras_model(paths.classifier)
    if not paths.is_unfinished_but_usable():
        raise CheckpointError(f"{paths.root} has no classifier.keras and no evaluated checkpoint: "
                              "give the --out-dir of an 'electra-tf finetune' run.")
    classifier = keras.saving.deserialize_keras_object(read_json(paths.architecture),
                                                       safe_mode=True)
    if not classifier.built:  # the recorded build config usually builds it already
        classifier.build({"token_ids": (None, None)})
    classifier.load_weights(paths.best_weights)
    best, run = read_json(paths.best_record), read_json(paths.run)
    monitor, value = next((k, v) for k, v in best.items() if k != "step")  # e.g. val_accuracy
    logger.warning("%s is an unfinished fine-tuning run: using its best checkpoint so far (step "
                   "%d of %d, %s %.4f). Re-run its finetune command to finish it.", paths.root,
                   best["step"], run.get("total_steps", -1), monitor.replace("val_", "validation "),
                   value)
    return classifier


def load_finetuned(model_dir: str):
    """Returns `(model, preprocessor, run, config)` of a fine-tuning output directory (finished,
    or interrupted after its first evaluation: then its best weights so far); the preprocessor
    is the task's, as the model was trained with."""
    paths = FinetunePaths(model_dir)
    model = load_classifier(paths)  # an unfinished run's best checkpoint, with a warning
    run = read_json(paths.run)
    config = load_finetune_config(paths.config)
    tokenizer = WordPieceTokenizer(load_vocabulary(paths.vocab), lower_case=run["lower_case"])
    preprocessor = get_task(config.task).preprocessor(tokenizer, config.preprocessing)
    return model, preprocessor, run, config
