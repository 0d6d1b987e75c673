"""Reading pretrained and fine-tuned models back: one resolver for every kind of source
(`resolve`), the presets installed with the package (`presets`), and fine-tuning runs read back
for evaluation, prediction and export (`finetuned`)."""

from electra_tf.pretrained.finetuned import load_classifier, load_finetuned
from electra_tf.pretrained.presets import available_presets, preset_path, resolve_pretrained
from electra_tf.pretrained.resolve import SOURCE_KINDS, PretrainedSource, resolve, resolve_preset

__all__ = ["SOURCE_KINDS", "PretrainedSource", "available_presets", "load_classifier",
           "load_finetuned", "preset_path", "resolve", "resolve_preset", "resolve_pretrained"]
