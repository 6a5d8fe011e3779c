"""``optforge coord-check SPEC``: does activation size stay flat across widths under μP (and grow under SP)?

Trains the task in SPEC at each width for a few steps, in the standard parametrization and in μP, and
plots every layer's mean |output| against width, one row per step, SP and μP side by side (see
:mod:`optforge.engine.mup.coord_check`). Prints, per layer, how much that size changes across the widths.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from optforge.cli._errors import bad_input, fail, parse_assignments
from optforge.cli.trial import CONFIG_OPTIONS, load_task
from optforge.spec import TrialConfig, load_spec

if TYPE_CHECKING:
    from optforge.engine.mup.coord_check import CoordRecord

MAX_ROWS = 4  # steps drawn: enough to see the trend, few enough to read


def _widths(text: str) -> list[int]:
    try:
        widths = sorted({int(w) for w in text.split(",") if w.strip()})
    except ValueError:
        raise fail(
            [("--widths", f"must be whole numbers separated by commas, got {text!r}")], "the command line"
        ) from None
    if len(widths) < 2 or widths[0] < 1:
        raise fail([("--widths", "give at least two positive widths, e.g. 64,128,256,512,1024")], "the command line")
    return widths


def _shown_steps(steps: int) -> list[int]:
    if steps + 1 <= MAX_ROWS:
        return list(range(steps + 1))
    return sorted({round(i * steps / (MAX_ROWS - 1)) for i in range(MAX_ROWS)})


def plot_coord_check(records: Sequence[CoordRecord], path: Path, *, title: str) -> Path:
    """Mean |output| per layer against width (log-log), one row per step, SP left and μP right."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display is needed or wanted
    import matplotlib.pyplot as plt

    steps = _shown_steps(max(r.step for r in records))
    layers = list(dict.fromkeys(r.layer for r in records))
    colour = {layer: plt.get_cmap("viridis")(i / max(1, len(layers) - 1)) for i, layer in enumerate(layers)}
    fig, axes = plt.subplots(len(steps), 2, figsize=(10, 2.6 * len(steps)), dpi=100, sharex=True, squeeze=False)
    for row, step in enumerate(steps):
        for col, (param, label) in enumerate((("sp", "standard parametrization"), ("mup", "μP"))):
            ax = axes[row][col]
            for layer in layers:
                points = sorted(
                    (r.width, r.value)
                    for r in records
                    if r.parametrization == param and r.step == step and r.layer == layer and r.value > 0
                )
                if points:
                    ax.plot(*zip(*points, strict=True), marker="o", markersize=3, color=colour[layer], label=layer)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_title(f"{label} · step {step}", fontsize=9)
            ax.grid(alpha=0.3)
            if col == 0:
                ax.set_ylabel("mean |output|")
            if row == len(steps) - 1:
                ax.set_xlabel("width")
        # SP and μP share a y range per row, so a flat μP curve and a growing SP curve are compared fairly.
        low = min(a.get_ylim()[0] for a in axes[row])
        high = max(a.get_ylim()[1] for a in axes[row])
        for a in axes[row]:
            a.set_ylim(low, high)
    axes[-1][1].legend(fontsize=7, loc="best")  # the last row: every layer has a nonzero value there
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _worst(records: Sequence[CoordRecord], parametrization: str, last: int) -> dict[str, tuple[float, int]]:
    """Per layer, the change across widths at the step where it is largest (furthest from 1 either way)."""
    from optforge.engine.mup.coord_check import growth

    worst: dict[str, tuple[float, int]] = {}
    for step in range(1, last + 1):
        for layer, change in growth(records, parametrization, step=step).items():  # type: ignore[arg-type]
            if layer not in worst or abs(math.log(change)) > abs(math.log(worst[layer][0])):
                worst[layer] = (change, step)
    return worst


def growth_table(records: Sequence[CoordRecord]) -> Table:
    """Per layer: the largest change in mean |output| from the narrowest to the widest width over the steps."""
    last = max(r.step for r in records)
    widths = sorted({r.width for r in records})
    sp, mup = _worst(records, "sp", last), _worst(records, "mup", last)
    table = Table(
        title=f"mean |output|, width {widths[0]} → {widths[-1]}: largest change over steps 1-{last} (x1.00 = flat)"
    )
    for name in ("layer", "SP", "μP"):
        table.add_column(name, justify="right" if name != "layer" else "left")
    for layer in dict.fromkeys(r.layer for r in records):
        table.add_row(layer, *(f"x{w[layer][0]:.2f} (step {w[layer][1]})" if layer in w else "-" for w in (sp, mup)))
    return table


def coord_check(
    spec: Annotated[Path, typer.Argument(help="TaskSpec YAML/JSON (or a StudySpec: its task is used)")],
    widths: Annotated[str, typer.Option(help="comma-separated widths")] = "64,128,256,512,1024",
    steps: Annotated[int, typer.Option(min=1, help="training steps recorded after initialization")] = 5,
    out: Annotated[Path, typer.Option(help="where to write the PNG")] = Path("coord_check.png"),
    family: Annotated[str, typer.Option("--family", "-f", help="optimizer family")] = "adamw",
    set_: Annotated[list[str] | None, typer.Option("--set", help="hyperparameter NAME=VALUE, repeatable")] = None,
) -> None:
    """Plot activation size against width over the first steps, SP and μP side by side."""
    task = load_task(spec, {})
    with bad_input("the command line", rename=CONFIG_OPTIONS):
        config = load_spec(TrialConfig, {"family": family, "hparams": parse_assignments(set_, "--set")})
    sizes = _widths(widths)

    from optforge.engine.mup.coord_check import coord_check as run_check  # deferred: torch loads only now

    with bad_input(str(spec)):
        records = run_check(task, config, widths=sizes, steps=steps)
    console = Console()
    console.print(growth_table(records))
    name = task.model.name or task.model.entrypoint
    title = f"coordinate check · {name} on {task.data.name or task.data.entrypoint} · {family} · base width {task.model.base_width}"
    console.print(f"wrote {plot_coord_check(records, out, title=title)}")
