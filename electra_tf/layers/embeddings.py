"""Input embeddings: word + position + token type -> LayerNorm -> dropout."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from electra_tf.layers.dropout import HalfBitsDropout
from electra_tf.layers.matmul import ReloadsDTypePolicy
from electra_tf.layers.normalization import LayerNorm

POSITION_EMBEDDINGS = ("learned", "sinusoidal", "none")


def sinusoidal_position_encoding(num_positions: int, dim: int) -> np.ndarray:
    """The Transformer's fixed position encoding (Vaswani et al. 2017, section 3.5).

        PE[pos, 2i]   = sin(pos / 10000^(2i / dim))
        PE[pos, 2i+1] = cos(pos / 10000^(2i / dim))

    Sine on even dimensions, cosine on odd ones, interleaved -- not "sin for the first half and
    cos for the second half" as several articles write it.

    Returns:
        float32 array of shape `[num_positions, dim]`.
    """
    positions = np.arange(num_positions, dtype=np.float64)[:, None]
    even_dims = np.arange(0, dim, 2, dtype=np.float64)  # the "2i" of the formula
    angles = positions / np.power(10000.0, even_dims / dim)
    encoding = np.zeros((num_positions, dim), dtype=np.float64)
    encoding[:, 0::2] = np.sin(angles)
    encoding[:, 1::2] = np.cos(angles[:, : dim // 2])
    return encoding.astype("float32")


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraEmbeddings(ReloadsDTypePolicy, keras.layers.Layer):
    """Word + position + token-type embeddings, then LayerNorm and dropout (BERT/ELECTRA style).

    In ELECTRA pretraining one instance is shared by the generator and the discriminator
    ("tied embeddings"); each network then has its own E->H projection, which is why the
    projection lives in `ElectraEncoder`, not here.

    Args:
        vocab_size: number of word pieces V.
        embedding_size: embedding width E.
        max_position_embeddings: longest supported sequence.
        type_vocab_size: number of segment ids (2: sentence A / B).
        position_embedding: "learned" (ELECTRA, BERT), "sinusoidal" (fixed, Vaswani et al.) or
            "none" (positions come from elsewhere, e.g. an ALiBi attention bias).
        dropout: dropout rate after the LayerNorm.
        layer_norm_epsilon: LayerNorm epsilon (1e-12 in BERT/ELECTRA).
        initializer_range: stddev of the truncated-normal initialiser.

    Call args:
        token_ids: int tensor `[batch, seq_len]`.
        segment_ids: optional int tensor `[batch, seq_len]` (zeros when omitted).

    Returns:
        float tensor `[batch, seq_len, embedding_size]`.

    Example:
    >>> layer = ElectraEmbeddings(vocab_size=100, embedding_size=16)
    >>> layer(np.array([[1, 2, 3]])).shape
    TensorShape([1, 3, 16])
    """

    def __init__(self, vocab_size, embedding_size, max_position_embeddings=512, type_vocab_size=2,
                 position_embedding="learned", dropout=0.1, layer_norm_epsilon=1e-12,
                 initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        if position_embedding not in POSITION_EMBEDDINGS:
            raise ValueError(f"position_embedding must be one of {POSITION_EMBEDDINGS}, got "
                             f"{position_embedding!r}.")
        self.vocab_size = vocab_size
        self.embedding_size = embedding_size
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.position_embedding = position_embedding
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.initializer_range = initializer_range

        init = keras.initializers.TruncatedNormal(stddev=initializer_range)
        self.word_embeddings = self._make_word_embeddings(init)
        if position_embedding == "learned":
            self.position_embeddings = keras.layers.Embedding(
                max_position_embeddings, embedding_size, embeddings_initializer=init,
                dtype=self.dtype_policy, name="position_embeddings")
        else:
            self.position_embeddings = None
        self.token_type_embeddings = keras.layers.Embedding(
            type_vocab_size, embedding_size, embeddings_initializer=init,
            dtype=self.dtype_policy, name="token_type_embeddings")
        self.layer_norm = LayerNorm(
            epsilon=layer_norm_epsilon, dtype=self.dtype_policy, name="layer_norm")
        self.dropout_layer = HalfBitsDropout(dropout, dtype=self.dtype_policy)

    def _make_word_embeddings(self, initializer):
        return keras.layers.Embedding(
            self.vocab_size, self.embedding_size, embeddings_initializer=initializer,
            dtype=self.dtype_policy, name="word_embeddings")

    def build(self, token_ids_shape, segment_ids_shape=None):
        self.word_embeddings.build(token_ids_shape)
        if self.position_embeddings is not None:
            self.position_embeddings.build((None,))
        elif self.position_embedding == "sinusoidal":
            # Fixed, so not a weight: rebuilt from the formula, never saved or trained.
            self._sinusoid = sinusoidal_position_encoding(
                self.max_position_embeddings, self.embedding_size)
        self.token_type_embeddings.build(token_ids_shape)
        self.layer_norm.build(tuple(token_ids_shape) + (self.embedding_size,))
        self.built = True

    @property
    def embedding_matrix(self):
        """The word-embedding matrix `[vocab_size, embedding_size]` (the generator's output layer)."""
        return self.word_embeddings.embeddings

    def _word_vectors(self, token_ids):
        """`[batch, seq_len, E]` word vectors of `token_ids`."""
        return self.word_embeddings(token_ids)

    def position_vectors(self, num_positions: int | None = None):
        """The vectors added for positions `0 .. num_positions-1` (all when None), before the
        LayerNorm: float tensor `[num_positions, embedding_size]`. Learned weights, or the fixed
        sinusoid table; for inspecting and plotting the two kinds side by side."""
        if self.position_embedding == "none":
            raise ValueError("This embedding layer adds no position vectors "
                             "(position_embedding='none').")
        if not self.built:
            self.build((None, None))
        num_positions = num_positions or self.max_position_embeddings
        if self.position_embeddings is not None:
            return self.position_embeddings(ops.arange(num_positions))
        return ops.convert_to_tensor(self._sinusoid[:num_positions])

    def _token_type_vectors(self, segment_ids):
        """`[batch, seq_len, E]` token-type vectors as a one-hot matmul, not a gather.

        A gather's gradient is an `IndexedSlices` with one row per token, and with segment ids
        nearly all of them name row 0. Keras 3's Adam/AdamW on TensorFlow apply such gradients
        row by row, so row 0 -- added to every token -- would take steps up to sqrt(batch *
        seq_len) times too large and drown out the tokens (with `compile(optimizer="adamw")` a
        discriminator then learns nothing). The matmul gives a dense [2, E] gradient instead:
        the same values and output, for a negligible cost. `ElectraAdamW` densifies anyway.
        A lookup, not a projection: it stays in the compute dtype under bfloat16_matmul (float32,
        like the word and position gathers), not in the matmul dtype.
        """
        table = ops.cast(self.token_type_embeddings.embeddings, self.compute_dtype)
        one_hot = ops.one_hot(segment_ids, self.type_vocab_size, dtype=self.compute_dtype)
        return ops.matmul(one_hot, table)

    def call(self, token_ids, segment_ids=None, training=None):
        seq_len = ops.shape(token_ids)[1]
        if segment_ids is None:
            segment_ids = ops.zeros_like(token_ids)
        x = self._word_vectors(token_ids) + self._token_type_vectors(segment_ids)
        if self.position_embeddings is not None:
            x = x + ops.expand_dims(self.position_embeddings(ops.arange(seq_len)), 0)
        elif self.position_embedding == "sinusoidal":
            x = x + ops.expand_dims(ops.cast(ops.convert_to_tensor(self._sinusoid)[:seq_len],
                                             self.compute_dtype), 0)
        x = self.layer_norm(x)
        return self.dropout_layer(x, training=training)

    def compute_output_shape(self, token_ids_shape, segment_ids_shape=None):
        return tuple(token_ids_shape) + (self.embedding_size,)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            embedding_size=self.embedding_size,
            max_position_embeddings=self.max_position_embeddings,
            type_vocab_size=self.type_vocab_size,
            position_embedding=self.position_embedding,
            dropout=self.dropout,
            layer_norm_epsilon=self.layer_norm_epsilon,
            initializer_range=self.initializer_range,
        )
        return config


class DisentangledEmbeddings(ElectraEmbeddings):
    """The discriminator's embedding block under gradient-disentangled embedding sharing
    (DeBERTaV3, He et al. 2021, arXiv 2111.09543, section 3.2).

    Word vectors are `stop_gradient(shared word vectors) + own residual`: the shared table (the
    generator's, also its MLM output layer) is trained by the masked-LM loss alone, and the
    discriminator's replaced-token loss trains only the residual. With plain tying (ELECTRA) the
    two losses pull the one table in different directions; DeBERTaV3 found the disentangled
    version trains faster and transfers better. Position and token-type vectors and the
    LayerNorm are the discriminator's own.

    Used only inside `ElectraPretrainer` (`pretraining.embedding_sharing: gradient_disentangled`);
    `folded()` turns it into a plain `ElectraEmbeddings` holding `shared + residual`, which is
    what the saved discriminator contains, so fine-tuning and export never see this class.

    Args:
        shared: the generator's `ElectraEmbeddings` (built or not).
        vocab_size, embedding_size, **kwargs: as `ElectraEmbeddings`; the sizes must match
            `shared`'s.

    Call args / returns: as `ElectraEmbeddings` (`[batch, seq_len]` ids ->
    `[batch, seq_len, embedding_size]`).
    """

    def __init__(self, shared: ElectraEmbeddings, vocab_size, embedding_size, **kwargs):
        if (shared.vocab_size, shared.embedding_size) != (vocab_size, embedding_size):
            raise ValueError(
                f"Shared embeddings have vocab_size={shared.vocab_size}, embedding_size="
                f"{shared.embedding_size}; the residual needs {vocab_size}, {embedding_size}.")
        self.shared = shared
        super().__init__(vocab_size, embedding_size, **kwargs)

    def _make_word_embeddings(self, initializer):
        # The residual, zero at the start: step 0 sees exactly the shared vectors, as with tying.
        return keras.layers.Embedding(
            self.vocab_size, self.embedding_size, embeddings_initializer="zeros",
            dtype=self.dtype_policy, name="word_embedding_residual")

    def build(self, token_ids_shape, segment_ids_shape=None):
        if not self.shared.built:
            self.shared.build(token_ids_shape)
        super().build(token_ids_shape, segment_ids_shape)

    @property
    def embedding_matrix(self):
        """The discriminator's effective word table `[vocab_size, embedding_size]`."""
        return self.shared.embedding_matrix + self.word_embeddings.embeddings

    def _word_vectors(self, token_ids):
        # Two gathers rather than gathering from `shared + residual`: no [V, E] sum per step, and
        # the residual's gradient stays a sparse IndexedSlices like any embedding's.
        return (ops.stop_gradient(self.shared.word_embeddings(token_ids))
                + self.word_embeddings(token_ids))

    def folded(self) -> ElectraEmbeddings:
        """A plain, built `ElectraEmbeddings` (same config) whose word table is
        `shared + residual` and whose other weights are this block's."""
        plain = ElectraEmbeddings.from_config(self.get_config())
        plain.build((None, None))
        plain.word_embeddings.set_weights([ops.convert_to_numpy(self.embedding_matrix)])
        for own, target in ((self.position_embeddings, plain.position_embeddings),
                            (self.token_type_embeddings, plain.token_type_embeddings),
                            (self.layer_norm, plain.layer_norm)):
            if own is not None:
                target.set_weights(own.get_weights())
        return plain
