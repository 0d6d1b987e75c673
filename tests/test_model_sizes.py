"""Model sizes built from the shipped configs."""

import os

import pytest

from conftest import CONFIG_DIR
from electra_tf import ElectraPretrainer, load_config

# Published discriminator sizes (paper Table 1/8, model cards) with the 30,522 BERT vocabulary.
PUBLISHED = {"electra_small": 14e6, "electra_base": 110e6, "electra_large": 335e6}


def _build(name):
    config = load_config(os.path.join(CONFIG_DIR, f"{name}.yaml"))
    pretrainer = ElectraPretrainer(config.model, config.pretraining)
    pretrainer.build({"token_ids": (None, None)})
    return config, pretrainer


@pytest.mark.parametrize("name", ["electra_small", "electra_base",
                                  pytest.param("electra_large", marks=pytest.mark.slow(seconds=20))])
def test_discriminator_parameter_count_matches_paper(name):
    config, pretrainer = _build(name)
    count = pretrainer.discriminator.count_params()
    # "14M" is a rounded 13.5M; base and large land within 0.5% of 110M and 335M.
    assert abs(count - PUBLISHED[name]) / PUBLISHED[name] < 0.04, count


@pytest.mark.parametrize("name, hidden, heads", [("electra_small", 64, 1),
                                                 ("electra_base", 256, 4),
                                                 ("electra_tiny", 64, 1)])
def test_generator_has_documented_size(name, hidden, heads):
    config, pretrainer = _build(name)
    encoder = pretrainer.generator.encoder
    assert encoder.hidden_size == hidden == config.model.generator_hidden_size
    assert encoder.num_heads == heads == max(1, hidden // 64)
    assert encoder.intermediate_size == 4 * hidden
    assert encoder.num_layers == config.model.num_layers
    assert encoder.embeddings is pretrainer.discriminator.encoder.embeddings


def test_electra_small_exact_count():
    # Embeddings 30522*128 + 512*128 + 2*128 + LN 256; projection 128*256+256; 12 layers of
    # 4*(256*256+256) + 256*1024+1024 + 1024*256+256 + 2*512; RTD head 256*256+256 + 256+1.
    expected = (30522 * 128 + 512 * 128 + 2 * 128 + 256 + 128 * 256 + 256
                + 12 * (4 * (256 * 256 + 256) + 256 * 1024 + 1024 + 1024 * 256 + 256 + 2 * 512)
                + 256 * 256 + 256 + 256 + 1)
    _, pretrainer = _build("electra_small")
    assert pretrainer.discriminator.count_params() == expected
