"""Makes a preset installed with the package: by default `electra_cpu_imdb`, the ELECTRA arm of
the IMDB experiment (`benchmarks/imdb_experiment.py`: `configs/electra_cpu.yaml`, 8,000 steps of
32 x 128 tokens on IMDB's train/unsup + train/pos + train/neg, never test/). It pretrains (or
finds finished) the run and copies its discriminator, vocabulary and settings into `--out-dir`
(default `electra_tf/pretrained/presets/electra_cpu_imdb/`; the folder's name is the preset's) with
`preset.json` saying how it was made, including the exact `electra-tf pretrain` command.

    .venv/bin/python tools/make_preset.py [--run-dir runs/preset/pretrain_electra] \\
        [--corpus ../shared/data/aclImdb_v1-text.tar.gz] [--steps 8000] [--out-dir DIR] \\
        [--vocab VOCAB] [--save-every 500] [--keep-checkpoints N] [--set KEY=VALUE ...]

`electra_cpu_imdb_long` (the quickstart's) is the same recipe and vocabulary on a 24,000-step
schedule: `--run-dir runs/preset_long/pretrain_electra --steps 24000 --out-dir
electra_tf/pretrained/presets/electra_cpu_imdb_long
--vocab electra_tf/pretrained/presets/electra_cpu_imdb/vocab.txt
--save-every 1000 --keep-checkpoints 30 --description ...` (about 3 h).

A run packaged when already finished must have been made with the same options, since they are
what `preset.json` records (the vocabulary, for instance: `--vocab` reuses an existing preset's
instead of learning one from the corpus); the vocabulary and `--save-every` are checked against
the run's `run.json`, and a mismatch stops with a one-line message before anything is written.

The pretraining is an ordinary `electra-tf pretrain` run in `--run-dir`: it resumes from its
last checkpoint when interrupted (about 70 min on 2 idle AMD EPYC cores), and a finished run is
only packaged again.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(os.path.dirname(ROOT), "shared", "data", "aclImdb_v1-text.tar.gz")
NAME = "electra_cpu_imdb"
DESCRIPTION = ("ELECTRA discriminator of the CPU recipe (configs/electra_cpu.yaml: 4 layers, "
               "width 128, ALiBi, pre-LN, convolutional FFN; 8,192-piece uncased WordPiece "
               "vocabulary learned from the corpus), pretrained on IMDB reviews in about an hour "
               "of a 2-core CPU. The ELECTRA arm of benchmarks/results/imdb.md.")
DATA = ("IMDB movie reviews (Maas et al. 2011, aclImdb_v1): train/unsup, train/pos and "
        "train/neg, 75,000 reviews, labels unused; never test/.")


def pretraining_command(args) -> list[str]:
    """The preset's pretraining run (the experiment's ELECTRA arm, plus any `--vocab`,
    `--keep-checkpoints` and `--set` options), as an `electra-tf` command line."""
    command = ["pretrain", "--out-dir", args.run_dir, "--steps", str(args.steps),
               "--config", os.path.join(ROOT, "configs", "electra_cpu.yaml"), "--corpus",
               args.corpus, "--save-every", str(args.save_every), "--log-every", "100",
               "--quiet"]
    if args.vocab:
        command += ["--vocab", os.path.abspath(args.vocab)]
    if args.keep_checkpoints:
        command += ["--keep-checkpoints", str(args.keep_checkpoints)]
    for override in args.set:
        command += ["--set", override]
    return command


def options_mismatch(args) -> str | None:
    """Why the options would misstate how the existing run in `args.run_dir` was made (its
    `run.json`: vocabulary fingerprint, learned or given; its config: the checkpoint interval),
    or None."""
    from electra_tf.data.vocab import load_vocabulary, vocabulary_fingerprint
    from electra_tf.files import read_json
    from electra_tf.runs.layouts import PretrainPaths

    run = read_json(PretrainPaths(args.run_dir).run)  # {} before the run starts
    if not run:
        return None
    if args.vocab:
        if run.get("vocab_learned", False):
            return "it learned its vocabulary from the corpus; drop --vocab"
        given = vocabulary_fingerprint(load_vocabulary(args.vocab))
        if given != run.get("vocab_fingerprint", given):
            return (f"it was made with another vocabulary than {args.vocab}; pass the one it "
                    "was made with (its vocab.txt)")
    elif run.get("vocab_learned") is False:
        return "it was made with a given vocabulary; pass it with --vocab"
    saved_every = _checkpoint_interval(args.run_dir, run)
    if saved_every is not None and saved_every != args.save_every:
        return f"it saved every {saved_every} steps; pass --save-every {saved_every}"
    return None


def _checkpoint_interval(run_dir: str, run: dict) -> int | None:
    """The run's `run.save_every` (config.yaml), or run.json's for a run made before the config
    had a `run` section."""
    import yaml

    from electra_tf.runs.layouts import PretrainPaths

    path = PretrainPaths(run_dir).config
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            section = (yaml.safe_load(f) or {}).get("run")
        if isinstance(section, dict) and "save_every" in section:
            return section["save_every"]
    return run.get("save_every")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", default=os.path.join(ROOT, "runs", "preset",
                                                          "pretrain_electra"))
    parser.add_argument("--corpus", default=CORPUS, help="the aclImdb archive or folder")
    parser.add_argument("--steps", type=int, default=8000)
    parser.add_argument("--out-dir",
                        default=os.path.join(ROOT, "electra_tf", "pretrained", "presets", NAME),
                        help="the preset's folder; its name is the preset's name")
    parser.add_argument("--vocab", help="a WordPiece vocabulary to pretrain with instead of "
                                        "learning one from the corpus")
    parser.add_argument("--save-every", type=int, default=500, help="checkpoint every N steps")
    parser.add_argument("--keep-checkpoints", type=int, help="checkpoints kept (default: the "
                                                             "pretrain command's)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override for the pretraining run (repeatable)")
    parser.add_argument("--description", default=DESCRIPTION,
                        help="what the preset is, for preset.json")
    args = parser.parse_args(argv)

    from preset_writer import write_preset

    mismatch = options_mismatch(args)
    if mismatch:
        print(f"make_preset: the run in {args.run_dir} does not match these options: {mismatch}.",
              file=sys.stderr)
        return 2
    command = pretraining_command(args)
    if not os.path.isfile(os.path.join(args.run_dir, "metrics.json")):
        print("+ electra-tf", " ".join(command), flush=True)
        subprocess.run([sys.executable, "-m", "electra_tf.cli", *command], check=True)
    # Recorded with paths relative to the repository (and the archive by name), as a reader
    # would type it.
    readable = [os.path.basename(a) if a == args.corpus else
                os.path.relpath(a, ROOT) if os.path.isabs(a) else a for a in command]
    manifest = write_preset(args.run_dir, args.out_dir, description=args.description, data=DATA,
                            extra={"pretraining_command": "electra-tf " + " ".join(readable)})
    print(f"Wrote preset {manifest['name']!r} to {args.out_dir}: {manifest['steps']} steps, "
          f"{manifest['train_flops']:.2e} FLOPs, {manifest['discriminator_parameters']:,} "
          "parameters.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
