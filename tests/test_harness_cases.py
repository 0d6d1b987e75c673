"""Every layer and model through the shared harness (tests/harness.py)."""

import numpy as np
import pytest
from harness import run_layer_checks

from conftest import TINY_ENCODER, TINY_MODEL_CONFIG, TINY_PRETRAINING_CONFIG
from electra_tf.layers import (
    ElectraEmbeddings,
    ElectraEncoder,
    MaskedLMHead,
    MultiHeadSelfAttention,
    ReplacedTokenDetectionHead,
    TransformerEncoderBlock,
)
from electra_tf.models import Discriminator, ElectraPretrainer, Generator

RNG = np.random.default_rng(0)
HIDDEN = RNG.normal(size=(3, 12, 24)).astype("float32")
MASK = np.array([[1] * 12, [1] * 9 + [0] * 3, [1] * 5 + [0] * 7], dtype="int32")


def _shorter(batch):
    return {k: v[:, :7] for k, v in batch.items()}


@pytest.mark.parametrize("position_embedding", ["learned", "sinusoidal"])
def test_embeddings(position_embedding, token_batch, tmp_path):
    run_layer_checks(
        ElectraEmbeddings,
        dict(vocab_size=50, embedding_size=16, max_position_embeddings=32,
             position_embedding=position_embedding),
        (token_batch["token_ids"], token_batch["segment_ids"]), (3, 12, 16), tmp_path,
        shorter_inputs=(token_batch["token_ids"][:, :7], token_batch["segment_ids"][:, :7]))


def test_attention(tmp_path):
    run_layer_checks(MultiHeadSelfAttention, dict(num_heads=3, key_dim=8),
                     (HIDDEN, MASK), (3, 12, 24), tmp_path,
                     shorter_inputs=(HIDDEN[:, :7], MASK[:, :7]))


def test_encoder_block(tmp_path):
    run_layer_checks(TransformerEncoderBlock, dict(num_heads=2, intermediate_size=48),
                     (HIDDEN, MASK), (3, 12, 24), tmp_path,
                     shorter_inputs=(HIDDEN[:, :7], MASK[:, :7]))


def test_encoder(token_batch, tmp_path):
    run_layer_checks(ElectraEncoder, TINY_ENCODER, token_batch, (3, 12, 24), tmp_path,
                     shorter_inputs=_shorter(token_batch))


def test_mlm_head(tmp_path):
    embedding_matrix = RNG.normal(size=(50, 16)).astype("float32")
    run_layer_checks(MaskedLMHead, dict(vocab_size=50, embedding_size=16),
                     (HIDDEN[:, :4], embedding_matrix), (3, 4, 50), tmp_path)


def test_rtd_head(tmp_path):
    run_layer_checks(ReplacedTokenDetectionHead, {}, HIDDEN, (3, 12), tmp_path,
                     shorter_inputs=HIDDEN[:, :7])


def test_generator(token_batch, tmp_path):
    run_layer_checks(Generator, lambda: Generator(ElectraEncoder(**TINY_ENCODER)), token_batch,
                     (3, 12, 50), tmp_path, shorter_inputs=_shorter(token_batch))


def test_discriminator(token_batch, tmp_path):
    run_layer_checks(Discriminator, lambda: Discriminator(ElectraEncoder(**TINY_ENCODER)),
                     token_batch, (3, 12), tmp_path, shorter_inputs=_shorter(token_batch))


@pytest.mark.parametrize("electra_objective", [True, False])
def test_pretrainer(electra_objective, token_batch, tmp_path):
    pretraining = dict(TINY_PRETRAINING_CONFIG, electra_objective=electra_objective)
    expected = {"masked_token_ids": (3, 12), "masked_positions": (3, 2), "mlm_logits": (3, 2, 50)}
    if electra_objective:
        expected.update(corrupted_token_ids=(3, 12), disc_logits=(3, 12))
    run_layer_checks(
        ElectraPretrainer,
        lambda: ElectraPretrainer(TINY_MODEL_CONFIG, pretraining, seed=3),
        token_batch, expected, tmp_path, call_kwargs={"training": False},
        shorter_inputs=_shorter(token_batch))
