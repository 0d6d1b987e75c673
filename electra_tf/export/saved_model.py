"""TensorFlow SavedModels that take raw text: the tokenizer and vocabulary travel inside.

A process with only `tensorflow` and `tensorflow-text` installed (no `electra_tf`, no Keras
objects) can serve them:

    import tensorflow as tf, tensorflow_text  # noqa: F401  (registers the tokenizer ops)
    model = tf.saved_model.load("export/")
    model.signatures["serving_default"](text=tf.constant(["A fine film."]))
    # {"probabilities": [1, L] float32, "label_id": [1] int32, "label": [1] string,
    #  "logits": [1, L] float32}

Classifier signatures:
    `serving_default` (`classify_text`): `text` string `[batch]` -> the dict above.
    `classify_ids`: `token_ids`, `padding_mask` int32 `[batch, seq_len]` (already `[CLS] ... [SEP]`,
        0 = padding) -> the same dict.
Encoder (feature extraction) signatures:
    `serving_default` (`encode_text`): `text` `[batch]` -> `sequence_output` float32
        `[batch, seq_len, hidden]`, `token_ids` and `padding_mask` int32 `[batch, seq_len]`.
    `encode_ids`: `token_ids`, `padding_mask` -> `sequence_output`.

The text path is the same `ClassificationPreprocessor` the Keras model was trained and evaluated
with (same truncation), so both give the same numbers; it never raises on odd input: invalid
UTF-8 becomes U+FFFD, anything outside the vocabulary [UNK], and over-long strings are clipped
before tokenization.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from electra_tf.config import load_config
from electra_tf.config.finetuning import TaskConfig
from electra_tf.data.preprocessor import ClassificationPreprocessor
from electra_tf.data.tokenizer import WordPieceTokenizer
from electra_tf.data.vocab import load_vocabulary
from electra_tf.distribute import with_precision
from electra_tf.errors import CheckpointError
from electra_tf.export.serving import EncoderModule, save_serving_module
from electra_tf.files import ensure_writable_directory, read_json, write_json
from electra_tf.pretrained.finetuned import load_finetuned
from electra_tf.runs.keras_files import load_keras_model
from electra_tf.runs.layouts import FinetunePaths, PretrainPaths
from electra_tf.tasks import FinetuningTask, SequenceClassification, get_task


def export_classifier(model, preprocessor, vocab_path, export_dir,
                      precision: str = "float32", task: FinetuningTask | None = None) -> str:
    """Exports a fine-tuned model with its text preprocessing and its task's signatures
    (`task`: a `SequenceClassifier`'s by default; see the module docstring). `precision`
    "mixed_bfloat16" computes in bfloat16 (float32 weights and outputs): faster on CPUs with
    AVX512-BF16/AMX and on TPUs, with probabilities within about 1e-2 of float32;
    "bfloat16_matmul" computes only the matrix products in bfloat16, the rest in float32
    (`electra_tf.layers.matmul`)."""
    task = task or SequenceClassification(TaskConfig())
    model = with_precision(model, precision)
    return save_serving_module(task.serving_module(model, preprocessor, vocab_path), export_dir)


def export_encoder(encoder, preprocessor, vocab_path, export_dir,
                   precision: str = "float32") -> str:
    """Exports an `ElectraEncoder` (e.g. a pretrained discriminator's) for feature extraction,
    computing in `precision` (see `export_classifier`)."""
    encoder = with_precision(encoder, precision)
    return save_serving_module(EncoderModule(encoder, preprocessor, vocab_path), export_dir)


def is_saved_model(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "saved_model.pb"))


def export_model(model_dir: str, export_dir: str, precision: str = "float32") -> dict:
    """Exports the output directory of `electra-tf finetune` (a classifier) or of
    `electra-tf pretrain` (its discriminator's encoder, for feature extraction), computing in
    `precision` (one of `electra_tf.distribute.PRECISIONS`; weights stay float32).

    Returns a summary dict (`kind`, `signatures`, `export_dir`, ...) that is also written to
    `export_dir/assets.extra/electra_tf.json`.
    """
    if not os.path.isdir(model_dir):
        raise CheckpointError(f"Model directory {model_dir!r} does not exist: give the --out-dir "
                              "of 'electra-tf finetune' (classifier) or 'electra-tf pretrain' "
                              "(encoder).")
    if os.path.abspath(export_dir) == os.path.abspath(model_dir):
        raise CheckpointError("--out must differ from --model: exporting into the model "
                              "directory would mix the SavedModel with the training files.")
    if os.path.exists(export_dir) and not os.path.isdir(export_dir):
        raise CheckpointError(f"--out {export_dir} is an existing file, not a directory; give a "
                              "directory path.")
    if os.path.isdir(export_dir) and os.listdir(export_dir) and not is_saved_model(export_dir):
        raise CheckpointError(f"{export_dir} exists and is not an earlier export; choose an "
                              "empty or new directory so nothing in it is overwritten.")
    if is_saved_model(export_dir):
        _refuse_export_of_another_model(export_dir, model_dir)

    if FinetunePaths(model_dir).has_classifier():  # finished, or the best weights so far
        export = _export_finetuned
    elif os.path.isfile(PretrainPaths(model_dir).discriminator):
        export = _export_pretrained
    else:
        raise CheckpointError(
            f"{model_dir} has neither classifier.keras (a finished 'electra-tf finetune' run) nor "
            "discriminator.keras (a finished 'electra-tf pretrain' run); nothing to export.")
    parent = os.path.dirname(os.path.abspath(export_dir))
    ensure_writable_directory(parent, "--out's parent folder")
    # Written beside `export_dir`, then moved into place: a failure half-way (a full disk) leaves
    # an earlier export of the same model whole, and never a SavedModel missing files.
    partial = tempfile.mkdtemp(prefix=f".{os.path.basename(export_dir)}.partial-", dir=parent)
    try:
        summary = export(model_dir, partial, precision)
        summary.update(export_dir=export_dir, precision=precision)
        os.makedirs(os.path.join(partial, "assets.extra"), exist_ok=True)
        write_json(os.path.join(partial, "assets.extra", "electra_tf.json"), summary)
        _replace_directory(partial, export_dir)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return summary


def _refuse_export_of_another_model(export_dir: str, model_dir: str) -> None:
    """An earlier export in `export_dir` may be replaced by a new export of the same model
    (another precision, retrained weights), never by another model's: that would silently
    change what a server loading `export_dir` answers."""
    try:
        source = read_json(os.path.join(export_dir, "assets.extra", "electra_tf.json")).get(
            "source")
    except (CheckpointError, AttributeError):  # damaged, or not the object we write
        source = None
    if source != os.path.abspath(model_dir):
        held = f"the export of {source}" if source else "a SavedModel not exported from it"
        raise CheckpointError(f"--out {export_dir} holds {held}; exporting {model_dir} there "
                              "would replace it. Choose another --out (or delete that folder "
                              "first).")


def _replace_directory(new: str, target: str) -> None:
    """Moves the folder `new` to `target`, replacing a folder already there (two renames: the
    old one is deleted only after the new one is in place)."""
    if not os.path.exists(target) or (os.path.isdir(target) and not os.listdir(target)):
        if os.path.isdir(target):
            os.rmdir(target)
        os.replace(new, target)
        return
    old = f"{new}.old"
    os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)


def _export_finetuned(model_dir, export_dir, precision) -> dict:
    model, preprocessor, run, config = load_finetuned(model_dir)
    task = get_task(config.task)
    export_classifier(model, preprocessor, os.path.join(model_dir, "vocab.txt"), export_dir,
                      precision, task)
    # How a long input is fitted: cut (classifiers) or split into windows between words
    # (taggers, every word predicted).
    fitting = getattr(preprocessor, "truncation", "windows")
    return {**task.export_summary(model), "source": os.path.abspath(model_dir),
            "export_dir": export_dir, "max_seq_length": preprocessor.max_seq_length,
            "truncation": fitting, "lower_case": run["lower_case"]}


def _export_pretrained(model_dir, export_dir, precision) -> dict:

    paths = PretrainPaths(model_dir)
    config = load_config(paths.config)
    lower_case = read_json(paths.run).get("lower_case", True)
    discriminator = load_keras_model(paths.discriminator)
    vocab_path = paths.vocab
    tokenizer = WordPieceTokenizer(load_vocabulary(vocab_path), lower_case=lower_case)
    max_len = config.pretraining.max_seq_length
    preprocessor = ClassificationPreprocessor(tokenizer, max_len, truncation="head")
    export_encoder(discriminator.encoder, preprocessor, vocab_path, export_dir, precision)
    return {"kind": "encoder", "source": os.path.abspath(model_dir), "export_dir": export_dir,
            "signatures": ["serving_default", "encode_ids"], "max_seq_length": max_len,
            "truncation": "head", "lower_case": lower_case,
            "hidden_size": discriminator.encoder.hidden_size}
