"""One configuration system: the run's seed, intervals, corpus reading and runtime are config
sections (`run`, `corpus`, `runtime`), set from YAML, `--set`, the command line's flags or the
Python API's keyword arguments alike, stored whole in config.yaml and compared on resume; run
folders written before these sections existed still resume with their own settings."""

from __future__ import annotations

import json
import logging

import pytest
import yaml
from test_pretrain import corpus_and_vocab, pretrain_args  # noqa: F401  (a fixture)

from electra_tf.cli import main
from electra_tf.config import ElectraConfig, FinetuneConfig, load_config
from electra_tf.errors import CheckpointError, ConfigError
from electra_tf.runs.layouts import FinetunePaths
from electra_tf.runs.resume import check_resumable_finetuning
from electra_tf.training.pretrain import SHORTCUTS, pretrain


def prepared(args, out):
    assert main(args + ["--prepare-only"]) == 0
    return yaml.safe_load((out / "config.yaml").read_text())


def test_every_shortcut_names_a_config_field():
    fields = ElectraConfig().to_dict()
    for name, dotted in SHORTCUTS.items():
        section, key = dotted.split(".")
        assert key in fields[section], name


def test_the_yaml_sets_the_run_and_flags_override_it(corpus_and_vocab, tmp_path):  # noqa: F811
    corpus, vocab, size = corpus_and_vocab
    config = load_config("electra_tiny").with_settings({"run.seed": 5, "run.log_every": 4,
                                                        "runtime.steps_per_execution": 2})
    config.to_yaml(tmp_path / "mine.yaml")
    args = pretrain_args(corpus, vocab, size, tmp_path / "from_yaml", steps=8)
    args[args.index("--config") + 1] = str(tmp_path / "mine.yaml")
    for flag in ("--log-every", "--save-every"):
        del args[args.index(flag):args.index(flag) + 2]
    args += ["--save-every", "8"]
    stored = prepared(args, tmp_path / "from_yaml")
    assert (stored["run"]["seed"], stored["run"]["log_every"], stored["run"]["save_every"]) == \
        (5, 4, 8)
    assert stored["runtime"]["steps_per_execution"] == 2
    # The flag wins over the file; the file's other settings stay.
    stored = prepared(args[:args.index("--out-dir") + 1] + [str(tmp_path / "flag")]
                      + args[args.index("--out-dir") + 2:] + ["--seed", "7"], tmp_path / "flag")
    assert (stored["run"]["seed"], stored["runtime"]["steps_per_execution"]) == (7, 2)


def test_a_setting_the_config_refuses_is_one_line_before_anything_is_written(
        corpus_and_vocab, tmp_path, capsys):  # noqa: F811
    corpus, vocab, size = corpus_and_vocab
    args = pretrain_args(corpus, vocab, size, tmp_path / "run", extra=[
        "--steps-per-execution", "3"])  # --log-every 5 is no multiple of 3
    assert main(args) == 2
    assert "must be a multiple of --steps-per-execution 3" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    with pytest.raises(TypeError, match="unexpected keyword arguments \\['sed'\\]"):
        pretrain(load_config("electra_tiny"), corpus, str(tmp_path / "py"), sed=1)
    with pytest.raises(ConfigError, match="runtime.precision must be one of"):
        pretrain(load_config("electra_tiny"), corpus, str(tmp_path / "py"), precision="fp8")


def test_a_run_written_before_the_run_sections_resumes_with_its_own_settings(
        corpus_and_vocab, tmp_path, caplog):  # noqa: F811
    corpus, vocab, size = corpus_and_vocab
    out = tmp_path / "legacy"
    args = pretrain_args(corpus, vocab, size, out, steps=10)
    stored = prepared(args, out)
    # As the previous version wrote it: no run/corpus/runtime sections; those settings in run.json.
    for section in ("run", "corpus", "runtime"):
        del stored[section]
    (out / "config.yaml").write_text(yaml.safe_dump(stored, sort_keys=False))
    run = json.loads((out / "run.json").read_text())
    run.update(seed=3, lower_case=True, doc_format="line", log_every=2, save_every=10)
    (out / "run.json").write_text(json.dumps(run))

    assert main(args) == 2  # --seed 0 (the default) cannot continue a seed-3 run
    with caplog.at_level(logging.WARNING):
        assert main(args + ["--seed", "3"]) == 0
    assert "Resuming with the run's own run.log_every=2 (asked: 5)" in caplog.text
    assert "corpus.doc_format='line'" in caplog.text
    resumed = yaml.safe_load((out / "config.yaml").read_text())
    assert resumed["run"] == {"seed": 3, "log_every": 2, "save_every": 10,
                              "keep_checkpoints": 3}
    assert resumed["corpus"]["doc_format"] == "line"
    history = [json.loads(line) for line in open(out / "history.jsonl")]
    assert [record["step"] for record in history] == [2, 4, 6, 8, 10]  # the run's own grid


def test_a_fine_tuning_run_resumes_on_another_runtime_but_not_with_another_recipe(tmp_path):
    paths = FinetunePaths(str(tmp_path))
    FinetuneConfig().to_yaml(paths.config)
    identity = {"task": "imdb"}
    (tmp_path / "run.json").write_text(json.dumps(identity))
    other_device = FinetuneConfig().with_settings({"runtime.precision": "mixed_bfloat16",
                                                   "runtime.strategy": "one_device"})
    assert check_resumable_finetuning(paths, other_device, identity)
    other_recipe = FinetuneConfig().with_settings({"training.learning_rate": 1e-3})
    with pytest.raises(CheckpointError, match="training.learning_rate: 0.0003 -> 0.001"):
        check_resumable_finetuning(paths, other_recipe, identity)
