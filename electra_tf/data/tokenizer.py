"""`WordPieceTokenizer`: a Keras layer that turns raw strings into WordPiece ids inside the graph.

Built on tensorflow-text's `FastBertNormalizer` + `FastWordpieceTokenizer` (end-to-end mode: it
splits on whitespace and punctuation itself, as BERT's basic tokenizer does), so it runs in
tf.data, in `tf.function`s and inside an exported SavedModel with no Python in the loop.
"""

from __future__ import annotations

import keras
import tensorflow as tf
import tensorflow_text as tf_text

from electra_tf.data.vocab import UNK, load_vocabulary, special_token_ids

# Longer "words" (URLs, base64 blobs, a 10 MB line without spaces) become one [UNK]; this is
# BERT's own limit and keeps the per-word cost bounded.
MAX_BYTES_PER_WORD = 100


def text_normalizer(lower_case: bool) -> tf_text.FastBertNormalizer:
    """The normaliser `WordPieceTokenizer` applies before splitting (lower-case + NFD + strip
    accents, or nothing but clean-up when cased); vocabulary learners feed text through it too."""
    return tf_text.FastBertNormalizer(lower_case_nfd_strip_accents=lower_case)


@keras.saving.register_keras_serializable(package="electra_tf")
class WordPieceTokenizer(keras.layers.Layer):
    """Raw text -> WordPiece token ids, lower-cased and accent-stripped like BERT-uncased.

    Args:
        vocabulary: list of tokens (id = position) or the path of a `vocab.txt`.
        lower_case: lower-case + NFD + strip accents before splitting (BERT "uncased"). Must match
            how the vocabulary was learned.

    Call args:
        inputs: string tensor `[batch]` (or a scalar string).

    Returns:
        int32 `tf.RaggedTensor` `[batch, (tokens)]` of ids, no [CLS]/[SEP] added.

    Example:
    >>> tokenizer = WordPieceTokenizer("vocab.txt")              # doctest: +SKIP
    >>> tokenizer(tf.constant(["A great movie!"])).to_list()     # doctest: +SKIP
    [[1037, 2307, 3185, 999]]
    """

    def __init__(self, vocabulary, lower_case: bool = True, **kwargs):
        kwargs.setdefault("trainable", False)
        kwargs["dtype"] = "string"  # silences Keras' float autocasting of the string input
        super().__init__(**kwargs)
        if isinstance(vocabulary, str):
            vocabulary = load_vocabulary(vocabulary)
        self.vocabulary = list(vocabulary)
        self.lower_case = bool(lower_case)
        self.special_ids = special_token_ids(self.vocabulary)
        self._normalizer = text_normalizer(self.lower_case)
        self._wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=self.vocabulary, suffix_indicator="##", max_bytes_per_word=MAX_BYTES_PER_WORD,
            token_out_type=tf.int32, unknown_token=UNK, no_pretokenization=False,
            support_detokenization=True)
        self.built = True

    @property
    def vocabulary_size(self) -> int:
        return len(self.vocabulary)

    def call(self, inputs):
        inputs = tf.convert_to_tensor(inputs, dtype=tf.string)
        return self._wordpiece.tokenize(self._normalizer.normalize(inputs))

    def tokenize(self, inputs):
        """Strings `[batch]` -> ragged int32 ids `[batch, (tokens)]`, as pure TF ops (no Keras
        call machinery), for tf.data maps and `tf.function`s."""
        return self.call(inputs)

    def tokenize_with_offsets(self, inputs):
        """Strings `[batch]` -> `(ids, starts, ends)`, int32 ragged `[batch, (tokens)]`: the ids,
        and each piece's character offsets into the *original* string (`text[start:end]` in
        Python is the text the piece came from, accents and case as written). For answer spans
        and entity offsets."""
        inputs = tf.convert_to_tensor(inputs, dtype=tf.string)
        # The normaliser's offsets map each byte of its output back to the input's bytes.
        normalized, to_input = self._normalizer.normalize_with_offsets(inputs)
        ids, starts, ends = self._wordpiece.tokenize_with_offsets(normalized)
        starts = tf.gather(to_input, starts, batch_dims=1)
        ends = tf.gather(to_input, ends, batch_dims=1)
        return ids, char_offsets(inputs, starts), char_offsets(inputs, ends)

    def detokenize(self, token_ids):
        """Ids `[batch, (tokens)]` (ragged or dense, padding dropped by the caller) -> strings."""
        return self._wordpiece.detokenize(token_ids)

    def id_to_token(self, token_id: int) -> str:
        return self.vocabulary[token_id]

    def compute_output_spec(self, inputs):
        return keras.KerasTensor((inputs.shape[0], None), dtype="int32", ragged=True)

    def get_config(self):
        config = super().get_config()
        config.update(vocabulary=self.vocabulary, lower_case=self.lower_case)
        return config


_INT_MAX = 2 ** 31 - 1


def char_offsets(text, byte_offsets):
    """Byte offsets into UTF-8 strings -> character offsets. `text`: string `[batch]`;
    `byte_offsets`: int ragged `[batch, (n)]`, each at a character boundary or the end.
    Returns int32 ragged `[batch, (n)]`."""
    _, char_bytes = tf.strings.unicode_decode_with_offsets(text, "UTF-8", errors="replace")
    # The character that begins at a byte offset: how many characters begin before it.
    # Padding with INT_MAX keeps every row sorted for searchsorted.
    char_bytes = tf.cast(char_bytes, tf.int64).to_tensor(default_value=_INT_MAX)  # [b, chars]
    dense = tf.cast(byte_offsets, tf.int64).to_tensor(default_value=0)  # [batch, n]
    chars = tf.searchsorted(char_bytes, dense, side="left")
    return tf.RaggedTensor.from_tensor(tf.cast(chars, tf.int32),
                                       lengths=byte_offsets.row_lengths())
