"""``optforge trial SPEC.yaml``: train one configuration and print its curve."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from optforge.cli._errors import bad_input, parse_assignments
from optforge.spec import SpecError, StudySpec, TaskSpec, TrialConfig, TrialStatus, load_spec, read_mapping

if TYPE_CHECKING:
    from optforge.spec import MetricPoint, TrialResult

SPEC_SUFFIXES = (".yaml", ".yml", ".json")
MAX_ROWS = 20  # rows of the curve table; longer curves are shown evenly thinned, always with the last point
CONFIG_OPTIONS = {
    "family": "--family",
    "hparams": "--set",
    "schedule": "--schedule",
    "schedule_params": "--schedule-set",
}
STATUS_STYLE = {"completed": "green", "pruned": "yellow", "diverged": "red", "failed": "bold red"}


def load_task(path: Path, overrides: dict[str, Any]) -> TaskSpec:
    """The TaskSpec in ``path`` (or the ``task`` of a StudySpec there), with ``overrides`` applied."""
    with bad_input(str(path)):
        if path.suffix.lower() not in SPEC_SUFFIXES:
            raise SpecError([("SPEC", f"must be a {', '.join(SPEC_SUFFIXES)} file, got {path.name!r}")])
        mapping = copy.deepcopy(read_mapping(path))
        is_study = "task" in mapping or "search" in mapping
        task_fields = mapping.setdefault("task", {}) if is_study else mapping
        if isinstance(task_fields, dict):  # otherwise StudySpec validation reports the bad 'task'
            task_fields.update({k: v for k, v in overrides.items() if v is not None})
        return load_spec(StudySpec, mapping).task if is_study else load_spec(TaskSpec, mapping)


def _fmt(value: float | None, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def curve_table(curve: list[MetricPoint], title: str = "") -> Table:
    """The curve as a table, thinned to :data:`MAX_ROWS` rows."""
    table = Table(title=title or None, title_justify="left")
    for name in ("step", "train loss", "val loss", "val acc", "lr", "examples/s"):
        table.add_column(name, justify="right")
    stride = max(1, -(-len(curve) // MAX_ROWS))
    shown = curve[::stride]
    if curve and shown[-1] is not curve[-1]:
        shown.append(curve[-1])
    for p in shown:
        table.add_row(
            str(p.step),
            _fmt(p.train_loss),
            _fmt(p.val_loss),
            _fmt(p.val_accuracy),
            f"{p.lr:.3g}",
            f"{p.examples_per_s:,.0f}",
        )
    return table


def print_summary(console: Console, result: TrialResult) -> None:
    """Status, time, final and best metric, time to target and, for diverged/failed trials, why."""
    style = STATUS_STYLE.get(result.status.value, "bold")
    info = result.info
    console.print(
        f"[{style}]{result.status.value}[/] after {result.steps} steps in {result.wall_time:.1f} s on {result.device}"
        + (f" · {info['n_params']:,} parameters" if "n_params" in info else "")
    )
    console.print(f"{result.metric}: final {_fmt(result.final)}, best {_fmt(result.best)}")
    if result.step_reached_target is not None:
        console.print(f"target reached at step {result.step_reached_target} ({result.seconds_reached_target:.1f} s)")
    if result.error:
        console.print(result.error, style="red", markup=False, highlight=False)


def run_cli_trial(
    spec: Path,
    *,
    family: str | None = None,
    hparams: dict[str, Any] | None = None,
    schedule: str | None = None,
    schedule_params: dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
    json_output: bool = False,
) -> TrialResult:
    """Validate everything, train, print; raise typer.Exit(2) on bad input, (1) if the trial failed."""
    task = load_task(spec, overrides or {})
    fields: dict[str, Any] = {"hparams": hparams or {}, "schedule_params": schedule_params or {}}
    fields.update({k: v for k, v in (("family", family), ("schedule", schedule)) if v is not None})
    with bad_input("the command line", rename=CONFIG_OPTIONS):
        config = load_spec(TrialConfig, fields)

    from optforge.engine import run_trial  # deferred: torch loads only once the input is known to be good

    console = Console()
    title = f"{config.family} · {config.schedule} · {task.model.name or task.model.entrypoint} on " + (
        task.data.name or task.data.entrypoint or ""
    )
    with bad_input(str(spec)):
        if json_output or not console.is_terminal:
            result = run_trial(task, config)
        else:  # a live table that grows with every evaluation
            points: list[MetricPoint] = []
            with Live(curve_table(points, title), console=console, refresh_per_second=4) as live:

                def report(step: int, point: MetricPoint) -> None:
                    points.append(point)
                    live.update(curve_table(points, title))

                result = run_trial(task, config, report)
    if json_output:
        typer.echo(result.model_dump_json(indent=2))
        return_or_exit(result)
        return result
    if not console.is_terminal:
        console.print(curve_table(result.curve, title))
    print_summary(console, result)
    return_or_exit(result)
    return result


def return_or_exit(result: TrialResult) -> None:
    """Exit 1 for a failed trial; a diverged or pruned trial is a result, not an error."""
    if result.status == TrialStatus.FAILED:
        raise typer.Exit(1)


def trial(
    spec: Annotated[Path, typer.Argument(help="TaskSpec YAML/JSON (or a StudySpec: its task is used)")],
    family: Annotated[str | None, typer.Option("--family", "-f", help="optimizer family (default adamw)")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="hyperparameter NAME=VALUE, repeatable")] = None,
    schedule: Annotated[str | None, typer.Option(help="LR schedule (default cosine)")] = None,
    schedule_set: Annotated[
        list[str] | None, typer.Option("--schedule-set", help="schedule parameter NAME=VALUE, repeatable")
    ] = None,
    steps: Annotated[int | None, typer.Option(help="override the spec's step budget")] = None,
    seed: Annotated[int | None, typer.Option(help="override the spec's seed")] = None,
    device: Annotated[str | None, typer.Option(help="auto | cpu | cuda")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="print the TrialResult as JSON")] = False,
) -> None:
    """Train one configuration of the task in SPEC and print a curve summary."""
    run_cli_trial(
        spec,
        family=family,
        hparams=parse_assignments(set_, "--set"),
        schedule=schedule,
        schedule_params=parse_assignments(schedule_set, "--schedule-set"),
        overrides={"steps": steps, "seed": seed, "device": device},
        json_output=json_output,
    )
