"""PNG plots of training curves (matplotlib, headless)."""

from __future__ import annotations

import os


def plot_pretraining_curves(history: list[dict], path: str, title: str = "ELECTRA pretraining"):
    """Plots mlm_loss, disc_loss, and the discriminator's accuracy/precision/recall per step.

    Args:
        history: records with `step` and metric keys (as in `history.jsonl`).
        path: the PNG to write.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not history:
        return
    steps = [r["step"] for r in history]
    panels = [("losses", ["mlm_loss", "disc_loss"]),
              ("discriminator / generator accuracy",
               ["disc_recall", "disc_precision", "disc_accuracy", "mlm_accuracy"])]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, (name, keys) in zip(axes, panels):
        for key in keys:
            if key in history[0]:
                ax.plot(steps, [r[key] for r in history], label=key, marker="." if
                        len(steps) < 40 else None)
        ax.set_xlabel("step")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
