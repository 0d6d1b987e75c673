"""PNG plots of training curves (matplotlib, headless).

Figures are made with `matplotlib.figure.Figure`, not pyplot: writing a PNG needs no backend,
and the caller's backend stays as it was (switching it to Agg here made every later
`plt.show()` in a notebook show nothing).
"""

from __future__ import annotations

import os


def _figure(**kwargs):
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _save(fig, path: str):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)


def plot_pretraining_curves(history: list[dict], path: str, title: str = "ELECTRA pretraining"):
    """Plots mlm_loss, disc_loss, and the discriminator's accuracy/precision/recall per step.

    Args:
        history: records with `step` and metric keys (as in `history.jsonl`).
        path: the PNG to write.
    """
    if not history:
        return
    steps = [r["step"] for r in history]
    panels = [("losses", ["mlm_loss", "disc_loss"]),
              ("discriminator / generator accuracy",
               ["disc_auc", "disc_recall", "disc_precision", "disc_accuracy", "mlm_accuracy"])]
    fig = _figure(figsize=(11, 4))
    axes = fig.subplots(1, 2)
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
    _save(fig, path)


def plot_finetuning_curves(history: list[dict], path: str, title: str = "Fine-tuning",
                           metric: str = "accuracy"):
    """Training and validation loss and `metric` per evaluation (records with `step`, `loss`,
    `metric`, `val_loss`, `val_` + `metric`)."""
    if not history:
        return
    steps = [r["step"] for r in history]
    fig = _figure(figsize=(11, 4))
    axes = fig.subplots(1, 2)
    for ax, name in zip(axes, ("loss", metric)):
        for key, label in ((name, "train (interval mean)"), (f"val_{name}", "validation")):
            if key in history[0]:
                ax.plot(steps, [r[key] for r in history], marker=".", label=label)
        ax.set_xlabel("step")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)


def plot_confusion_matrix(confusion, label_names, path: str, title: str = "Confusion matrix"):
    """Heatmap of counts, rows = true class, columns = predicted class."""
    k = len(label_names)
    fig = _figure(figsize=(1.2 * k + 2.5, 1.2 * k + 2))
    ax = fig.subplots()
    image = ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(k), label_names)
    ax.set_yticks(range(k), label_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    peak = max(max(row) for row in confusion) or 1
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(confusion[i][j]), ha="center", va="center",
                    color="white" if confusion[i][j] > peak / 2 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046)
    ax.set_title(title)
    fig.tight_layout()
    _save(fig, path)
