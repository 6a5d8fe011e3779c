"""The learning-curve figure of a study: the metric against steps, one line per trial."""

from __future__ import annotations

from pathlib import Path

from optforge.search.results import StudyResult
from optforge.spec import TrialStatus

# Line style says how a trial ended; colour says which family it was.
STATUS_STYLE: dict[TrialStatus, dict[str, object]] = {
    TrialStatus.COMPLETED: {"linestyle": "-", "linewidth": 1.6, "alpha": 0.95},
    TrialStatus.PRUNED: {"linestyle": "--", "linewidth": 1.0, "alpha": 0.6},
    TrialStatus.DIVERGED: {"linestyle": ":", "linewidth": 1.2, "alpha": 0.9, "marker": "x"},
    TrialStatus.FAILED: {"linestyle": ":", "linewidth": 1.0, "alpha": 0.5},
    TrialStatus.CANCELLED: {"linestyle": "-.", "linewidth": 1.0, "alpha": 0.5},
}


def plot_learning_curves(result: StudyResult, path: str | Path) -> Path:
    """Write a PNG of every search trial's ``result.metric`` against step to ``path``; return the path.

    A diverged trial ends in an ``x`` at its last finite point; the best trial is drawn thickest.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only: no display is needed or wanted
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    families = sorted({t.config.family for t in result.trials})
    palette = plt.get_cmap("tab10")
    colour = {family: palette(i % 10) for i, family in enumerate(families)}
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    for trial in result.trials:
        points = [(p.step, p.metric(result.metric)) for p in trial.result.curve]
        points = [(s, v) for s, v in points if v is not None]
        if not points:
            continue
        style = dict(STATUS_STYLE.get(trial.status, STATUS_STYLE[TrialStatus.COMPLETED]))
        if trial.trial_id == result.best_trial_id:
            style.update(linewidth=3.0, alpha=1.0)
        marker = style.pop("marker", None)
        steps, values = zip(*points, strict=True)
        # Small dots on every evaluation, so a trial pruned at its first rung (one point) still shows.
        ax.plot(steps, values, color=colour[trial.config.family], marker="o", markersize=2.5, **style)  # type: ignore[arg-type]
        if marker:
            ax.plot(
                steps[-1:],
                values[-1:],
                color=colour[trial.config.family],
                marker=marker,
                markersize=9,
                linestyle="none",
            )
    handles = [Line2D([], [], color=colour[f], linewidth=2, label=f) for f in families]
    handles += [
        Line2D([], [], color="grey", label=s.value, **{k: v for k, v in style.items() if k != "alpha"})  # type: ignore[arg-type]
        for s, style in STATUS_STYLE.items()
        if any(t.status == s for t in result.trials)
    ]
    ax.legend(handles=handles, fontsize=8, ncol=2, loc="upper right")
    ax.set_xlabel("step")
    ax.set_ylabel(result.metric.replace("_", " "))
    ax.set_title(f"{result.name}: {len(result.trials)} trials")
    ax.grid(alpha=0.3)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out
