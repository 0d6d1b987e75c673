"""Parity with HuggingFace transformers' ELECTRA (an independent PyTorch implementation)."""

import json
import os
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from electra_tf.convert import load_huggingface, save_huggingface  # noqa: E402
from electra_tf.errors import CheckpointError  # noqa: E402

# Small but complete: embedding_size != hidden_size (so embeddings_project exists), 2 heads.
HF_CONFIG = dict(vocab_size=120, embedding_size=16, hidden_size=32, num_hidden_layers=2,
                 num_attention_heads=2, intermediate_size=64, max_position_embeddings=40,
                 type_vocab_size=2, hidden_act="gelu", layer_norm_eps=1e-12)
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 120, (3, 12)).astype("int64")
    mask = np.ones((3, 12), "int64")
    mask[1, 8:] = 0
    mask[2, 5:] = 0
    ids[mask == 0] = 0
    segments = np.zeros_like(ids)
    segments[0, 6:] = 1
    return ids, segments, mask


def hf_model(cls, seed=0, **overrides):
    torch.manual_seed(seed)
    model = cls(transformers.ElectraConfig(**dict(HF_CONFIG, **overrides)))
    with torch.no_grad():  # non-zero biases and LayerNorm parameters, so a swap would show
        for param in model.parameters():
            param.add_(0.05 * torch.randn_like(param))
    return model.eval()


def hf_outputs(model, batch):
    ids, segments, mask = (torch.tensor(a) for a in batch)
    with torch.no_grad():
        out = model(input_ids=ids, token_type_ids=segments, attention_mask=mask,
                    output_hidden_states=True)
    return out.logits.numpy(), out.hidden_states[-1].numpy()


def our_outputs(model, batch):
    ids, segments, mask = batch
    inputs = {"token_ids": ids.astype("int32"), "segment_ids": segments.astype("int32"),
              "padding_mask": mask.astype("int32")}
    return (model(inputs, training=False).numpy(),
            model.encoder(inputs, training=False).numpy())


def assert_close_on_real_tokens(ours, theirs, mask):
    real = mask.astype(bool)
    np.testing.assert_allclose(ours[real], theirs[real], atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize("safe_serialization", [True, False])
def test_discriminator_imported_from_huggingface_matches(tmp_path, batch, safe_serialization):
    reference = hf_model(transformers.ElectraForPreTraining)
    reference.save_pretrained(tmp_path, safe_serialization=safe_serialization)
    ours = load_huggingface(str(tmp_path))
    (logits, hidden), (hf_logits, hf_hidden) = our_outputs(ours, batch), hf_outputs(reference, batch)
    assert_close_on_real_tokens(hidden, hf_hidden, batch[2])
    assert_close_on_real_tokens(logits, hf_logits, batch[2])


def test_generator_imported_from_huggingface_matches(tmp_path, batch):
    reference = hf_model(transformers.ElectraForMaskedLM, seed=1, hidden_size=16,
                         intermediate_size=32, num_attention_heads=1)
    reference.save_pretrained(tmp_path)
    ours = load_huggingface(str(tmp_path))
    assert type(ours).__name__ == "Generator"
    (logits, hidden), (hf_logits, hf_hidden) = our_outputs(ours, batch), hf_outputs(reference, batch)
    assert_close_on_real_tokens(hidden, hf_hidden, batch[2])
    assert_close_on_real_tokens(logits, hf_logits, batch[2])


def test_round_trip_ours_to_huggingface_and_back(tmp_path, batch):
    original = load_huggingface(_saved(tmp_path / "src", transformers.ElectraForPreTraining))
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] +
                               [f"w{i}" for i in range(115)]) + "\n")
    save_huggingface(original, str(tmp_path / "out"), str(vocab))
    assert sorted(os.listdir(tmp_path / "out")) == ["config.json", "model.safetensors",
                                                     "tokenizer_config.json", "vocab.txt"]
    reloaded_hf = transformers.ElectraForPreTraining.from_pretrained(tmp_path / "out").eval()
    ours = our_outputs(original, batch)
    theirs = hf_outputs(reloaded_hf, batch)
    for a, b in zip(ours, theirs):
        assert_close_on_real_tokens(a, b, batch[2])
    again = our_outputs(load_huggingface(str(tmp_path / "out")), batch)
    for a, b in zip(ours, again):
        np.testing.assert_array_equal(a, b)


def test_generator_exports_to_masked_lm(tmp_path, batch):
    original = load_huggingface(_saved(tmp_path / "src", transformers.ElectraForMaskedLM,
                                       hidden_size=16, intermediate_size=32))
    save_huggingface(original, str(tmp_path / "out"))
    reloaded = transformers.ElectraForMaskedLM.from_pretrained(tmp_path / "out").eval()
    assert_close_on_real_tokens(our_outputs(original, batch)[0], hf_outputs(reloaded, batch)[0],
                                batch[2])


def test_conversion_mistakes_are_clear(tmp_path):
    with pytest.raises(CheckpointError, match="no config.json"):
        load_huggingface(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(CheckpointError, match="not ELECTRA"):
        load_huggingface(str(tmp_path))
    folder = _saved(tmp_path / "m", transformers.ElectraForPreTraining)
    config = json.loads(open(os.path.join(folder, "config.json")).read())
    config["hidden_size"], config["intermediate_size"] = 48, 96   # disagrees with the weights
    open(os.path.join(folder, "config.json"), "w").write(json.dumps(config))
    with pytest.raises(CheckpointError, match="config.json and the weights disagree"):
        load_huggingface(folder)


def _saved(path, cls, **overrides):
    hf_model(cls, **overrides).save_pretrained(path)
    return str(path)


@pytest.mark.slow(seconds=45)
def test_cli_exports_a_pretraining_run_for_transformers_and_finetunes_from_it(
        tiny_pretrained_run, tmp_path, batch):
    import keras

    from electra_tf.cli import main
    from electra_tf.data import SAMPLE_LABELLED

    out = tmp_path / "hf"
    assert main(["export", "--model", tiny_pretrained_run, "--out", str(out), "--format",
                 "huggingface"]) == 0
    for name, cls in (("discriminator", transformers.ElectraForPreTraining),
                      ("generator", transformers.ElectraForMaskedLM)):
        ours = keras.saving.load_model(os.path.join(tiny_pretrained_run, f"{name}.keras"),
                                       safe_mode=True)
        theirs = cls.from_pretrained(out / name).eval()
        assert_close_on_real_tokens(our_outputs(ours, batch)[0], hf_outputs(theirs, batch)[0],
                                    batch[2])
    # A HuggingFace folder is a valid --pretrained for fine-tuning (vocab.txt comes with it).
    tuned = tmp_path / "tuned"
    assert main(["finetune", "--task", "csv", "--data", SAMPLE_LABELLED, "--pretrained",
                 str(out / "discriminator"), "--out-dir", str(tuned), "--set",
                 "task.max_train_examples=32", "--set", "preprocessing.max_seq_length=32",
                 "--set", "training.epochs=1", "--quiet"]) == 0
    assert json.loads((tuned / "metrics.json").read_text())["validation"]["examples"] == 40


# ------------------------------------------------------------------ Google's TF1 checkpoints


def tf1_names(state_dict, scope):
    """HF parameter names/values -> the official TF1 code's variable names/layout."""
    out = {}
    for name, tensor in state_dict.items():
        value = tensor.numpy()
        if name.startswith("electra.embeddings.") and "LayerNorm" not in name:
            out["electra/embeddings/" + name.split(".")[2]] = value  # shared embeddings
            continue
        if name == "generator_lm_head.bias":
            out["generator_predictions/output_bias"] = value
            continue
        if name == "generator_lm_head.weight":
            continue  # tied to the word embeddings
        tf_name = name.replace("discriminator_predictions.dense_prediction",
                               "discriminator_predictions.dense_1")
        if tf_name.startswith("electra.embeddings.LayerNorm"):
            tf_name = tf_name.replace("electra.", "electra/")  # shared, like the table
        elif tf_name.startswith("electra."):
            tf_name = scope + "/" + tf_name[len("electra."):]
        tf_name = re.sub(r"\.layer\.(\d+)\.", r"/layer_\1/", tf_name).replace(".", "/")
        if "LayerNorm" in tf_name:
            tf_name = tf_name.replace("/weight", "/gamma").replace("/bias", "/beta")
        elif tf_name.endswith("/weight"):
            tf_name, value = tf_name[:-len("/weight")] + "/kernel", value.T
        out[tf_name] = value
    return out


def write_tf1_checkpoint(variables, path):
    import tensorflow as tf

    with tf.Graph().as_default():
        tf_vars = [tf.compat.v1.get_variable(name, initializer=np.asarray(value, np.float32))
                   for name, value in variables.items()]
        saver = tf.compat.v1.train.Saver(tf_vars)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            return saver.save(session, os.path.join(path, "model.ckpt"), global_step=1000)


def test_official_tf1_checkpoint_imports_discriminator_and_generator(tmp_path, batch, caplog):
    from electra_tf.convert.tf1 import load_tf1_checkpoint

    disc = hf_model(transformers.ElectraForPreTraining)
    gen = hf_model(transformers.ElectraForMaskedLM, seed=1, hidden_size=16,
                   intermediate_size=32, num_attention_heads=1)
    # ELECTRA shares the embedding block (LayerNorm included) between the two networks.
    gen.electra.embeddings.load_state_dict(disc.electra.embeddings.state_dict())
    gen.generator_lm_head.weight = gen.electra.embeddings.word_embeddings.weight
    variables = dict(tf1_names(disc.state_dict(), "electra"))
    variables.update({k: v for k, v in tf1_names(gen.state_dict(), "generator").items()
                      if not k.startswith("electra/")})
    write_tf1_checkpoint(variables, str(tmp_path))

    # The checkpoint does not record head counts; the default is ELECTRA's hidden // 64.
    loaded = load_tf1_checkpoint(str(tmp_path), num_heads=2, generator_num_heads=1)
    assert loaded["checkpoint"].endswith("model.ckpt-1000")
    for ours, theirs in ((loaded["discriminator"], disc), (loaded["generator"], gen)):
        for a, b in zip(our_outputs(ours, batch), hf_outputs(theirs, batch)):
            assert_close_on_real_tokens(a, b, batch[2])

    with pytest.raises(CheckpointError, match="not divisible by num_heads=3"):
        load_tf1_checkpoint(str(tmp_path), num_heads=3)

    # Every variable is imported, training state, or named (a fine-tuning head here).
    extra = dict(variables, **{"global_step": np.array(7, np.int64),
                               "electra/encoder/layer_0/output/dense/kernel/adam_m":
                                   variables["electra/encoder/layer_0/output/dense/kernel"],
                               "classifier/output_weights": np.zeros((2, 32), np.float32)})
    write_tf1_checkpoint(extra, str(tmp_path / "finetuned"))
    with caplog.at_level("WARNING", logger="electra_tf"):
        load_tf1_checkpoint(str(tmp_path / "finetuned"), num_heads=2, generator_num_heads=1)
    notes = [r.getMessage() for r in caplog.records if "Not imported" in r.getMessage()]
    assert len(notes) == 1 and "classifier/output_weights" in notes[0]
    assert "adam_m" not in notes[0] and "global_step" not in notes[0]
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no TF checkpoint"):
        load_tf1_checkpoint(str(tmp_path / "empty"))
    with pytest.raises(CheckpointError, match="Cannot read TF checkpoint"):
        load_tf1_checkpoint(str(tmp_path / "missing" / "model.ckpt-5"))


def test_cli_import_writes_a_directory_finetuning_accepts(tmp_path, batch, capsys):
    import keras

    from electra_tf.cli import main

    disc = hf_model(transformers.ElectraForPreTraining)
    write_tf1_checkpoint(tf1_names(disc.state_dict(), "electra"), str(tmp_path))
    assert main(["import", "--source", str(tmp_path), "--out-dir", str(tmp_path / "out"),
                 "--num-heads", "2"]) == 2  # no vocab.txt beside the checkpoint
    assert "give --vocab" in capsys.readouterr().err
    (tmp_path / "vocab.txt").write_text("\n".join(
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(115)]) + "\n")
    assert main(["import", "--source", str(tmp_path), "--out-dir", str(tmp_path / "out"),
                 "--num-heads", "2"]) == 0
    assert sorted(os.listdir(tmp_path / "out")) == ["discriminator.keras", "run.json",
                                                     "vocab.txt"]
    restored = keras.saving.load_model(tmp_path / "out" / "discriminator.keras", safe_mode=True)
    assert_close_on_real_tokens(our_outputs(restored, batch)[0], hf_outputs(disc, batch)[0],
                                batch[2])


# ------------------------------------------------------------------ never silently wrong


def test_untied_masked_lm_head_is_refused_not_silently_dropped(tmp_path):
    untied = hf_model(transformers.ElectraForMaskedLM, hidden_size=16, intermediate_size=32,
                      tie_word_embeddings=False)
    assert not torch.equal(untied.generator_lm_head.weight,
                           untied.electra.embeddings.word_embeddings.weight)
    untied.save_pretrained(tmp_path / "untied")
    with pytest.raises(CheckpointError, match="not tied to the word embeddings"):
        load_huggingface(str(tmp_path / "untied"))
    # The same config with the weights tied (equal matrices) imports: nothing would be lost.
    with torch.no_grad():
        untied.generator_lm_head.weight.copy_(untied.electra.embeddings.word_embeddings.weight)
    untied.save_pretrained(tmp_path / "equal")
    assert type(load_huggingface(str(tmp_path / "equal"))).__name__ == "Generator"


def test_every_source_tensor_is_imported_or_named(tmp_path, caplog):
    hf_model(transformers.ElectraForSequenceClassification, num_labels=3).save_pretrained(
        tmp_path / "classifier")
    with caplog.at_level("WARNING", logger="electra_tf"):
        load_huggingface(str(tmp_path / "classifier"))
    message = " ".join(r.getMessage() for r in caplog.records if "Not imported" in
                       r.getMessage())
    for name in ("classifier.dense.weight", "classifier.dense.bias", "classifier.out_proj.weight",
                 "classifier.out_proj.bias"):
        assert name in message
    assert "sequence-classification head" in message
    # A tensor of the encoder that config.json does not describe is a disagreement, refused.
    from safetensors.numpy import load_file, save_file

    folder = _saved(tmp_path / "extra", transformers.ElectraForPreTraining)
    tensors = load_file(os.path.join(folder, "model.safetensors"))
    tensors["electra.encoder.layer.2.output.dense.bias"] = np.zeros(32, np.float32)
    save_file(tensors, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="does not describe"):
        load_huggingface(folder)
    # A complete discriminator leaves nothing unaccounted for: no warning at all.
    caplog.clear()
    with caplog.at_level("WARNING", logger="electra_tf"):
        load_huggingface(_saved(tmp_path / "plain", transformers.ElectraForPreTraining))
    assert not caplog.records


@pytest.mark.parametrize("cased", [False, True])
def test_exported_tokenizer_splits_text_as_training_did(tiny_pretrained_run, tmp_path, cased):
    import shutil

    from electra_tf.convert import export_huggingface
    from electra_tf.data.tokenizer import WordPieceTokenizer
    from electra_tf.files import read_json, write_json

    run_dir = tmp_path / "run"
    shutil.copytree(tiny_pretrained_run, run_dir)
    write_json(run_dir / "run.json", dict(read_json(run_dir / "run.json"), lower_case=not cased))
    export_huggingface(str(run_dir), str(tmp_path / "hf"))
    theirs = transformers.ElectraTokenizer.from_pretrained(tmp_path / "hf" / "discriminator")
    ours = WordPieceTokenizer(str(run_dir / "vocab.txt"), lower_case=not cased)
    text = "Hello WORLD, the Café was GREAT! 日本 naïve über-cool film."
    expected = ours.tokenize([text]).to_list()[0]
    assert theirs(text, add_special_tokens=False)["input_ids"] == expected
    # The cased and uncased runs really do split this text differently.
    other = WordPieceTokenizer(str(run_dir / "vocab.txt"), lower_case=cased)
    assert other.tokenize([text]).to_list()[0] != expected


def test_damaged_or_foreign_huggingface_folders_are_named_as_such(tmp_path):
    from electra_tf.convert import import_pretrained

    folder = _saved(tmp_path / "m", transformers.ElectraForPreTraining)
    config_path = os.path.join(folder, "config.json")
    config = json.loads(open(config_path).read())
    open(config_path, "w").write(json.dumps(dict(config, num_attention_heads=3)))
    with pytest.raises(CheckpointError, match="not divisible by num_attention_heads 3"):
        load_huggingface(folder)
    open(config_path, "w").write(json.dumps(config)[:40])
    with pytest.raises(CheckpointError, match="config.json is damaged"):
        load_huggingface(folder)
    open(config_path, "w").write(json.dumps(config))
    weights = os.path.join(folder, "model.safetensors")
    data = open(weights, "rb").read()
    open(weights, "wb").write(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match="probably truncated"):
        load_huggingface(folder)
    # A BERT folder given to import is reported as "not ELECTRA", not as a TF1 folder.
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(CheckpointError, match="'bert' model, not ELECTRA"):
        import_pretrained(str(tmp_path / "bert"), str(tmp_path / "out"))


def test_a_pickle_holding_more_than_tensors_is_refused(tmp_path):
    folder = tmp_path / "m"
    hf_model(transformers.ElectraForPreTraining).save_pretrained(folder)
    (folder / "model.safetensors").unlink()
    torch.save({"weights": torch.zeros(2), "payload": os.system},  # code, not a tensor
               folder / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="refused"):
        load_huggingface(str(folder))


@pytest.mark.parametrize("damage", ["truncated data", "garbage index", "flipped bits"])
def test_a_damaged_tf1_checkpoint_is_one_clear_error(tmp_path, damage):
    """Issue 55, defect 6: a truncated data file ("Read less bytes than requested"), a garbage
    index ("not an sstable") and flipped bits ("Checksum does not match") were tracebacks."""
    from electra_tf.convert.tf1 import load_tf1_checkpoint

    disc = hf_model(transformers.ElectraForPreTraining)
    prefix = write_tf1_checkpoint(tf1_names(disc.state_dict(), "electra"), str(tmp_path))
    data, index = prefix + ".data-00000-of-00001", prefix + ".index"
    if damage == "truncated data":
        with open(data, "r+b") as f:
            f.truncate(os.path.getsize(data) // 2)
    elif damage == "garbage index":
        with open(index, "wb") as f:
            f.write(b"this is not a checkpoint index" * 10)
    else:
        raw = bytearray(open(data, "rb").read())
        for position in range(100, len(raw), 997):
            raw[position] ^= 0xFF
        with open(data, "wb") as f:
            f.write(raw)
    with pytest.raises(CheckpointError, match="is damaged"):
        load_tf1_checkpoint(str(tmp_path), num_heads=2)


@pytest.mark.slow(seconds=30)
def test_an_imported_masked_lm_fine_tunes_with_the_command_import_prints(tmp_path, capsys):
    """Issue 55, defect 10: importing an ElectraForMaskedLM printed "Fine-tune it: electra-tf
    finetune --pretrained OUT ...", and that command failed (no discriminator.keras). A folder
    holding only a generator now fine-tunes its encoder, and the line says so."""
    from electra_tf.cli import main
    from electra_tf.data import SAMPLE_LABELLED

    source = _saved(tmp_path / "hf", transformers.ElectraForMaskedLM, hidden_size=16,
                    intermediate_size=32, num_attention_heads=2, embedding_size=16)
    (tmp_path / "hf" / "vocab.txt").write_text("\n".join(
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(115)]) + "\n")
    imported = tmp_path / "imported"
    assert main(["import", "--source", source, "--out-dir", str(imported)]) == 0
    printed = capsys.readouterr().out
    command = re.search(r"Fine-tune it[^:]*: electra-tf (finetune --pretrained \S+) --out-dir",
                        printed)
    assert command and "generator's encoder" in printed, printed
    tuned = tmp_path / "tuned"
    assert main(command.group(1).split() + [
        "--task", "csv", "--data", SAMPLE_LABELLED, "--out-dir", str(tuned), "--set",
        "task.max_train_examples=16", "--set", "preprocessing.max_seq_length=16", "--set",
        "training.epochs=1", "--quiet"]) == 0
    assert (tuned / "classifier.keras").exists()
