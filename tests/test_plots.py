"""The PNG plots that pretraining and fine-tuning write (electra_tf/training/plots.py)."""

import matplotlib

from electra_tf.training.plots import (
    plot_confusion_matrix,
    plot_finetuning_curves,
    plot_pretraining_curves,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_plots_write_pngs_and_leave_the_callers_backend_alone(tmp_path):
    """Switching the backend to Agg inside the library made a notebook's later `plt.show()`
    show nothing (notebook 03 lost its figures that way)."""
    before = matplotlib.get_backend()
    matplotlib.use("pdf")  # any backend the plots must not replace
    try:
        history = [{"step": s, "mlm_loss": 5 - s / 10, "disc_loss": 0.4, "disc_auc": 0.5 + s / 100,
                    "loss": 1.0, "accuracy": 0.5, "val_loss": 0.9, "val_accuracy": 0.6}
                   for s in (10, 20, 30)]
        plot_pretraining_curves(history, str(tmp_path / "pre" / "curves.png"))
        plot_finetuning_curves(history, str(tmp_path / "fine.png"))
        plot_confusion_matrix([[40, 10], [5, 45]], ["neg", "pos"], str(tmp_path / "cm.png"))
        assert matplotlib.get_backend() == "pdf"
    finally:
        matplotlib.use(before)
    for name in ("pre/curves.png", "fine.png", "cm.png"):
        data = (tmp_path / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000, name
