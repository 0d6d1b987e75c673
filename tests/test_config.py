"""Typed YAML configs: paper values, unknown keys, types and overrides."""

import os

import pytest

from conftest import CONFIG_DIR
from electra_tf import ConfigError, ElectraConfig, load_config


def _path(name):
    return os.path.join(CONFIG_DIR, f"{name}.yaml")


@pytest.mark.parametrize("name, layers, hidden, ffn, heads, emb, gen, mask, lr, batch, steps, seq", [
    ("electra_small", 12, 256, 1024, 4, 128, 0.25, 0.15, 5e-4, 128, 1_000_000, 128),
    ("electra_base", 12, 768, 3072, 12, 768, 0.333333, 0.15, 2e-4, 256, 766_000, 512),
    ("electra_large", 24, 1024, 4096, 16, 1024, 0.25, 0.25, 2e-4, 2048, 400_000, 512),
])
def test_paper_table_6(name, layers, hidden, ffn, heads, emb, gen, mask, lr, batch, steps, seq):
    c = load_config(_path(name))
    m, p, o = c.model, c.pretraining, c.optimizer
    assert (m.num_layers, m.hidden_size, m.intermediate_size, m.num_heads, m.embedding_size) == (
        layers, hidden, ffn, heads, emb)
    assert m.generator_hidden_fraction == pytest.approx(gen)
    assert (p.mask_prob, o.learning_rate, o.batch_size, o.train_steps, p.max_seq_length) == (
        mask, lr, batch, steps, seq)
    assert (m.vocab_size, o.warmup_steps, o.epsilon, o.weight_decay, p.disc_weight) == (
        30522, 10000, 1e-6, 0.01, 50.0)
    assert m.layer_norm_epsilon == 1e-12 and m.dropout == 0.1


def test_max_predictions_follows_the_authors_rule():
    assert load_config(_path("electra_small")).pretraining.num_predictions == 19
    assert load_config(_path("electra_large")).pretraining.num_predictions == 130


def test_unknown_key_is_named(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  hiden_size: 128\n")
    with pytest.raises(ConfigError, match=r"'model\.hiden_size'.*Valid keys.*hidden_size"):
        load_config(path)
    with pytest.raises(ConfigError, match="Unknown config key 'trainer'"):
        ElectraConfig.from_dict({"trainer": {}})


def test_wrong_types_are_named():
    with pytest.raises(ConfigError, match="model.num_layers must be an integer"):
        ElectraConfig.from_dict({"model": {"num_layers": "twelve"}})
    with pytest.raises(ConfigError, match="pretraining.electra_objective must be true or false"):
        ElectraConfig.from_dict({"pretraining": {"electra_objective": "yes"}})
    with pytest.raises(ConfigError, match="position_embedding must be one of"):
        ElectraConfig.from_dict({"model": {"position_embedding": "rotary"}})
    with pytest.raises(ConfigError, match="embedding_sharing must be one of.*'shared'"):
        ElectraConfig.from_dict({"pretraining": {"embedding_sharing": "shared"}})


def test_inconsistent_values_explain_the_fix():
    with pytest.raises(ConfigError, match="divisible by model.num_heads"):
        ElectraConfig.from_dict({"model": {"hidden_size": 100, "num_heads": 3}})
    with pytest.raises(ConfigError, match="cls_id=101 is outside the vocabulary"):
        ElectraConfig.from_dict({"model": {"vocab_size": 100}})
    with pytest.raises(ConfigError, match="share_encoder needs a generator as large"):
        ElectraConfig.from_dict({"pretraining": {"share_encoder": True}})
    with pytest.raises(ConfigError, match="set pretraining.embedding_sharing=tied"):
        ElectraConfig.from_dict({"model": {"generator_hidden_fraction": 1.0},
                                 "pretraining": {"share_encoder": True,
                                                 "embedding_sharing": "gradient_disentangled"}})


def test_overrides_and_yaml_round_trip(tmp_path):
    c = load_config(_path("electra_small"), ["model.num_layers=4", "optimizer.learning_rate=1e-3"])
    assert c.model.num_layers == 4 and c.optimizer.learning_rate == 1e-3
    c.to_yaml(tmp_path / "out.yaml")
    assert load_config(tmp_path / "out.yaml") == c
    with pytest.raises(ConfigError, match="must look like section.key=value"):
        load_config(_path("electra_small"), ["model.num_layers"])


def test_missing_file_is_clear():
    with pytest.raises(ConfigError, match="Config file not found"):
        load_config("no/such/config.yaml")


def test_shipped_names_load():
    """Notebooks and the CLI name the configs shipped inside the package (`electra_tiny`,
    `finetune/imdb`); the repository's `configs/` is a link to them."""
    from electra_tf.training import load_finetune_config

    assert load_config("electra_tiny") == load_config(_path("electra_tiny"))
    assert load_finetune_config("finetune/imdb").training.layerwise_decay == 0.8
