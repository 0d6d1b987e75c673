"""Every mistake a user can make on the command line ends with one line on stderr and exit
status 2: no traceback, and no work lost (issue 21). Each case fails before any training."""

import json
import os
import subprocess
import sys

import keras
import pytest

from electra_tf.cli import main
from electra_tf.data import SAMPLE_CORPUS, SAMPLE_LABELLED

TRAIN_CSV = SAMPLE_LABELLED.replace("{split}", "train")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("mistakes")
    (root / "a_file").write_text("not a directory\n")
    # Issue 55, defect 8: read as UTF-8, this became a vocabulary of single characters.
    (root / "utf16.txt").write_text("A fine film, well acted.\nDull and far too long.\n" * 50,
                                    encoding="utf-16")
    (root / "notes.keras").write_text("these are notes, not a model\n")
    keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)]).save(root / "model.keras")
    data = (root / "model.keras").read_bytes()
    (root / "truncated.keras").write_bytes(data[:len(data) // 2])
    unsafe = keras.Sequential([keras.Input((2,)), keras.layers.Lambda(lambda x: x * 2)])
    unsafe.save(root / "lambda.keras")
    hf = root / "hf_bad_heads"
    hf.mkdir()
    (hf / "config.json").write_text(json.dumps({
        "model_type": "electra", "vocab_size": 50, "hidden_size": 30, "num_hidden_layers": 1,
        "num_attention_heads": 4, "intermediate_size": 60}))
    (hf / "model.safetensors").write_bytes(b"\0" * 16)
    (root / "vocab.txt").write_text("\n".join(
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(45)]) + "\n")
    return root


def pretrain(files, *extra, out="run"):
    return ["pretrain", "--corpus", SAMPLE_CORPUS, "--out-dir", str(files / out),
            "--steps", "2", "--batch-size", "2", "--quiet", *extra]


def finetune(files, pretrained, *extra):
    return ["finetune", "--task", "csv", "--data", TRAIN_CSV, "--pretrained", str(pretrained),
            "--vocab", str(files / "vocab.txt"), "--out-dir", str(files / "tuned"), "--quiet",
            *extra]


# (arguments given the fixture's folder, a phrase the one line must contain)
CASES = {
    "out-dir is a file": (lambda f: pretrain(f, out="a_file"), "existing file"),
    "out-dir cannot be created": (lambda f: pretrain(f, out="a_file/run"), "Cannot write"),
    "malformed --set": (lambda f: pretrain(f, "--set", "model.hidden_size=[1"),
                        "not valid YAML"),
    "--set without =": (lambda f: pretrain(f, "--set", "model.hidden_size"),
                        "section.key=value"),
    "unknown config key": (lambda f: pretrain(f, "--set", "model.hiden_size=3"),
                           "Unknown config key"),
    "predictions beyond the sequence": (
        lambda f: pretrain(f, "--set", "pretraining.max_predictions_per_seq=500"),
        "maskable positions"),
    "NaN learning rate": (lambda f: pretrain(f, "--set", "optimizer.learning_rate=.nan"),
                          "finite number"),
    # Issue 55, defect 4: `nan` (YAML reads it as text) passed, and pretraining failed only
    # after writing the learned vocabulary.
    "NaN learning rate as text": (lambda f: pretrain(f, "--set", "optimizer.learning_rate=nan"),
                                  "finite number"),
    "infinite learning rate": (lambda f: pretrain(f, "--set", "optimizer.learning_rate=.inf"),
                               "finite number"),
    "one segment type for two-segment packing": (
        lambda f: pretrain(f, "--set", "model.type_vocab_size=1"), "two segments"),
    "heads do not divide the hidden size": (
        lambda f: pretrain(f, "--set", "model.num_heads=3"), "divisible"),
    "batch size 0": (lambda f: pretrain(f, "--batch-size", "0"), "at least 1"),
    # Issue 55, defect 10: `demo --steps 5` ended in "please report this" on some seeds.
    "demo with too few steps": (lambda f: ["demo", "--steps", "5"], "at least 60"),
    "steps not a number": (lambda f: pretrain(f, "--steps", "ten"), "whole number"),
    "missing config file": (lambda f: pretrain(f, "--config", str(f / "nope.yaml")),
                            "not found"),
    "unknown command option": (lambda f: pretrain(f, "--stpes", "3"), "unrecognized"),
    "pretrained is a text file": (lambda f: finetune(f, f / "notes.keras"),
                                  "not a .keras model"),
    "pretrained is truncated": (lambda f: finetune(f, f / "truncated.keras"),
                                "not a .keras model"),
    "pretrained runs code": (lambda f: finetune(f, f / "lambda.keras"), "was refused"),
    "pretrained is not an ELECTRA model": (lambda f: finetune(f, f / "model.keras"),
                                           "no ELECTRA encoder"),
    "pretrained does not exist": (lambda f: finetune(f, f / "missing"), "does not exist"),
    "finetune NaN learning rate": (
        lambda f: finetune(f, f / "missing", "--set", "training.learning_rate=.nan"),
        "finite number"),
    "import a text file": (lambda f: ["import", "--source", str(f / "notes.keras"),
                                      "--out-dir", str(f / "imported")], "checkpoint"),
    "import an HF config whose heads do not divide": (
        lambda f: ["import", "--source", str(f / "hf_bad_heads"), "--out-dir",
                   str(f / "imported")], "not divisible by num_attention_heads"),
    "export a directory without a model": (
        lambda f: ["export", "--model", str(f), "--out", str(f / "exported")],
        "nothing to export"),
    "evaluate batch size 0": (
        lambda f: ["evaluate", "--model", str(f), "--batch-size", "0"], "at least 1"),
    "evaluate a directory without a model": (
        lambda f: ["evaluate", "--model", str(f)], "no classifier.keras"),
    "predict without a model": (
        lambda f: ["predict", "--model", str(f / "missing"), "good film"], "missing"),
    "train-tokenizer into a directory": (
        lambda f: ["train-tokenizer", "--corpus", SAMPLE_CORPUS, "--out", str(f),
                   "--vocab-size", "100"], "directory"),
    "train-tokenizer on a UTF-16 corpus": (
        lambda f: ["train-tokenizer", "--corpus", str(f / "utf16.txt"), "--out",
                   str(f / "v16.txt"), "--vocab-size", "100"], "not UTF-8 text"),
    "pretrain on a UTF-16 corpus": (
        lambda f: ["pretrain", "--corpus", str(f / "utf16.txt"), "--out-dir", str(f / "r16"),
                   "--steps", "2", "--batch-size", "2", "--quiet"], "re-save it as UTF-8"),
    "train-tokenizer empty corpus": (
        lambda f: ["train-tokenizer", "--corpus", str(f / "empty.txt"), "--out",
                   str(f / "v.txt")], "empty"),
}


def run_cli(argv):
    try:
        return main(argv)
    except SystemExit as stop:  # argparse's usage errors
        return stop.code


@pytest.mark.parametrize("case", sorted(CASES))
def test_user_mistake_is_one_line_and_exit_2(files, case, capsys):
    make_args, phrase = CASES[case]
    (files / "empty.txt").write_text("")
    code = run_cli(make_args(files))
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("electra-tf"), err
    assert phrase in lines[0], lines[0]
    assert "Traceback" not in err


def test_export_onto_an_existing_file_is_refused_before_any_work(tiny_pretrained_run, tmp_path,
                                                                 capsys):
    blocker = tmp_path / "export"
    blocker.write_text("keep me\n")
    assert main(["export", "--model", tiny_pretrained_run, "--out", str(blocker)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "existing file" in err[0]
    assert blocker.read_text() == "keep me\n"


def test_a_real_process_prints_one_error_line(files):
    """Outside pytest's capture: the only line electra_tf itself prints is the error (TensorFlow's
    own start-up lines from C++, which no Python setting silences, are filtered out)."""
    result = subprocess.run(
        [sys.executable, "-m", "electra_tf.cli"] + pretrain(files, "--set", "model.x=[1"),
        capture_output=True, text=True, timeout=180,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert result.returncode == 2
    ours = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith(
        ("I0000", "W0000", "E0000", "WARNING: All log messages", "To enable the following"))]
    assert len(ours) == 1 and ours[0].startswith("electra-tf pretrain:"), result.stderr


def _snapshot(folder):
    """{relative path: bytes} of every file under `folder`."""
    return {os.path.relpath(os.path.join(root, name), folder):
            open(os.path.join(root, name), "rb").read()
            for root, _, names in os.walk(folder) for name in names}


def _fine_tuning_folder(path):
    """The files `finetune` writes first into its --out-dir (what marks the folder's kind)."""
    path.mkdir()
    (path / "finetune.yaml").write_text("task:\n  name: csv\n")
    (path / "run.json").write_text(json.dumps({"task": "csv", "seed": 0}))
    return path


@pytest.mark.parametrize("command", ["finetune", "pretrain", "import"])
def test_a_folder_holding_another_kind_of_run_is_refused_untouched(command, tiny_pretrained_run,
                                                                    tmp_path, capsys):
    """Issue 55, defect 2: `finetune --out-dir` on a pretraining run used to overwrite its
    run.json, metrics and history and delete its checkpoints, exiting 0; `pretrain` into a
    fine-tuning folder said "holds a run with seed None". Each command now refuses a folder of
    another kind in one line, before writing anything."""
    import shutil

    pretraining = tmp_path / "pretraining"
    shutil.copytree(tiny_pretrained_run, pretraining)
    if command == "finetune":
        target, kind = pretraining, "a pretraining"
        args = ["finetune", "--task", "csv", "--data", TRAIN_CSV, "--pretrained",
                str(pretraining), "--out-dir", str(target), "--quiet"]
    elif command == "pretrain":
        target, kind = _fine_tuning_folder(tmp_path / "tuned"), "a fine-tuning"
        args = ["pretrain", "--corpus", SAMPLE_CORPUS, "--out-dir", str(target), "--steps", "2",
                "--batch-size", "2", "--quiet"]
    else:
        target, kind = _fine_tuning_folder(tmp_path / "tuned"), "a fine-tuning"
        args = ["import", "--source", str(pretraining / "discriminator.keras"), "--out-dir",
                str(target)]
    before = _snapshot(target)
    assert run_cli(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"holds {kind} run" in err[0] and "--out-dir" in err[0], err
    assert _snapshot(target) == before


def test_a_bad_setting_is_refused_before_anything_is_written(tmp_path, capsys):
    """Issue 55, defect 4: `--set optimizer.learning_rate=nan` (text to YAML) was refused only
    after the vocabulary had been learned and written, and the corrected command was then
    refused because its vocabulary differed."""
    out = tmp_path / "run"
    assert run_cli(["pretrain", "--corpus", SAMPLE_CORPUS, "--out-dir", str(out), "--steps", "2",
                    "--batch-size", "2", "--quiet", "--set", "optimizer.learning_rate=nan"]) == 2
    assert "finite number" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir()), sorted(os.listdir(out))


@pytest.mark.parametrize("command", ["pretrain", "finetune"])
def test_a_run_folder_in_use_by_another_process_is_refused(command, tiny_pretrained_run,
                                                            tmp_path, capsys):
    """Issue 55, defect 3: the same command started twice on one folder ran twice (both exited
    0 and history.jsonl got every line twice). While a process holds the folder (`run_lock`,
    held here as a running command holds it), another is refused in one line naming it; the
    kill -9 resume tests show a dead holder's lock file blocks nothing."""
    from electra_tf.runs.layouts import run_lock

    out = tmp_path / "run"
    out.mkdir()
    if command == "pretrain":
        args = pretrain(tmp_path, out="run")
    else:
        args = ["finetune", "--task", "csv", "--data", TRAIN_CSV, "--pretrained",
                tiny_pretrained_run, "--out-dir", str(out), "--quiet"]
    with run_lock(str(out)):
        assert run_cli(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"in use by another electra-tf process (pid {os.getpid()})" in err[0]
    assert os.listdir(out) == [], "nothing was written, and the lock file goes with its lock"


def _cli_with_file_size_limit(args, limit_bytes):
    """`python -m electra_tf.cli ARGS` in a process whose files may not grow past
    `limit_bytes` (`ulimit -f`): writes beyond it fail with EFBIG, as on a full disk."""
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run([sys.executable, "-m", "electra_tf.cli", *args], preexec_fn=limit,
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))


def _error_lines(stderr):
    """The error line(s) among a command's stderr (its progress lines start "electra-tf: ")."""
    return [line for line in stderr.splitlines() if line.startswith("electra-tf ")
            or "Traceback" in line or "Error" in line]


@pytest.mark.slow(seconds=40)
def test_a_checkpoint_past_the_file_size_limit_is_one_line_and_the_run_resumes(files, tmp_path):
    """Issue 55, defect 5: SaveV2 failing with EFBIG was a traceback (`OutOfRangeError ... File
    too large`). Now one line names the folder; the files written before stay, and the same
    command without the limit resumes the run."""
    out = tmp_path / "run"
    args = ["pretrain", "--corpus", SAMPLE_CORPUS, "--vocab", str(files / "vocab.txt"),
            "--set", "model.vocab_size=50", "--out-dir", str(out), "--steps", "4",
            "--batch-size", "2", "--save-every", "2", "--log-every", "1", "--quiet"]
    failed = _cli_with_file_size_limit(args, 300_000)  # the checkpoint is ~1.5 MB
    assert failed.returncode == 2, failed.stderr[-2000:]
    lines = _error_lines(failed.stderr)
    assert len(lines) == 1 and "file-size limit" in lines[0] and str(out) in lines[0], lines
    assert (out / "vocab.txt").exists() and (out / "history.jsonl").read_text().count("\n") == 2
    assert run_cli(args) == 0
    assert (out / "discriminator.keras").exists()


@pytest.mark.slow(seconds=40)
def test_an_export_past_the_file_size_limit_keeps_the_earlier_export(tiny_pretrained_run,
                                                                     tmp_path):
    """Issue 55, defect 5: a failed export used to leave half a SavedModel in --out; it is now
    written beside it and moved in only when whole."""
    out = tmp_path / "export"
    assert main(["export", "--model", tiny_pretrained_run, "--out", str(out)]) == 0
    before = _snapshot(out)
    failed = _cli_with_file_size_limit(
        ["export", "--model", tiny_pretrained_run, "--out", str(out)], 20_000)
    assert failed.returncode == 2, failed.stderr[-2000:]
    lines = _error_lines(failed.stderr)
    assert len(lines) == 1 and "file-size limit" in lines[0] and str(out) in lines[0], lines
    assert _snapshot(out) == before
    assert os.listdir(tmp_path) == ["export"], "no partial export is left beside it"


def test_a_full_disk_is_named_and_not_called_out_of_memory(tiny_pretrained_run, tmp_path,
                                                           monkeypatch, capsys):
    """Issue 55, defect 5: TensorFlow reports ENOSPC as RESOURCE_EXHAUSTED, which the CLI read
    as "out of memory; lower --batch-size" (export has no --batch-size)."""
    import tensorflow as tf

    import electra_tf.export

    out = tmp_path / "export"

    def full_disk(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(
            None, None, f"{out}/variables/variables.data-00000-of-00001.tempstate1; "
                        "No space left on device")

    monkeypatch.setattr(electra_tf.export, "export_model", full_disk)
    assert main(["export", "--model", tiny_pretrained_run, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"the disk holding {out} is full" in err[0], err
    assert "memory" not in err[0] and "--batch-size" not in err[0]


def test_export_replaces_an_earlier_export_of_the_same_model_only(tiny_pretrained_run, tmp_path,
                                                                  capsys):
    """Issue 55, defect 10: `export --out` onto an earlier export of a different model replaced
    it silently (other non-empty folders were refused). Re-exporting the same model (another
    precision) still replaces its own export."""
    import shutil

    out = tmp_path / "export"
    assert main(["export", "--model", tiny_pretrained_run, "--out", str(out)]) == 0
    other = tmp_path / "other_model"
    shutil.copytree(tiny_pretrained_run, other)
    before = _snapshot(out)
    assert main(["export", "--model", str(other), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds the export of" in err[0] and "another --out" in err[0], err
    assert _snapshot(out) == before
    assert main(["export", "--model", tiny_pretrained_run, "--out", str(out),
                 "--precision", "mixed_bfloat16"]) == 0
    info = json.loads((out / "assets.extra" / "electra_tf.json").read_text())
    assert info["precision"] == "mixed_bfloat16" and info["export_dir"] == str(out)
    assert sorted(os.listdir(tmp_path)) == ["export", "other_model"]
