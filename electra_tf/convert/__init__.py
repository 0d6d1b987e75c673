"""Checkpoint conversion: HuggingFace ELECTRA (safetensors / pytorch_model.bin) in and out."""

import os

from electra_tf.convert.hf_mapping import hf_config
from electra_tf.convert.huggingface import (
    export_huggingface,
    is_huggingface_source,
    load_huggingface,
    resolve_hf_path,
    save_huggingface,
)
from electra_tf.convert.tf1 import load_tf1_checkpoint
from electra_tf.data.vocab import load_vocabulary, save_vocabulary
from electra_tf.errors import CheckpointError
from electra_tf.files import ensure_writable_directory, read_json, write_json
from electra_tf.models.generator import Generator
from electra_tf.runs.keras_files import save_keras_atomically
from electra_tf.runs.layouts import PretrainPaths, refuse_another_kind_of_run

__all__ = ["export_huggingface", "hf_config", "import_pretrained", "load_huggingface",
           "save_huggingface"]


def import_pretrained(source: str, out_dir: str, vocab: str | None = None,
                      num_heads: int | None = None, generator_num_heads: int | None = None,
                      lower_case: bool | None = None) -> dict:
    """Converts Google's TF1 checkpoint (`model.ckpt-N` or its folder) or a HuggingFace folder /
    `hf:ORG/NAME` into a directory that `electra-tf finetune --pretrained` (and `export`)
    accept: `discriminator.keras`, `generator.keras` (when present), `vocab.txt`, `run.json`.

    `lower_case`: whether the vocabulary is uncased; None reads a HuggingFace folder's
    `tokenizer_config.json` (`do_lower_case`) and otherwise means True (Google's releases)."""
    refuse_another_kind_of_run(out_dir, "import")
    if os.path.exists(os.path.join(out_dir, "discriminator.keras")):
        raise CheckpointError(f"{out_dir} already holds a discriminator.keras; choose a new "
                              "--out-dir so nothing is overwritten.")
    if is_huggingface_source(source):
        folder = resolve_hf_path(source)
        model = load_huggingface(folder)
        models = {"generator" if isinstance(model, Generator) else "discriminator": model}
        vocab = vocab or os.path.join(folder, "vocab.txt")
        if lower_case is None:
            lower_case = bool(read_json(os.path.join(folder, "tokenizer_config.json"))
                              .get("do_lower_case", True))
        kind = "huggingface"
    else:
        loaded = load_tf1_checkpoint(source, num_heads, generator_num_heads)
        models = {k: loaded[k] for k in ("discriminator", "generator") if loaded[k] is not None}
        folder = os.path.dirname(loaded["checkpoint"])
        vocab = vocab or os.path.join(folder, "vocab.txt")
        kind = "tf1"
    lower_case = True if lower_case is None else lower_case
    if not os.path.isfile(vocab):
        raise CheckpointError(f"No vocabulary at {vocab}; give --vocab (the vocab.txt released "
                              "with the checkpoint).")
    vocabulary = load_vocabulary(vocab)
    any_model = next(iter(models.values()))
    if len(vocabulary) != any_model.encoder.vocab_size:
        raise CheckpointError(f"{vocab} has {len(vocabulary)} tokens but the checkpoint's "
                              f"embeddings have {any_model.encoder.vocab_size} rows.")
    ensure_writable_directory(out_dir)
    paths = PretrainPaths(out_dir)  # the layout of a pretraining run: everything reads it
    save_vocabulary(vocabulary, paths.vocab)
    for name, model in models.items():
        save_keras_atomically(model, getattr(paths, name))
    summary = {"imported_from": source, "format": kind, "lower_case": lower_case,
               "models": sorted(models)}
    write_json(paths.run, summary)
    return summary
