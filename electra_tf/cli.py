"""`electra-tf`: the command-line interface.

Sub-commands so far:
    summary   parameter counts of the generator and discriminator a config builds
    demo      pretrain ELECTRA on a synthetic corpus for a minute and show the losses fall
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CONFIG_DIR = os.path.join(os.path.dirname(PACKAGE_DIR), "configs")


def resolve_config_path(name_or_path: str) -> str:
    """Accepts a path, or a shipped config name such as `electra_small`."""
    if os.path.exists(name_or_path):
        return name_or_path
    candidate = os.path.join(DEFAULT_CONFIG_DIR, f"{name_or_path}.yaml")
    if os.path.exists(candidate):
        return candidate
    return name_or_path  # load_config reports the missing file


def _build_parser() -> argparse.ArgumentParser:
    from electra_tf import __version__

    parser = argparse.ArgumentParser(
        prog="electra-tf", description="ELECTRA pretraining and fine-tuning for TensorFlow/Keras.")
    parser.add_argument("--version", action="version", version=f"electra_tf {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    summary = sub.add_parser("summary", help="parameter counts of the models a config builds")
    summary.add_argument("--config", default="electra_small",
                         help="YAML path or shipped name (electra_tiny/small/base/large)")
    summary.add_argument("--set", dest="overrides", action="append", default=[],
                         metavar="KEY=VALUE", help="override a config value, e.g. model.num_layers=4")

    demo = sub.add_parser(
        "demo", help="pretrain a small ELECTRA on a synthetic corpus and show the losses fall")
    demo.add_argument("--steps", type=int, default=600)
    demo.add_argument("--batch-size", type=int, default=32)
    demo.add_argument("--seed", type=int, default=0)
    return parser


def cmd_summary(args) -> int:
    from electra_tf import ElectraPretrainer, load_config

    config = load_config(resolve_config_path(args.config), args.overrides)
    pretrainer = ElectraPretrainer(config.model, config.pretraining)
    pretrainer.build({"token_ids": (None, None)})
    model = config.model
    print(f"config: {args.config}")
    if pretrainer.discriminator is not None:
        print(f"discriminator: {pretrainer.discriminator.count_params():>13,d} parameters "
              f"(hidden {model.hidden_size}, {model.num_layers} layers, {model.num_heads} heads)")
    gen_hidden = model.generator_hidden_size if config.pretraining.electra_objective \
        else model.hidden_size
    print(f"generator:     {pretrainer.generator.count_params():>13,d} parameters "
          f"(hidden {gen_hidden}, embeddings shared)")
    print(f"total:         {pretrainer.count_params():>13,d} parameters")
    return 0


def cmd_demo(args) -> int:
    import numpy as np

    from electra_tf import ElectraConfig, ElectraPretrainer, create_optimizer
    from electra_tf.data import synthetic_dataset

    # Small enough to show the objective working within a minute or two on 2 CPU cores.
    config = ElectraConfig.from_dict({
        "model": dict(vocab_size=128, embedding_size=64, hidden_size=64, num_layers=2,
                      num_heads=1, intermediate_size=256, generator_hidden_fraction=0.25),
        "pretraining": dict(max_seq_length=32, pad_id=0, cls_id=2, sep_id=3, mask_id=4),
        "optimizer": dict(learning_rate=2e-3, warmup_steps=max(1, args.steps // 12),
                          train_steps=args.steps, batch_size=args.batch_size),
    })
    print("Pretraining ELECTRA (generator hidden 16, discriminator hidden 64, 2 layers) on a "
          "synthetic corpus of topic-wise token progressions ...")
    pretrainer = ElectraPretrainer(config.model, config.pretraining, seed=args.seed)
    pretrainer.compile(optimizer=create_optimizer(config.optimizer))
    dataset = synthetic_dataset(4000, 32, 128, args.batch_size, seed=args.seed)
    epochs = 6
    started = time.time()
    history = pretrainer.fit(dataset, steps_per_epoch=max(1, args.steps // epochs), epochs=epochs,
                             verbose=2)
    logs = history.history
    print(f"\nDone in {time.time() - started:.0f} s. First epoch -> last epoch:")
    for key in ("mlm_loss", "disc_loss", "mlm_accuracy", "disc_recall"):
        print(f"  {key:<13} {logs[key][0]:.3f} -> {logs[key][-1]:.3f}")
    ok = logs["disc_loss"][-1] < logs["disc_loss"][0] and logs["mlm_loss"][-1] < logs["mlm_loss"][0]
    print("Both losses fell: the objective is learning." if ok else
          "The losses did not fall; please report this with the log above.")
    return 0 if ok and np.isfinite(logs["loss"][-1]) else 1


COMMANDS = {"summary": cmd_summary, "demo": cmd_demo}


def main(argv=None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    from electra_tf.config import ConfigError

    try:
        return COMMANDS[args.command](args)
    except ConfigError as err:
        print(f"electra-tf {args.command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
