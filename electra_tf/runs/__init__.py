"""Run folders: their layouts (`layouts`), the Keras files in them (`keras_files`) and the rules
for resuming a run (`resume`). Nothing here builds a model or reads a config's meaning; the
training loops in `electra_tf.training` use these, `electra_tf.pretrained` reads runs back."""

from electra_tf.runs.keras_files import (
    load_keras_model,
    save_keras_atomically,
    save_weights_atomically,
)
from electra_tf.runs.layouts import (
    FinetunePaths,
    PretrainPaths,
    refuse_another_kind_of_run,
    run_kind,
    run_lock,
)

__all__ = ["FinetunePaths", "PretrainPaths", "load_keras_model", "refuse_another_kind_of_run",
           "run_kind", "run_lock", "save_keras_atomically", "save_weights_atomically"]
