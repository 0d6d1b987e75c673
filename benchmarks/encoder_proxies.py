"""Fast proxies of how good a pretrained encoder is, in about a minute each on 2 CPU cores.

    .venv/bin/pip install -e ".[benchmark]"      # scikit-learn, for the linear probe
    .venv/bin/python benchmarks/encoder_proxies.py RUN_DIR [RUN_DIR ...] [--random-init CONFIG]
        [--work-dir runs/cpu_recipe] [--corpus ../shared/data/aclImdb_v1-text.tar.gz]

Full IMDB fine-tuning of one encoder takes 16-24 min (benchmarks/imdb_experiment.py); comparing
pretraining recipes needs something cheaper that ranks encoders the same way. Two proxies:

- **detection AUC** on held-out text: 1,000 unlabelled IMDB reviews that no pretraining run of
  these benchmarks reads, packed into [32, 128] batches; the official 15% of positions are
  replaced by draws from the pieces' frequencies (the token itself says nothing, only its
  context can give it away -- see investigations/context_learning.py), once, with a fixed seed, so
  every encoder sees the very same corrupted tokens. An ELECTRA discriminator scores each token
  with its own head; an MLM encoder with `1 - p(observed token)` from its LM head (the natural
  detector an MLM gives). ROC AUC over real tokens: 0.5 = context is not used at all.
- **linear probe**: the frozen encoder's features (mean of the last layer over real tokens,
  concatenated with the [CLS] vector) of 2,000 IMDB training reviews -> logistic regression
  (features standardised, C chosen by 5-fold cross-validation on those 2,000) -> accuracy on
  the 2,500-review validation split that `electra-tf finetune` carves from train (10%,
  split_seed 0). The IMDB test split is never read.

Both proxies are cached per run directory (`proxies.json`), keyed by the data's fingerprint.
`prepare_data` also writes the pretraining corpus every benchmark row shares: the IMDB training
texts (train/pos, train/neg and train/unsup minus the held-out 1,000) shuffled once, one review
per blank-line-separated document, and the 8,192-piece vocabulary learned from it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

CORPUS = os.path.join(os.path.dirname(ROOT), "shared", "data", "aclImdb_v1-text.tar.gz")
WORK_DIR = os.path.join(ROOT, "runs", "cpu_recipe")
HELD_OUT_REVIEWS = 1000
PROBE_TRAIN_REVIEWS = 2000
DETECTION_BATCHES = 48  # of [32, 128]: 1,536 sequences, ~190k real tokens
VOCAB_SIZE = 8192
VOCAB_DOCUMENTS = 20000
SEED = 0


class DataPaths:
    """The shared data of the CPU-recipe benchmarks, under `work_dir/data/`."""

    def __init__(self, work_dir: str):
        join = lambda name: os.path.join(work_dir, "data", name)  # noqa: E731
        self.folder = join("")
        self.pretraining_corpus = join("pretrain.txt")
        self.held_out = join("held_out.txt")
        self.vocab = join("vocab.txt")
        self.probe_texts = join("probe_texts.json")
        self.detection_batches = join("detection_batches.npz")


def prepare_data(work_dir: str = WORK_DIR, archive: str = CORPUS) -> DataPaths:
    """Writes (once) the pretraining corpus, the held-out text, the vocabulary, the probe's
    texts and the fixed corrupted detection batches. Returns their paths."""
    paths = DataPaths(work_dir)
    os.makedirs(paths.folder, exist_ok=True)
    if not os.path.exists(paths.pretraining_corpus):
        _write_corpora(paths, archive)
    if not os.path.exists(paths.vocab):
        from electra_tf.data.vocab import save_vocabulary
        from electra_tf.data.vocab_learning import learn_vocabulary

        print(f"Learning a {VOCAB_SIZE}-piece vocabulary from {VOCAB_DOCUMENTS} documents ...",
              flush=True)
        documents = _read_documents(paths.pretraining_corpus, VOCAB_DOCUMENTS)
        # The learner these results were measured with (tokenizers became the default later).
        save_vocabulary(learn_vocabulary(documents, VOCAB_SIZE, learner="tensorflow-text"),
                        paths.vocab)
    if not os.path.exists(paths.probe_texts):
        _write_probe_texts(paths, archive)
    if not os.path.exists(paths.detection_batches):
        _write_detection_batches(paths)
    return paths


def _write_corpora(paths: DataPaths, archive: str) -> None:
    from electra_tf.data.corpus import ImdbCorpus

    unsup, labelled = [], []
    for subset, text in ImdbCorpus(archive).labelled_documents():
        (unsup if subset == "train/unsup" else labelled).append(text)
    rng = np.random.default_rng(SEED)
    order = rng.permutation(len(unsup))
    held_out = [unsup[i] for i in order[:HELD_OUT_REVIEWS]]
    training = [unsup[i] for i in order[HELD_OUT_REVIEWS:]] + labelled
    training = [training[i] for i in rng.permutation(len(training))]
    for path, documents in ((paths.held_out, held_out), (paths.pretraining_corpus, training)):
        with open(f"{path}.tmp", "w", encoding="utf-8") as f:
            for document in documents:
                lines = [line.strip() for line in document.splitlines() if line.strip()]
                f.write("\n".join(lines) + "\n\n")
        os.replace(f"{path}.tmp", path)
    print(f"Pretraining corpus: {len(training):,d} reviews; held out: {len(held_out):,d}.")


def _read_documents(path: str, limit: int | None = None) -> list[str]:
    with open(path, encoding="utf-8") as f:
        documents = [d.strip() for d in f.read().split("\n\n") if d.strip()]
    return documents[:limit]


def _write_probe_texts(paths: DataPaths, archive: str) -> None:
    """The same train/validation split as `electra-tf finetune --task imdb` (10%, seed 0)."""
    from electra_tf.data.classification import load_labelled_texts, stratified_split

    train, validation = stratified_split(load_labelled_texts("imdb", archive, "train"), 0.1, 0)
    train = train.subset(np.arange(PROBE_TRAIN_REVIEWS))  # already shuffled by the split
    data = {name: {"texts": part.texts, "labels": part.labels.tolist()}
            for name, part in (("train", train), ("validation", validation))}
    with open(paths.probe_texts, "w", encoding="utf-8") as f:
        json.dump(data, f)


def _write_detection_batches(paths: DataPaths) -> None:
    import keras
    from discriminator_alone import corrupt, unigram_log_probs

    import electra_tf as et
    from electra_tf.config import PretrainingConfig
    from electra_tf.data.corpus import TextFileCorpus
    from electra_tf.data.vocab import load_vocabulary

    tokenizer = et.WordPieceTokenizer(load_vocabulary(paths.vocab))
    dataset = et.pretraining_dataset(TextFileCorpus([paths.held_out], doc_format="blank"),
                                     tokenizer, 128, 32, seed=SEED)
    ids, vocab_size = tokenizer.special_ids, tokenizer.vocabulary_size
    objective = PretrainingConfig(pad_id=ids.pad, cls_id=ids.cls, sep_id=ids.sep,
                                  mask_id=ids.mask)
    log_probs = unigram_log_probs(dataset, vocab_size, 5, batches=DETECTION_BATCHES)
    stream = keras.random.SeedGenerator(SEED)
    arrays = {"token_ids": [], "padding_mask": [], "labels": []}
    for batch in dataset.take(DETECTION_BATCHES):
        corrupted, labels = corrupt(batch, objective, "unigram", vocab_size,
                                    log_probs, stream)
        arrays["token_ids"].append(corrupted.numpy())
        arrays["padding_mask"].append(batch["padding_mask"].numpy())
        arrays["labels"].append(labels.numpy())
    np.savez_compressed(paths.detection_batches,
                        **{k: np.stack(v) for k, v in arrays.items()})


def data_fingerprint(paths: DataPaths) -> str:
    digest = hashlib.sha256()
    for path in (paths.vocab, paths.probe_texts, paths.detection_batches):
        with open(path, "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()[:16]


# ------------------------------------------------------------------------------- the proxies


def load_scorers(run_dir: str):
    """`(encoder, token_scorer)` of a pretraining run: the encoder to fine-tune and a function
    `inputs -> [batch, seq_len]` "replaced" scores (higher = more likely replaced)."""
    import keras
    from keras import ops

    from electra_tf.config import load_config

    config = load_config(os.path.join(run_dir, "config.yaml"))
    if config.pretraining.electra_objective:
        model = keras.saving.load_model(os.path.join(run_dir, "discriminator.keras"),
                                        compile=False)
        return model.encoder, lambda inputs: model(inputs, training=False)
    model = keras.saving.load_model(os.path.join(run_dir, "generator.keras"), compile=False)

    def surprise(inputs):  # 1 - p(observed token | its context), from the MLM head
        probs = ops.softmax(model(inputs, training=False), axis=-1)
        return -ops.take_along_axis(probs, ops.expand_dims(inputs["token_ids"], -1), -1)[..., 0]

    return model.encoder, surprise


def random_encoder(config_path: str, vocab_size: int, seed: int = SEED):
    """The architecture of `config_path`, randomly initialised: the floor of both proxies."""
    import keras

    from electra_tf.config import load_config
    from electra_tf.layers.encoder import ElectraEncoder

    keras.utils.set_random_seed(seed)
    config = load_config(config_path, [f"model.vocab_size={vocab_size}"])
    encoder = ElectraEncoder(**config.model.encoder_kwargs())
    encoder({"token_ids": np.ones((1, 8), "int32")})
    return encoder


def detection_auc(token_scorer, paths: DataPaths) -> float:
    """ROC AUC of the scorer's "replaced" scores over the real tokens of the fixed batches."""
    from sklearn.metrics import roc_auc_score

    data = np.load(paths.detection_batches)
    scores, labels = [], []
    for token_ids, mask, label in zip(data["token_ids"], data["padding_mask"], data["labels"]):
        inputs = {"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids),
                  "padding_mask": mask}
        score = np.asarray(token_scorer(inputs), dtype="float64")
        real = mask.astype(bool)
        scores.append(score[real])
        labels.append(label[real])
    return float(roc_auc_score(np.concatenate(labels), np.concatenate(scores)))


def encoder_features(encoder, texts, vocab_path: str, batch_size: int = 64) -> np.ndarray:
    """`[len(texts), 2 * hidden]`: mean of the last layer over real tokens, then [CLS]; texts
    as fine-tuning sees them (256 pieces, head+tail truncation)."""
    import tensorflow as tf

    from electra_tf.data.preprocessor import ClassificationPreprocessor
    from electra_tf.data.tokenizer import WordPieceTokenizer
    from electra_tf.data.vocab import load_vocabulary

    preprocessor = ClassificationPreprocessor(WordPieceTokenizer(load_vocabulary(vocab_path)),
                                              max_seq_length=256, truncation="head_tail")

    @tf.function(reduce_retracing=True, autograph=False)  # plain TF ops: nothing to convert
    def features(inputs):
        hidden = encoder(inputs, training=False)
        mask = tf.cast(inputs["padding_mask"], hidden.dtype)[..., None]
        mean = tf.reduce_sum(hidden * mask, 1) / tf.reduce_sum(mask, 1)
        return tf.concat([mean, hidden[:, 0]], axis=-1)

    order = np.argsort([len(t) for t in texts])  # similar lengths together: less padding
    out = np.zeros((len(texts), 2 * encoder.hidden_size), dtype="float32")
    for start in range(0, len(texts), batch_size):
        index = order[start:start + batch_size]
        inputs = preprocessor.pad_and_mask(preprocessor(tf.constant([texts[i] for i in index])))
        out[index] = features(inputs).numpy()
    return out


def linear_probe_accuracy(encoder, paths: DataPaths) -> float:
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    with open(paths.probe_texts, encoding="utf-8") as f:
        data = json.load(f)
    train = encoder_features(encoder, data["train"]["texts"], paths.vocab)
    validation = encoder_features(encoder, data["validation"]["texts"], paths.vocab)
    probe = make_pipeline(StandardScaler(), LogisticRegressionCV(
        Cs=[0.001, 0.01, 0.1, 1.0], cv=5, scoring="accuracy", max_iter=2000))
    with warnings.catch_warnings():  # scikit-learn's notices about its future defaults
        warnings.simplefilter("ignore", FutureWarning)
        probe.fit(train, data["train"]["labels"])
    return float(probe.score(validation, data["validation"]["labels"]))


def score_encoder(encoder, token_scorer, paths: DataPaths) -> dict:
    """Both proxies of one encoder and its replaced-token scorer, rounded as reported."""
    return {"detection_auc": round(detection_auc(token_scorer, paths), 4),
            "linear_probe_accuracy": round(linear_probe_accuracy(encoder, paths), 4)}


def run_proxies(run_dir: str, paths: DataPaths) -> dict:
    """Both proxies of a finished pretraining run (cached in `run_dir/proxies.json`)."""
    cache = os.path.join(run_dir, "proxies.json")
    fingerprint = data_fingerprint(paths)
    if os.path.exists(cache):
        with open(cache, encoding="utf-8") as f:
            cached = json.load(f)
        if cached.get("data") == fingerprint:
            return cached
    began = time.time()
    result = dict(score_encoder(*load_scorers(run_dir), paths),
                  proxy_time_s=round(time.time() - began, 1), data=fingerprint)
    with open(cache, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    return result


def random_init_proxies(config_path: str, paths: DataPaths, seed: int = SEED) -> dict:
    """The proxies of a randomly initialised encoder (its detection head is random too: AUC ~0.5)."""
    import keras

    from electra_tf.data.vocab import load_vocabulary
    from electra_tf.models.discriminator import Discriminator

    encoder = random_encoder(config_path, len(load_vocabulary(paths.vocab)), seed)
    discriminator = Discriminator(encoder)
    scorer = lambda inputs: discriminator(inputs, training=False)  # noqa: E731
    return dict(score_encoder(encoder, scorer, paths), data=data_fingerprint(paths), seed=seed,
                keras=keras.__version__)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dirs", nargs="*", help="finished `electra-tf pretrain` out-dirs")
    parser.add_argument("--random-init", default=None, metavar="CONFIG",
                        help="also score this architecture with random weights")
    parser.add_argument("--work-dir", default=WORK_DIR)
    parser.add_argument("--corpus", default=CORPUS, help="the aclImdb archive or folder")
    args = parser.parse_args()
    paths = prepare_data(args.work_dir, args.corpus)
    if args.random_init:
        print("random init", random_init_proxies(args.random_init, paths))
    for run_dir in args.run_dirs:
        print(run_dir, run_proxies(run_dir, paths))


if __name__ == "__main__":
    main()
