"""The CLI's meta-training callback: a JSONL log of every meta-loss point, and its plot as a PNG."""

from __future__ import annotations

from pathlib import Path

from optforge.learned_opt.weights import LearnedWeights
from optforge.spec import MetaLossPoint

LOG = "meta_loss.jsonl"
PLOT = "meta_loss.png"


class JsonlLog:
    """Appends each :class:`MetaLossPoint` as one JSON line to ``path``; on resume, drops later lines."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def on_point(self, point: MetaLossPoint) -> None:
        with self.path.open("a") as f:
            f.write(point.model_dump_json() + "\n")

    def on_checkpoint(self, step: int, weights: LearnedWeights, metrics: dict[str, float]) -> None:
        pass  # the checkpoint file itself is written by the trainer

    def on_resume(self, step: int) -> None:
        kept = [p for p in read_log(self.path) if p.step <= step] if self.path.is_file() else []
        self.path.write_text("".join(p.model_dump_json() + "\n" for p in kept))


def read_log(path: str | Path) -> list[MetaLossPoint]:
    """The points of a JSONL meta-loss log, in file order."""
    return [MetaLossPoint.model_validate_json(line) for line in Path(path).read_text().splitlines() if line.strip()]


def plot_meta_loss(points: list[MetaLossPoint], path: str | Path, *, title: str = "meta-training") -> Path:
    """The PES meta-loss per outer step (and its running mean) and the evaluation meta-loss, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    train = [p for p in points if p.step > 0]
    evals = [p for p in points if "eval_meta_loss" in p.metrics]
    fig, ax = plt.subplots(figsize=(7, 4))
    if train:
        steps = [p.step for p in train]
        losses = [p.meta_loss for p in train]
        ax.plot(steps, losses, color="tab:blue", alpha=0.3, lw=1, label="PES meta-loss (per outer step)")
        window = max(1, len(losses) // 20)
        smooth = [
            sum(losses[max(0, i - window + 1) : i + 1]) / len(losses[max(0, i - window + 1) : i + 1])
            for i in range(len(losses))
        ]
        ax.plot(steps, smooth, color="tab:blue", lw=2, label=f"PES meta-loss (mean of {window})")
    if evals:
        ax.plot(
            [p.step for p in evals],
            [p.metrics["eval_meta_loss"] for p in evals],
            "o-",
            color="tab:red",
            lw=2,
            label="fixed evaluation tasks, unperturbed θ",
        )
    ax.set_xlabel("outer step")
    ax.set_ylabel("meta-loss (train loss / initial loss, mean over steps)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
