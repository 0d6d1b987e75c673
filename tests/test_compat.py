"""The private Keras/TensorFlow hooks electra_tf relies on (electra_tf/compat.py): present in the
installed versions, within the Keras range setup.cfg allows, and used nowhere else."""

import configparser
import os
import re

import keras
import pytest
from packaging.specifiers import SpecifierSet

from conftest import REPO_ROOT
from electra_tf import compat


def test_every_private_hook_is_there_in_the_installed_keras():
    # Fails with "Keras X.Y lacks keras.optimizers.AdamW._apply_weight_decay, ..." on a Keras
    # that renamed one: an override of a renamed method would silently never be called.
    compat.check_private_hooks()


def test_a_missing_hook_is_named_with_the_keras_version():
    class Renamed:
        def _maybe_symbolic_build(self, iterator=None):  # `data_batch` gone
            pass

    hooks = [("keras.Model", Renamed, "_symbolic_build", ()),
             ("keras.Model", Renamed, "_maybe_symbolic_build", ("iterator", "data_batch"))]
    with pytest.raises(RuntimeError) as raised:
        compat.check_private_hooks(hooks)
    message = str(raised.value)
    assert f"Keras {keras.__version__} lacks keras.Model._symbolic_build; " in message
    assert "keras.Model._maybe_symbolic_build (no parameter data_batch)" in message
    assert f"keras{compat.SUPPORTED_KERAS}" in message


def test_setup_cfg_bounds_keras_to_the_supported_range_and_it_holds_the_installed_one():
    setup = configparser.ConfigParser()
    setup.read(os.path.join(REPO_ROOT, "setup.cfg"))
    requirements = [line.strip() for line in setup["options"]["install_requires"].splitlines()]
    assert f"keras{compat.SUPPORTED_KERAS}" in requirements
    assert keras.__version__ in SpecifierSet(compat.SUPPORTED_KERAS)


def test_our_optimizers_and_models_take_the_hooks_from_compat():
    from electra_tf.models import ElectraPretrainer, SequenceClassifier
    from electra_tf.training.optimizer import ElectraAdamW, LayerwiseAdamW

    assert issubclass(ElectraAdamW, compat.GradientsSummedBeforeApply)
    assert issubclass(ElectraAdamW, compat.PerVariableWeightDecay)
    assert issubclass(ElectraAdamW, compat.AdamSlots)
    assert issubclass(LayerwiseAdamW, ElectraAdamW)
    for model in (ElectraPretrainer, SequenceClassifier):
        assert model._maybe_symbolic_build is compat.BuildFromElementSpec._maybe_symbolic_build


# Private names of Keras and TensorFlow objects, and their private modules.
_PRIVATE = re.compile(r"keras\.src|tensorflow\.python|tf\.python|\b(?:super\(\)|self|strategy"
                      r"(?:\.extended)?)\._(?:all_reduce_sum_gradients|apply_weight_decay|"
                      r"get_variable_index|use_weight_decay|maybe_symbolic_build|momentums|velocities|"
                      r"symbolic_build|distribute_strategy|in_multi_worker_mode)\b|"
                      r"def _(?:all_reduce_sum_gradients|apply_weight_decay|"
                      r"maybe_symbolic_build)\b")


def test_no_other_module_uses_a_private_hook():
    package = os.path.join(REPO_ROOT, "electra_tf")
    offenders = []
    for root, _, files in os.walk(package):
        for name in files:
            path = os.path.join(root, name)
            if not name.endswith(".py") or os.path.samefile(path, compat.__file__):
                continue
            with open(path, encoding="utf-8") as f:
                for number, line in enumerate(f, start=1):
                    if _PRIVATE.search(line):
                        offenders.append(f"{os.path.relpath(path, REPO_ROOT)}:{number}: "
                                         f"{line.strip()}")
    assert not offenders, "private Keras/TF hooks outside electra_tf/compat.py:\n" + \
        "\n".join(offenders)
