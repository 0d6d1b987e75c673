"""`electra_tf.pretrained.resolve`: every kind of source `--pretrained` and `from_pretrained`
accept goes through it, and gives the encoder, vocabulary and casing of that source."""

from __future__ import annotations

import json
import os
import shutil

import keras
import numpy as np
import pytest

from electra_tf.config import FinetuneConfig
from electra_tf.data.vocab import load_vocabulary, save_vocabulary
from electra_tf.distribute import serialized_in_precision
from electra_tf.errors import CheckpointError, ConfigError
from electra_tf.files import write_json
from electra_tf.models import SequenceClassifier
from electra_tf.pretrained import SOURCE_KINDS, resolve, resolve_preset
from electra_tf.runs import FinetunePaths, load_keras_model

TOKENS = np.array([[2, 7, 9, 11, 3, 0]], "int32")


def same_weights(a, b) -> bool:
    wa, wb = a.get_weights(), b.get_weights()
    return len(wa) == len(wb) and all(np.array_equal(x, y) for x, y in zip(wa, wb))


def test_a_pretraining_run_gives_its_discriminators_encoder_vocabulary_and_architecture(
        tiny_pretrained_run):
    source = resolve(tiny_pretrained_run)
    assert (source.kind, source.path, source.lower_case) == ("pretraining run",
                                                             tiny_pretrained_run, True)
    assert source.vocabulary() == load_vocabulary(os.path.join(tiny_pretrained_run, "vocab.txt"))
    assert source.model_config().hidden_size == 64
    discriminator = load_keras_model(os.path.join(tiny_pretrained_run, "discriminator.keras"))
    assert same_weights(source.encoder(), discriminator.encoder)
    # The model class's convenience goes through the same resolver.
    classifier = SequenceClassifier.from_pretrained(tiny_pretrained_run, num_labels=3)
    assert same_weights(classifier.encoder, discriminator.encoder)
    assert classifier(TOKENS).shape == (1, 3)


def test_an_unfinished_pretraining_run_gives_its_vocabulary_but_says_to_finish_it(
        tiny_pretrained_run, tmp_path):
    # What `pretrain --prepare-only` leaves: enough for a from-scratch baseline, no weights.
    run = tmp_path / "unfinished"
    run.mkdir()
    for name in ("config.yaml", "run.json", "vocab.txt"):
        shutil.copy(os.path.join(tiny_pretrained_run, name), run / name)
    source = resolve(str(run))
    assert source.kind == "pretraining run"
    assert len(source.vocabulary()) == source.model_config().vocab_size
    with pytest.raises(CheckpointError, match="re-run its command to finish"):
        source.encoder()


def test_a_keras_file_needs_its_vocabulary_given(tiny_pretrained_run):
    path = os.path.join(tiny_pretrained_run, "discriminator.keras")
    source = resolve(path)
    assert (source.kind, source.vocab_path, source.lower_case) == ("keras file", None, None)
    assert same_weights(source.encoder(), load_keras_model(path).encoder)
    with pytest.raises(ConfigError, match="also give --vocab"):
        source.vocabulary()


def test_a_model_object_is_its_own_source(tiny_pretrained_run):
    model = load_keras_model(os.path.join(tiny_pretrained_run, "discriminator.keras"))
    source = resolve(model)
    assert source.kind == "model" and source.encoder() is model.encoder
    assert resolve(source) is source
    with pytest.raises(ConfigError, match="model object: also give --vocab"):
        source.vocabulary()


def _fine_tuned_run(pretrained_run, folder, finished: bool) -> SequenceClassifier:
    """The files `finetune` leaves, written directly (a finished run, or one interrupted after
    its first evaluation), around a classifier whose encoder differs from the pretrained one."""
    classifier = SequenceClassifier.from_pretrained(pretrained_run, num_labels=2,
                                                    label_names=["neg", "pos"])
    classifier(TOKENS)
    for variable in classifier.encoder.trainable_variables[:3]:
        variable.assign(variable + 0.5)
    paths = FinetunePaths(str(folder))
    os.makedirs(paths.root)
    save_vocabulary(load_vocabulary(os.path.join(pretrained_run, "vocab.txt")), paths.vocab)
    write_json(paths.run, {"task": "csv", "lower_case": False, "label_names": ["neg", "pos"],
                           "total_steps": 10})
    FinetuneConfig().to_yaml(paths.config)
    if finished:
        classifier.save(paths.classifier)
    else:
        write_json(paths.architecture, serialized_in_precision(classifier, "float32"))
        classifier.save_weights(paths.best_weights)
        write_json(paths.best_record, {"step": 5, "val_accuracy": 0.6})
    return classifier


@pytest.mark.parametrize("finished", [True, False], ids=["finished", "unfinished"])
def test_a_fine_tuned_run_gives_its_fine_tuned_encoder(tiny_pretrained_run, tmp_path, finished):
    classifier = _fine_tuned_run(tiny_pretrained_run, tmp_path / "tuned", finished)
    source = resolve(str(tmp_path / "tuned"))
    assert (source.kind, source.lower_case) == ("fine-tuned run", False)
    assert len(source.vocabulary()) == classifier.encoder.vocab_size
    assert same_weights(source.encoder(), classifier.encoder)


def test_a_preset_resolves_by_name_and_by_folder():
    by_name = resolve("electra_cpu_imdb")
    assert by_name.kind == "preset" and os.path.isfile(by_name.vocab_path)
    assert resolve(by_name.path).kind == "preset"
    assert resolve_preset("electra_cpu_imdb").path == by_name.path
    with pytest.raises(ConfigError, match="Unknown preset"):
        resolve_preset("electra_huge")


def test_what_is_not_a_source_is_one_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist; give the --out-dir"):
        resolve(str(tmp_path / "missing"))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(CheckpointError, match="a file electra_tf does not read"):
        resolve(str(tmp_path / "notes.txt"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="holds no pretrained model"):
        resolve(str(tmp_path / "empty"))
    (tmp_path / "exported").mkdir()
    (tmp_path / "exported" / "saved_model.pb").write_bytes(b"")
    with pytest.raises(CheckpointError, match="exported SavedModel"):
        resolve(str(tmp_path / "exported"))


# ------------------------------------------------------------------ HuggingFace and TF1


def _hf_folder(folder, lower_case: bool):
    """A small HuggingFace ElectraForPreTraining folder as `save_pretrained` writes it, with a
    vocabulary and tokenizer config. Returns the transformers model."""
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("torch")
    config = transformers.ElectraConfig(vocab_size=40, embedding_size=16, hidden_size=64,
                                        num_hidden_layers=1, num_attention_heads=1,
                                        intermediate_size=64, max_position_embeddings=16)
    model = transformers.ElectraForPreTraining(config).eval()
    model.save_pretrained(folder)
    save_vocabulary(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
                    + [f"w{i}" for i in range(35)], os.path.join(folder, "vocab.txt"))
    with open(os.path.join(folder, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump({"do_lower_case": lower_case}, f)
    return model


def _hf_hidden_states(model, tokens):
    import torch

    with torch.no_grad():
        return model(input_ids=torch.tensor(tokens.astype("int64")),
                     output_hidden_states=True).hidden_states[-1].numpy()


def test_a_huggingface_folder_gives_its_encoder_and_its_casing(tmp_path):
    model = _hf_folder(str(tmp_path / "hf"), lower_case=False)
    source = resolve(str(tmp_path / "hf"))
    assert (source.kind, source.lower_case, len(source.vocabulary())) == ("huggingface", False,
                                                                          40)
    tokens = np.array([[2, 7, 9, 3]], "int32")
    np.testing.assert_allclose(source.encoder()({"token_ids": tokens}, training=False),
                               _hf_hidden_states(model, tokens), atol=1e-4)


def test_a_hub_id_resolves_to_its_downloaded_snapshot(tmp_path, monkeypatch):
    huggingface_hub = pytest.importorskip("huggingface_hub")
    _hf_folder(str(tmp_path / "snapshot"), lower_case=True)
    asked = []

    def snapshot_download(repo_id, allow_patterns):  # the hub, offline
        asked.append(repo_id)
        return str(tmp_path / "snapshot")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    source = resolve("hf:google/electra-small-discriminator")
    assert asked == ["google/electra-small-discriminator"]
    assert (source.kind, source.path) == ("huggingface", str(tmp_path / "snapshot"))
    assert isinstance(source.encoder(), keras.layers.Layer)


def test_a_tf1_checkpoint_resolves_by_folder_and_by_prefix(tmp_path):
    transformers = pytest.importorskip("transformers")
    from test_convert import tf1_names, write_tf1_checkpoint

    model = _hf_folder(str(tmp_path / "hf"), lower_case=True)
    prefix = write_tf1_checkpoint(tf1_names(model.state_dict(), "electra"), str(tmp_path / "tf1"))
    shutil.copy(tmp_path / "hf" / "vocab.txt", tmp_path / "tf1" / "vocab.txt")
    assert isinstance(model, transformers.ElectraForPreTraining)
    tokens = np.array([[2, 7, 9, 3]], "int32")
    for spec in (str(tmp_path / "tf1"), prefix):
        source = resolve(spec)
        assert (source.kind, source.lower_case, len(source.vocabulary())) == ("tf1", True, 40)
        np.testing.assert_allclose(source.encoder()({"token_ids": tokens}, training=False),
                                   _hf_hidden_states(model, tokens), atol=1e-4)


def test_every_source_kind_is_tested_here():
    tested = {"pretraining run", "keras file", "model", "fine-tuned run", "preset",
              "huggingface", "tf1"}
    # "import" folders are `electra-tf import` output: tests/test_convert.py fine-tunes one.
    assert set(SOURCE_KINDS) - tested == {"import"}
