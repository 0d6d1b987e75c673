"""Any TFDS dataset with a text feature (`tfds:NAME[:SPLIT]`)."""

from __future__ import annotations

from typing import Iterator

from electra_tf.data.corpus.base import Corpus, decode_line
from electra_tf.data.corpus.imdb import clean_review
from electra_tf.errors import DataError


class TfdsCorpus(Corpus):
    """Any TFDS dataset with a text feature, e.g. `imdb_reviews` or `wikipedia/20230601.en`.

    Downloads through TFDS on first use (online users); `data_dir` points at a local TFDS store.
    """

    def __init__(self, name: str, split: str = "train", text_key: str | None = None,
                 data_dir: str | None = None):
        super().__init__()
        self.dataset_name, self.split, self.text_key, self.data_dir = name, split, text_key, data_dir
        self.name = f"tfds:{name}:{split}"

    def _raw_documents(self) -> Iterator[str]:
        import tensorflow_datasets as tfds

        try:
            dataset, info = tfds.load(self.dataset_name, split=self.split, with_info=True,
                                      data_dir=self.data_dir)
        except Exception as err:  # tfds raises many types: unknown name, no network, bad split
            raise DataError(f"Cannot load TFDS dataset {self.dataset_name!r} split "
                            f"{self.split!r}: {err}") from None
        key = self.text_key or _text_feature(info.features, self.dataset_name)
        for example in tfds.as_numpy(dataset):
            yield clean_review(decode_line(example[key], self.stats))


def _text_feature(features, name: str) -> str:
    import tensorflow_datasets as tfds

    text_keys = [key for key, feature in features.items() if isinstance(feature, tfds.features.Text)]
    if "text" in text_keys:
        return "text"
    if not text_keys:
        raise DataError(f"TFDS dataset {name!r} has no text feature (features: "
                        f"{sorted(features.keys())}).")
    return text_keys[0]
