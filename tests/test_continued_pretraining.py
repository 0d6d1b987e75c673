"""Continued pretraining (`pretrain --init-from`): from every kind of source, the new run's
generator and discriminator compute at step 0 exactly what the source's compute; the command
takes the source's architecture, vocabulary and casing, records the source, and refuses a
mismatch in one line."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from electra_tf.cli import main
from electra_tf.data.vocab import SPECIAL_TOKENS, save_vocabulary
from electra_tf.models.pretrainer import ElectraPretrainer
from electra_tf.pretrained.init_from import pretrainer_from_source

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

# A discriminator and a generator of the authors' shapes (heads of 64, generator FFN 4x), so
# that a TF1 checkpoint, which records no head counts, is read back with the right ones.
DISC = dict(vocab_size=120, embedding_size=32, hidden_size=64, num_hidden_layers=2,
            num_attention_heads=1, intermediate_size=128, max_position_embeddings=40,
            type_vocab_size=2, hidden_act="gelu", layer_norm_eps=1e-12)
GEN = dict(DISC, hidden_size=16, intermediate_size=64)


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 120, (3, 12)).astype("int64")
    mask = np.ones((3, 12), "int64")
    mask[1, 8:] = 0
    ids[mask == 0] = 0
    segments = np.zeros_like(ids)
    segments[0, 6:] = 1
    return ids, segments, mask


def _torch_pair():
    """Random HuggingFace networks that share their embedding block, as ELECTRA's do."""
    def build(cls, config, seed):
        torch.manual_seed(seed)
        model = cls(transformers.ElectraConfig(**config))
        with torch.no_grad():  # non-zero biases and LayerNorms, so a swap would show
            for param in model.parameters():
                param.add_(0.05 * torch.randn_like(param))
        return model.eval()

    disc = build(transformers.ElectraForPreTraining, DISC, 0)
    gen = build(transformers.ElectraForMaskedLM, GEN, 1)
    gen.electra.embeddings.load_state_dict(disc.electra.embeddings.state_dict())
    gen.generator_lm_head.weight = gen.electra.embeddings.word_embeddings.weight
    return disc, gen


def _torch_logits(model, batch):
    ids, segments, mask = (torch.tensor(a) for a in batch)
    with torch.no_grad():
        return model(input_ids=ids, token_type_ids=segments, attention_mask=mask).logits.numpy()


def _our_logits(network, batch):
    ids, segments, mask = batch
    return network({"token_ids": ids.astype("int32"), "segment_ids": segments.astype("int32"),
                    "padding_mask": mask.astype("int32")}, training=False).numpy()


def _assert_same(pretrainer, disc, gen, batch):
    mask = batch[2].astype(bool)
    np.testing.assert_allclose(_our_logits(pretrainer.discriminator, batch)[mask],
                               _torch_logits(disc, batch)[mask], atol=1e-4)
    np.testing.assert_allclose(_our_logits(pretrainer.generator, batch)[mask],
                               _torch_logits(gen, batch)[mask], atol=1e-4)


def _vocab(folder):
    save_vocabulary(list(SPECIAL_TOKENS) + [f"w{i}" for i in range(120 - len(SPECIAL_TOKENS))],
                    os.path.join(folder, "vocab.txt"))


def test_huggingface_tf1_and_imported_sources_start_from_their_own_logits(tmp_path, batch,
                                                                          caplog):
    from test_convert import tf1_names, write_tf1_checkpoint

    disc, gen = _torch_pair()
    for name, model in (("disc", disc), ("gen", gen)):
        model.save_pretrained(str(tmp_path / name))
        _vocab(tmp_path / name)
    pretrainer, networks = pretrainer_from_source(str(tmp_path / "disc"),
                                                  generator=str(tmp_path / "gen"))
    _assert_same(pretrainer, disc, gen, batch)
    assert networks.model_config.generator_hidden_fraction == 0.25
    assert networks.record["kind"] == "huggingface"
    assert networks.record["generator"]["kind"] == "huggingface"

    # Google's TF1 pretraining checkpoint holds both networks; `electra-tf import` of it too.
    variables = dict(tf1_names(disc.state_dict(), "electra"))
    variables.update({k: v for k, v in tf1_names(gen.state_dict(), "generator").items()
                      if not k.startswith("electra/")})
    (tmp_path / "tf1").mkdir()
    write_tf1_checkpoint(variables, str(tmp_path / "tf1"))
    _vocab(tmp_path / "tf1")
    pretrainer, networks = pretrainer_from_source(str(tmp_path / "tf1"))
    _assert_same(pretrainer, disc, gen, batch)
    assert networks.record["kind"] == "tf1"
    assert main(["import", "--source", str(tmp_path / "tf1"), "--out-dir",
                 str(tmp_path / "imported")]) == 0
    pretrainer = ElectraPretrainer.from_pretrained(str(tmp_path / "imported"))  # from Python
    _assert_same(pretrainer, disc, gen, batch)

    # A discriminator alone: its weights, and a fresh generator (said in a warning).
    with caplog.at_level("WARNING", logger="electra_tf"):
        pretrainer, networks = pretrainer_from_source(str(tmp_path / "disc"))
    assert networks.generator is None and "fresh generator" in caplog.text
    mask = batch[2].astype(bool)
    np.testing.assert_allclose(_our_logits(pretrainer.discriminator, batch)[mask],
                               _torch_logits(disc, batch)[mask], atol=1e-4)


def test_a_preset_starts_from_its_discriminator_and_a_fresh_generator(batch):
    """Presets ship the discriminator only (what fine-tuning needs)."""
    from electra_tf.pretrained.resolve import resolve
    from electra_tf.runs.keras_files import load_keras_model

    pretrainer, networks = pretrainer_from_source("electra_cpu_imdb_long")
    assert networks.record["kind"] == "preset" and networks.lower_case
    assert networks.generator is None
    source = load_keras_model(os.path.join(resolve("electra_cpu_imdb_long").path,
                                           "discriminator.keras"))
    inputs = {"token_ids": (batch[0] % 8000 + 5).astype("int32")}
    np.testing.assert_allclose(pretrainer.discriminator(inputs, training=False).numpy(),
                               source(inputs, training=False).numpy(), atol=1e-5)


@pytest.mark.slow(seconds=40)
def test_the_command_continues_a_run_records_it_and_refuses_mismatches(tiny_pretrained_run,
                                                                      tmp_path, capsys):
    from electra_tf.runs.keras_files import load_keras_model

    corpus = os.path.join(os.path.dirname(tiny_pretrained_run), "reviews.txt")
    out = tmp_path / "continued"
    # A learning rate of 1e-30 (0 is refused): the products must then be the source's
    # networks, weight for weight, which shows what step 0 started from.
    command = ["pretrain", "--init-from", tiny_pretrained_run, "--corpus", corpus,
               "--out-dir", str(out), "--steps", "2", "--batch-size", "4", "--save-every", "2",
               "--log-every", "2", "--set", "optimizer.learning_rate=1e-30", "--quiet"]
    assert main(command) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["init_from"]["kind"] == "pretraining run"
    assert run["init_from"]["path"] == tiny_pretrained_run
    source_config = (open(os.path.join(tiny_pretrained_run, "config.yaml")).read()
                     .split("pretraining:")[0])
    assert (out / "config.yaml").read_text().split("pretraining:")[0] == source_config
    assert (out / "vocab.txt").read_text() == \
        open(os.path.join(tiny_pretrained_run, "vocab.txt")).read()
    for name in ("discriminator", "generator"):
        ours = load_keras_model(str(out / f"{name}.keras")).get_weights()
        theirs = load_keras_model(os.path.join(tiny_pretrained_run, f"{name}.keras")) \
            .get_weights()
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-20, err_msg=name)
    capsys.readouterr()
    assert main(command) == 0  # the same command again: finished, nothing to do

    # Mismatches are one line each, and nothing is written.
    other_vocab = tmp_path / "other_vocab.txt"
    save_vocabulary(list(SPECIAL_TOKENS) + ["a", "b"], str(other_vocab))
    cases = [
        (command + ["--vocab", str(other_vocab)],
         "is not the vocabulary of"),
        (command + ["--cased"], "leave --cased out"),
        (["pretrain", "--corpus", corpus, "--out-dir", str(out), "--steps", "2",
          "--init-generator", tiny_pretrained_run], "goes with --init-from"),
        ([c if c != tiny_pretrained_run else "electra_cpu_imdb" for c in command],
         "holds a run started from"),
        ([c if c != tiny_pretrained_run else str(tmp_path / "missing") for c in command],
         "does not exist"),
        ([c if c != tiny_pretrained_run else os.path.join(tiny_pretrained_run,
                                                           "discriminator.keras")
          for c in command], "cannot be pretrained further"),
    ]
    for args, message in cases:
        capsys.readouterr()
        assert main(args) == 2, args
        error = capsys.readouterr().err.strip()
        assert message in error and "\n" not in error, error
