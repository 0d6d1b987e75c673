"""The pretraining input pipeline: documents -> WordPiece ids -> packed sequences -> batches.

    corpus documents (Python strings, one pass after another)
      -> tf.data: chunks of `docs_per_chunk` documents
      -> split at sentence ends and lines, tokenize (tensorflow-text, in the graph, parallel)
      -> pack sentences into sequences the way the ELECTRA authors do (`SequencePacker`)
      -> shuffle (seeded) -> batch -> prefetch

Every batch is a dict of int32 `[batch, max_seq_length]` tensors `token_ids`, `segment_ids` and
`padding_mask`, which is what `ElectraPretrainer` takes. The stream is a pure function of the
corpus and the seed, so `skip_batches=n` reproduces the position after `n` batches exactly: that
is how a resumed run continues where the killed one stopped.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from electra_tf.data.corpus import Corpus
from electra_tf.errors import DataError

# A sentence ends at . ! ? or … followed by whitespace; lines of a document are sentences too.
_SENTENCE_END = r"([.!?…])\s+"


class SequencePacker:
    """Packs the sentences of documents into `[CLS] A [SEP]` / `[CLS] A [SEP] B [SEP]` sequences.

    This is the authors' `ExampleBuilder` (`build_pretraining_dataset.py`), vectorised per chunk:

    * sentences of one document accumulate until they reach the target length (normally
      `max_seq_length`; with probability 5% a random length in [5, max_seq_length], so the model
      also sees short, padded inputs); the end of a document closes the sequence early;
    * segment A takes sentences up to half the target, B the rest; with probability 10% there
      is a single segment (as in classification inputs); a sentence that would overflow A goes
      there anyway half the time;
    * both segments are trimmed to fit `max_seq_length` including [CLS] and the [SEP]s.

    One deliberate difference: a sentence longer than `max_seq_length - 2` tokens (a 10 MB line
    with no full stop) becomes full sequences of its pieces, instead of keeping its first 126
    tokens and dropping the rest.
    """

    def __init__(self, max_seq_length: int, cls_id: int, sep_id: int, pad_id: int,
                 single_segment_prob: float = 0.1, random_length_prob: float = 0.05):
        if max_seq_length < 8:
            raise DataError(f"max_seq_length {max_seq_length} is too short to pack; use >= 8.")
        self.max_len, self.cls_id, self.sep_id, self.pad_id = max_seq_length, cls_id, sep_id, pad_id
        self.single_segment_prob, self.random_length_prob = single_segment_prob, random_length_prob

    def pack(self, token_values, sentence_splits, document_splits, rng: np.random.Generator):
        """Packs one chunk of tokenized documents.

        Args:
            token_values: int `[total_tokens]`, all sentences' ids back to back.
            sentence_splits: `[num_sentences + 1]` row splits of `token_values` per sentence.
            document_splits: `[num_documents + 1]` row splits of the sentences per document.
            rng: the random stream of this chunk.

        Returns:
            `token_ids`, `segment_ids`: int32 `[num_sequences, max_seq_length]`.
        """
        piece_len = self.max_len - 2
        rows_tokens: list[np.ndarray] = []
        rows_segments: list[np.ndarray] = []
        target = self.max_len
        for doc in range(len(document_splits) - 1):
            sentences: list[np.ndarray] = []
            length = 0
            for s in range(document_splits[doc], document_splits[doc + 1]):
                sentence = token_values[sentence_splits[s]:sentence_splits[s + 1]]
                if len(sentence) > piece_len:
                    # Close what came before, give every full piece a sequence of its own and
                    # carry the remainder on like a sentence.
                    if sentences:
                        self._emit(sentences, target, rng, rows_tokens, rows_segments)
                        target = self._next_target(rng)
                        sentences, length = [], 0
                    full = len(sentence) - len(sentence) % piece_len
                    for start in range(0, full, piece_len):
                        self._emit([sentence[start:start + piece_len]], self.max_len, rng,
                                   rows_tokens, rows_segments)
                    sentence = sentence[full:]
                if not len(sentence):
                    continue
                sentences.append(sentence)
                length += len(sentence)
                if length >= target:
                    self._emit(sentences, target, rng, rows_tokens, rows_segments)
                    target = self._next_target(rng)
                    sentences, length = [], 0
            if sentences:  # a document's end closes its last sequence
                self._emit(sentences, target, rng, rows_tokens, rows_segments)
                target = self._next_target(rng)
        if not rows_tokens:
            empty = np.zeros((0, self.max_len), np.int32)
            return empty, empty
        return np.stack(rows_tokens), np.stack(rows_segments)

    def _next_target(self, rng) -> int:
        if rng.random() < self.random_length_prob:
            return int(rng.integers(5, self.max_len + 1))
        return self.max_len

    def _emit(self, sentences, target, rng, rows_tokens, rows_segments):
        if rng.random() < self.single_segment_prob:
            first_target = 1 << 30
        else:
            first_target = (target - 3) // 2  # -3: room for [CLS] and two [SEP]
        first: list[np.ndarray] = []
        second: list[np.ndarray] = []
        first_len = 0
        for sentence in sentences:
            if (first_len == 0 or first_len + len(sentence) < first_target
                    or (not second and first_len < first_target and rng.random() < 0.5)):
                first.append(sentence)
                first_len += len(sentence)
            else:
                second.append(sentence)
        a = np.concatenate(first)[:self.max_len - 2]
        b = np.concatenate(second)[:max(0, self.max_len - len(a) - 3)] if second else a[:0]
        tokens = np.full(self.max_len, self.pad_id, np.int32)
        segments = np.zeros(self.max_len, np.int32)
        tokens[0] = self.cls_id
        tokens[1:1 + len(a)] = a
        tokens[1 + len(a)] = self.sep_id
        if len(b):
            start = 2 + len(a)
            tokens[start:start + len(b)] = b
            tokens[start + len(b)] = self.sep_id
            segments[start:start + len(b) + 1] = 1
        rows_tokens.append(tokens)
        rows_segments.append(segments)


def tokenize_documents(documents, tokenizer):
    """Strings `[num_docs]` -> (token values, sentence row splits, document row splits)."""
    lines = tf.strings.regex_replace(documents, _SENTENCE_END, "\\1\n")
    sentences = tf.strings.split(lines, "\n")  # ragged [docs, (sentences)]
    tokens = tokenizer.tokenize(sentences.flat_values)  # ragged [sentences, (tokens)]
    return (tf.cast(tokens.flat_values, tf.int32), tf.cast(tokens.row_splits, tf.int32),
            tf.cast(sentences.row_splits, tf.int32))


def pretraining_dataset(corpus: Corpus, tokenizer, max_seq_length: int, batch_size: int,
                        seed: int = 0, shuffle_buffer: int = 10_000, docs_per_chunk: int = 64,
                        repeat: bool = True, skip_batches: int = 0) -> tf.data.Dataset:
    """Builds the batched pretraining stream of `corpus`.

    Args:
        corpus: a `Corpus` (see `open_corpus`).
        tokenizer: a `WordPieceTokenizer` (its vocabulary gives the special ids).
        max_seq_length: length of every sequence, [CLS] and [SEP]s included.
        batch_size: sequences per batch (the last partial batch of a finite stream is dropped:
            fixed shapes compile once).
        seed: seeds packing choices and the shuffle; same seed, same stream.
        shuffle_buffer: sequences held for shuffling (documents arrive in corpus order).
        docs_per_chunk: documents tokenized and packed together (one tf.data element).
        repeat: loop over the corpus forever (each pass packs differently).
        skip_batches: start after this many batches (resuming a run).

    Returns:
        `tf.data.Dataset` of dicts `token_ids`, `segment_ids`, `padding_mask`: int32
        `[batch_size, max_seq_length]`.
    """
    ids = tokenizer.special_ids
    packer = SequencePacker(max_seq_length, cls_id=ids.cls, sep_id=ids.sep, pad_id=ids.pad)

    def one_pass():
        found = 0
        for document in corpus.documents():
            found += 1
            yield document
        if found == 0:  # never spin forever over an empty corpus under `repeat()`
            raise DataError(f"{corpus.name} yielded no usable document.")

    def pack_chunk(chunk_index, values, sentence_splits, document_splits):
        rng = np.random.default_rng([seed, int(chunk_index)])
        return packer.pack(values, sentence_splits, document_splits, rng)

    @tf.autograph.experimental.do_not_convert  # plain TF ops; nothing for AutoGraph to rewrite
    def tokenize_and_pack(chunk_index, documents):
        values, sentence_splits, document_splits = tokenize_documents(documents, tokenizer)
        token_ids, segment_ids = tf.numpy_function(
            pack_chunk, [chunk_index, values, sentence_splits, document_splits],
            [tf.int32, tf.int32], stateful=False)
        token_ids.set_shape([None, max_seq_length])
        segment_ids.set_shape([None, max_seq_length])
        return {"token_ids": token_ids, "segment_ids": segment_ids,
                "padding_mask": tf.cast(tf.not_equal(token_ids, ids.pad), tf.int32)}

    documents = tf.data.Dataset.from_generator(
        one_pass, output_signature=tf.TensorSpec((), tf.string))
    if repeat:
        documents = documents.repeat()
    sequences = (documents.batch(docs_per_chunk).enumerate()
                 .map(tokenize_and_pack, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
                 .unbatch())
    if shuffle_buffer > 1:
        sequences = sequences.shuffle(shuffle_buffer, seed=seed)
    batches = sequences.batch(batch_size, drop_remainder=True)
    if skip_batches:
        batches = batches.skip(skip_batches)
    return batches.prefetch(tf.data.AUTOTUNE)
