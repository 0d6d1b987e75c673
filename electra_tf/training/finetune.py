"""`finetune` and `evaluate`: a pretrained ELECTRA (or a from-scratch Transformer) on a
text-classification task, with everything a run leaves behind.

    OUT/classifier.keras       the fine-tuned `SequenceClassifier` (best validation checkpoint)
    OUT/finetune.yaml          the fine-tuning config used
    OUT/vocab.txt, run.json    vocabulary; task, data, initialisation, label names, lower-casing
    OUT/history.jsonl          one record per evaluation: step, loss, accuracy, val_loss, ...
    OUT/metrics.json           {"validation": ..., "test": ... (after `evaluate`), timings}
    OUT/curves.png, OUT/confusion_<split>.png, OUT/logs/ (TensorBoard)

While it runs, the directory also holds checkpoints/ and the best weights so far: re-running the
same command resumes an interrupted run (see `finetune_run`), and `evaluate`/`export` use an
unfinished run's best checkpoint.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import shutil
import tempfile
import time

import keras
import numpy as np

from electra_tf.config import ModelConfig, load_config
from electra_tf.data.classification import (
    ClassificationPreprocessor,
    LabelledTexts,
    classification_dataset,
    load_labelled_texts,
    stratified_split,
)
from electra_tf.data.tokenizer import WordPieceTokenizer
from electra_tf.data.vocab import load_vocabulary, save_vocabulary
from electra_tf.data.vocab_learning import DEFAULT_LEARNER, learn_vocabulary
from electra_tf.errors import CheckpointError, ConfigError, DataError
from electra_tf.models.classifier import SequenceClassifier
from electra_tf.training.callbacks import IntervalLogger, PeriodicCheckpoint, read_history
from electra_tf.training.checkpoints import TrainingCheckpointer
from electra_tf.training.distribute import (
    compile_options,
    distribution_summary,
    enable_deterministic_ops,
    is_chief,
    precision_policy,
    resolve_strategy,
    serialized_in_precision,
    with_precision,
)
from electra_tf.training.evaluation import classification_metrics
from electra_tf.training.finetune_config import FinetuneConfig, load_finetune_config
from electra_tf.training.finetune_run import (
    BestCheckpoint,
    FinetunePaths,
    check_resumable,
    load_classifier,
    resumed_best,
)
from electra_tf.training.optimizer import create_finetuning_optimizer
from electra_tf.training.run_files import (
    ensure_writable_directory,
    read_json,
    save_keras_atomically,
    write_json,
)

logger = logging.getLogger("electra_tf")


def finetune(config: FinetuneConfig, out_dir: str, *, pretrained: str | None = None,
             from_scratch: bool = False, model_config: ModelConfig | None = None,
             vocab: str | None = None, lower_case: bool = True,
             vocab_learner: str = DEFAULT_LEARNER, train_data: LabelledTexts = None,
             strategy="auto", tpu: str | None = None, precision: str = "float32",
             jit_compile: bool = False, steps_per_execution: int = 1,
             deterministic: bool = False, verbose="auto") -> dict:
    """Fine-tunes a classifier and writes `out_dir` (see the module docstring).

    Args:
        config: the `FinetuneConfig` (task, preprocessing, training recipe).
        out_dir: output folder; an existing fine-tuning result there is refused, not overwritten.
        pretrained: an `electra-tf pretrain` output directory. Its encoder is fine-tuned; with
            `from_scratch` only its architecture and vocabulary are used (the fair baseline).
        from_scratch: random initialisation ("the Transformer model" baseline), with the
            `from_scratch` section of the config applied.
        model_config: architecture for `from_scratch` without `pretrained`.
        vocab: vocabulary for `from_scratch` without `pretrained` (learned from the training
            texts by `vocab_learner` when None); `lower_case` goes with it. The from-scratch
            model is sized to this vocabulary, as `pretrain` sizes its model.
        train_data: labelled texts to use instead of loading `config.task` (Python API).
        strategy, tpu, precision, jit_compile, steps_per_execution: where and how training
            runs, as for `pretrain` (`training.batch_size` is the global batch; only the chief
            of a multi-worker run writes `out_dir`). The saved classifier is float32 whatever
            the training precision.
        deterministic: deterministic TensorFlow ops, as for `pretrain`.

    Returns:
        the metrics dict written to `metrics.json`.
    """
    started = time.time()
    strategy = resolve_strategy(strategy, tpu)  # first: multi-worker must precede other TF ops
    if deterministic:
        enable_deterministic_ops()
    chief = is_chief(strategy)
    compile_kwargs = compile_options(jit_compile, steps_per_execution)
    paths = FinetunePaths(out_dir)
    if pretrained is None and not (from_scratch and model_config is not None):
        raise ConfigError("Give --pretrained DIR (a pretraining output), or --from-scratch with "
                          "--model-config (an architecture such as electra_tiny).")
    if pretrained is not None and pretrained.startswith("hf:"):
        from electra_tf.convert.huggingface import resolve_hf_path

        pretrained = resolve_hf_path(pretrained)  # a local snapshot folder from now on
    if from_scratch:
        config = config.for_scratch_training()
    config.validate()
    if config.training.batch_size % strategy.num_replicas_in_sync:
        raise ConfigError(f"training.batch_size={config.training.batch_size} does not split "
                          f"evenly over {strategy.num_replicas_in_sync} replicas.")
    task, prep, training = config.task, config.preprocessing, config.training
    identity = {"task": task.name, "data": task.data or "tfds:imdb_reviews",
                "pretrained": pretrained, "from_scratch": from_scratch}
    resuming = check_resumable(paths, config.to_dict(), identity)
    if chief:
        ensure_writable_directory(out_dir)

    # 1. Data: train, and validation carved from it (the test split is never touched here).
    if train_data is None:
        train_data = load_labelled_texts(task.name, task.data, "train",
                                         text_column=task.text_column,
                                         label_column=task.label_column)
    train, validation = stratified_split(train_data, task.validation_fraction, task.split_seed)
    if task.max_train_examples and len(train) > task.max_train_examples:
        train, _ = stratified_split(train, 1 - task.max_train_examples / len(train),
                                    task.split_seed)
    logger.info("Task %s: %d training and %d validation examples %s from %s.", task.name,
                len(train), len(validation), train.class_counts(), train_data.source)

    # 2. Vocabulary and model.
    if resuming and os.path.isfile(paths.vocab):  # not learned again: the run's own
        vocabulary, lower_case = load_vocabulary(paths.vocab), read_json(paths.run)["lower_case"]
    else:
        vocabulary, lower_case = _vocabulary(pretrained, vocab, lower_case, train, model_config,
                                             vocab_learner)
    if pretrained is None and model_config.vocab_size != len(vocabulary):
        # No weights to match: the from-scratch encoder takes the vocabulary's size, as
        # `pretrain` does (a learned vocabulary can be a few pieces short of the target).
        logger.info("model.vocab_size = %d, the size of the %s vocabulary.", len(vocabulary),
                    "given" if vocab is not None else "learned")
        model_config = dataclasses.replace(model_config, vocab_size=len(vocabulary))
    if chief:
        save_vocabulary(vocabulary, paths.vocab)
    keras.utils.set_random_seed(training.seed)
    with precision_policy(precision), strategy.scope():
        classifier = with_precision(
            _build_classifier(pretrained, from_scratch, model_config, config, train), precision)
    encoder = classifier.encoder
    if encoder.vocab_size != len(vocabulary):
        raise ConfigError(f"The encoder has vocab_size={encoder.vocab_size} but the vocabulary "
                          f"has {len(vocabulary)} tokens; use the vocabulary it was pretrained "
                          "with (its run's vocab.txt).")
    if prep.max_seq_length > encoder.max_position_embeddings:
        raise ConfigError(f"preprocessing.max_seq_length={prep.max_seq_length} exceeds the "
                          f"encoder's max_position_embeddings={encoder.max_position_embeddings}.")
    tokenizer = WordPieceTokenizer(vocabulary, lower_case=lower_case)
    preprocessor = ClassificationPreprocessor(tokenizer, prep.max_seq_length, prep.truncation,
                                              prep.head_fraction)

    # 3. Schedule: `evaluations_per_epoch` Keras "epochs" per pass over the training set.
    steps_per_pass = math.ceil(len(train) / training.batch_size)
    evaluations = training.epochs * training.evaluations_per_epoch
    steps_per_evaluation = math.ceil(steps_per_pass * training.epochs / evaluations)
    # `fit` runs whole intervals, so the learning-rate schedule ends where training does (a
    # schedule for the unrounded count would spend the last steps at learning rate 0).
    total_steps = steps_per_evaluation * evaluations
    with strategy.scope():
        classifier.build({"token_ids": (None, None)})
        classifier.compile(
            optimizer=create_finetuning_optimizer(
                classifier, training.learning_rate, total_steps,
                warmup_fraction=training.warmup_fraction,
                layerwise_decay=training.layerwise_decay, weight_decay=training.weight_decay),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")], **compile_kwargs)
        classifier.optimizer.build(classifier.trainable_variables)  # so checkpoints cover it

    # 4. Resume: the last checkpoint (model, optimizer, step), the history up to it, the best.
    checkpointer = TrainingCheckpointer(paths.checkpoints, classifier, classifier.optimizer,
                                        keep=2)
    if chief and not resuming:
        shutil.rmtree(paths.checkpoints, ignore_errors=True)  # stale files of no known run
    start_step = (checkpointer.restore_latest() or 0) if resuming else 0
    history = read_history(paths.history, up_to_step=start_step, rewrite=chief)
    best, wait = resumed_best(paths, history, start_step) if resuming else (None, 0)
    run = dict(identity, lower_case=lower_case, label_names=train.label_names,
               train_examples=len(train), validation_examples=len(validation),
               total_steps=total_steps)
    if chief:
        write_json(paths.run, run)
        config.to_yaml(paths.config)
        write_json(paths.architecture, serialized_in_precision(classifier, "float32"))

    # 5. Train: `evaluations` Keras epochs, from the resumed one; the data stream is a pure
    #    function of the seed, so skipping the batches already trained on continues it exactly.
    train_ds = classification_dataset(train, preprocessor, training.batch_size, shuffle=True,
                                      seed=training.seed, repeat=True, bucket_by_length=True)
    val_ds = classification_dataset(validation, preprocessor, 2 * training.batch_size)
    # Non-chief workers keep their (identical) best weights in a private temporary folder.
    scratch = None if chief else tempfile.mkdtemp(prefix="electra_tf_worker_")
    best_weights = paths.best_weights if chief else os.path.join(scratch, "best.weights.h5")
    interval_logger = IntervalLogger(paths.history if chief else None,
                                     paths.logs if chief else None, training.batch_size,
                                     checkpoint_dir=paths.checkpoints)
    best_checkpoint = BestCheckpoint(best_weights, paths.best_record if chief else None,
                                     patience=training.early_stopping_patience, best=best,
                                     wait=wait)
    callbacks = [interval_logger, best_checkpoint]  # in this order: the best, then the state
    if chief:
        callbacks.append(PeriodicCheckpoint(checkpointer, steps_per_evaluation, total_steps))
    logger.info("Fine-tuning %s: %d steps (%d epochs of %d batches, validation every %d steps), "
                "batch %d, lr %g, layer-wise decay %g, up to %d tokens (%s truncation).",
                "from scratch" if from_scratch else f"from {pretrained}", total_steps,
                training.epochs, steps_per_pass, steps_per_evaluation, training.batch_size,
                training.learning_rate,
                training.layerwise_decay, prep.max_seq_length, prep.truncation)
    if start_step < total_steps and not best_checkpoint.patience_exhausted:
        if start_step:
            logger.info("Resuming %s from step %d of %d.", out_dir, start_step, total_steps)
        classifier.fit(train_ds.skip(start_step), epochs=evaluations,
                       initial_epoch=start_step // steps_per_evaluation,
                       steps_per_epoch=steps_per_evaluation, validation_data=val_ds,
                       callbacks=callbacks, verbose=verbose if chief else 0, shuffle=False)
        history += interval_logger.records

    # 6. The best checkpoint, its validation metrics, and the products.
    best = best_checkpoint.best
    classifier.load_weights(best_weights if os.path.exists(best_weights) else paths.best_weights)
    val_metrics = predict_metrics(classifier, val_ds, validation.label_names)
    logger.info("Best validation accuracy %.4f at step %d.", val_metrics["accuracy"],
                best["step"])
    train_time = sum(record.get("interval_s", 0.0) for record in history)
    metrics = {"validation": val_metrics, "best_step": best["step"], "steps": total_steps,
               "resumed_from_step": start_step, "train_time_s": round(train_time, 1),
               "wall_time_this_invocation_s": round(time.time() - started, 1),
               "examples_per_s": round(history[-1]["step"] * training.batch_size /
                                       max(train_time, 1e-9), 2),
               "distribution": distribution_summary(strategy, precision, jit_compile,
                                                    steps_per_execution)}
    if not chief:
        shutil.rmtree(scratch, ignore_errors=True)
        return metrics
    write_json(paths.metrics, metrics)
    # From here on the run is finished.
    save_keras_atomically(with_precision(classifier, "float32"), paths.classifier)
    for leftover in (paths.best_weights, paths.best_record, paths.architecture):
        if os.path.exists(leftover):
            os.remove(leftover)
    shutil.rmtree(paths.checkpoints, ignore_errors=True)
    _plot(paths, history, val_metrics, "validation", out_dir)
    return metrics


def evaluate(model_dir: str, split: str = "test", data: str | None = None,
             batch_size: int = 64, verbose="auto") -> dict:
    """Evaluates a fine-tuned classifier on one split of its task (or on `data`), adds the
    result to `model_dir/metrics.json` under the split's name, and plots the confusion matrix.

    `split`: `test`, `train`, another split the task's data names (a `{split}` path, a
    folder's sub-folder), or `validation`: the part of the training data held out for model
    selection, carved again exactly as fine-tuning carved it. A task fine-tuned from a single
    file or folder has no test split of its own: give the test data with `data`."""
    paths = FinetunePaths(model_dir)
    classifier, preprocessor, run, config = load_finetuned(model_dir)
    ensure_writable_directory(model_dir, "--model")  # before the work: no result is lost
    task = config.task
    source = data or (task.data if task.data else None)
    if source is None and run["task"] != "imdb":
        raise ConfigError("This task has no stored data path; give --data.")
    if data is None and split != "validation":
        _check_split_exists(run["task"], source, split)
    labelled = load_labelled_texts(run["task"], source,
                                   "train" if split == "validation" else split,
                                   text_column=task.text_column, label_column=task.label_column,
                                   label_names=run["label_names"])
    if split == "validation":
        labelled = stratified_split(labelled, task.validation_fraction, task.split_seed)[1]
    dataset = classification_dataset(labelled, preprocessor, batch_size)
    began = time.time()
    metrics = predict_metrics(classifier, dataset, run["label_names"], verbose=verbose)
    metrics["seconds"] = round(time.time() - began, 1)
    metrics["source"] = labelled.source
    if not paths.is_finished():  # say which weights were scored
        metrics["unfinished_run_best_step"] = read_json(paths.best_record)["step"]
    all_metrics = read_json(paths.metrics)
    all_metrics[split] = metrics
    write_json(paths.metrics, all_metrics)
    _plot(paths, None, metrics, split, model_dir)
    return metrics


def _check_split_exists(task: str, data: str | None, split: str) -> None:
    """Refuses to score a split the stored data does not have: a single CSV or class folder
    would otherwise be scored as "test" with the very texts the model was trained on."""
    if split == "train" or task == "imdb" or data is None or "{split}" in data:
        return  # IMDB checks its split names itself; a {split} path names its own files
    if task == "folder" and os.path.isdir(os.path.join(data, split)):
        return
    raise DataError(
        f"{data} is the data this model was fine-tuned on and has no {split!r} split. Give the "
        f"{split} data with --data PATH, or write the task's data path with {{split}} (e.g. "
        "reviews_{split}.csv, or a folder with train/ and test/) when fine-tuning. "
        "'--split validation' re-scores the held-out part of the training data.")


def load_finetuned(model_dir: str):
    """Returns `(classifier, preprocessor, run, config)` of a fine-tuning output directory
    (finished, or interrupted after its first evaluation: then its best weights so far)."""
    paths = FinetunePaths(model_dir)
    classifier = load_classifier(paths)  # an unfinished run's best checkpoint, with a warning
    run = read_json(paths.run)
    config = load_finetune_config(paths.config)
    prep = config.preprocessing
    tokenizer = WordPieceTokenizer(load_vocabulary(paths.vocab), lower_case=run["lower_case"])
    preprocessor = ClassificationPreprocessor(tokenizer, prep.max_seq_length, prep.truncation,
                                              prep.head_fraction)
    return classifier, preprocessor, run, config


def predict_metrics(classifier, dataset, label_names, verbose=0) -> dict:
    """Runs `classifier` over `(inputs, label)` batches and computes `classification_metrics`."""
    labels, predictions = [], []
    for inputs, y in dataset:
        logits = classifier(inputs, training=False)
        predictions.append(np.argmax(logits.numpy(), axis=-1))
        labels.append(y.numpy())
    return classification_metrics(np.concatenate(labels), np.concatenate(predictions),
                                  label_names)


# ------------------------------------------------------------------------------ the pieces


def _vocabulary(pretrained, vocab, lower_case, train, model_config, learner):
    if pretrained is not None and not os.path.exists(pretrained):
        raise CheckpointError(f"Pretrained model {pretrained!r} does not exist; give the "
                              "--out-dir of an 'electra-tf pretrain' run.")
    if pretrained is not None and os.path.isdir(pretrained):
        vocab_path = os.path.join(pretrained, "vocab.txt")
        if not os.path.isfile(vocab_path):
            raise CheckpointError(f"{pretrained} has no vocab.txt; is it an 'electra-tf "
                                  "pretrain' output directory?")
        run = read_json(os.path.join(pretrained, "run.json"))
        # A HuggingFace folder has no run.json; its tokenizer_config.json says the casing.
        hf_tokenizer = read_json(os.path.join(pretrained, "tokenizer_config.json"))
        return load_vocabulary(vocab_path), bool(
            run.get("lower_case", hf_tokenizer.get("do_lower_case", True)))
    if vocab is not None:
        return load_vocabulary(vocab), lower_case
    if pretrained is not None:
        raise ConfigError(f"{pretrained} is a model file: also give --vocab (the vocabulary it "
                          "was pretrained with).")
    logger.info("Learning a %d-piece vocabulary from the training texts ...",
                model_config.vocab_size)
    return learn_vocabulary(train.texts, model_config.vocab_size, lower_case=lower_case,
                            learner=learner), \
        lower_case


def _build_classifier(pretrained, from_scratch, model_config, config, train):
    num_labels, names = len(train.label_names), train.label_names
    dropout = config.training.dropout
    if not from_scratch:
        return SequenceClassifier.from_pretrained(pretrained, num_labels, names, dropout)
    if model_config is None:
        if not os.path.isfile(os.path.join(pretrained, "config.yaml")):
            raise ConfigError(f"{pretrained} has no electra_tf config.yaml to take the "
                              "architecture from; give --model-config with --from-scratch.")
        model_config = load_config(os.path.join(pretrained, "config.yaml")).model
    return SequenceClassifier.from_scratch(
        model_config, num_labels, names, dropout=dropout,
        position_embedding=config.from_scratch.position_embedding)


def _plot(paths, history, metrics, split, out_dir):
    try:
        from electra_tf.training.plots import plot_confusion_matrix, plot_finetuning_curves
    except ImportError:
        return
    if history:
        plot_finetuning_curves(history, paths.curves, title=f"Fine-tuning: {out_dir}")
    plot_confusion_matrix(metrics["confusion_matrix"], metrics["label_names"],
                          paths.confusion(split),
                          title=f"{split}: accuracy {metrics['accuracy']:.4f}")
