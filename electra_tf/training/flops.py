"""Analytic FLOP counts of pretraining steps, to compare objectives at equal compute.

Counts matrix multiplications only (2 FLOPs per multiply-add), which dominate the cost; a
training step is 3x the forward pass (backward = 2x forward), the usual approximation the paper's
compute comparisons also use. Embedding lookups, LayerNorm, softmax and GELU are left out.
"""

from __future__ import annotations

from electra_tf.config import ElectraConfig


def encoder_forward_flops(hidden: int, layers: int, intermediate: int, embedding: int,
                          seq_len: int, ffn_convolution_kernel: int = 0) -> float:
    """FLOPs of one sequence through an encoder (embedding projection + Transformer blocks)."""
    per_token_block = 2 * (4 * hidden * hidden + 2 * hidden * intermediate)  # QKVO + FFN
    per_token_block += 2 * ffn_convolution_kernel * intermediate  # depthwise, when present
    attention = 2 * 2 * seq_len * hidden  # QK^T and probabilities x V, per token
    projection = 2 * embedding * hidden if embedding != hidden else 0
    return seq_len * (layers * (per_token_block + attention) + projection)


def pretraining_flops_per_sequence(config: ElectraConfig) -> float:
    """Training FLOPs (forward + backward) per sequence of `config`'s objective.

    ELECTRA: the small generator over all tokens + its MLM head at the masked positions, plus the
    discriminator over all tokens + its per-token head. MLM (`electra_objective: false`): the
    full-size network over all tokens + the MLM head at the masked positions.
    """
    m, p = config.model, config.pretraining
    L, E, V, P = p.max_seq_length, m.embedding_size, m.vocab_size, p.num_predictions
    conv = m.ffn_convolution_kernel

    def mlm_head(hidden):  # dense(hidden -> E) + tied output layer (E -> V) at P positions
        return P * 2 * (hidden * E + E * V)

    if p.electra_objective:
        g = m.generator_hidden_size
        generator = (encoder_forward_flops(g, m.num_layers, 4 * g, E, L, conv)
                     + mlm_head(g))
        discriminator = (encoder_forward_flops(m.hidden_size, m.num_layers,
                                               m.intermediate_size, E, L, conv)
                         + L * 2 * (m.hidden_size * m.hidden_size + m.hidden_size))
        forward = generator + discriminator
    else:
        forward = (encoder_forward_flops(m.hidden_size, m.num_layers, m.intermediate_size, E, L,
                                         conv)
                   + mlm_head(m.hidden_size))
    return 3.0 * forward
