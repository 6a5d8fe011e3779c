"""``optforge tune SPEC.yaml``: a whole study on local Ray, with no server and no database."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from optforge.cli._errors import bad_input, fail
from optforge.spec import StudyEvent, StudyEventKind, StudySpec, TrialConfig, TrialStatus, load_spec, read_mapping

if TYPE_CHECKING:
    from optforge.search import StudyResult

MAX_ROWS = 25  # ranked-table rows; the rest are summarized in one line
STATUS_STYLE = {"completed": "green", "pruned": "yellow", "diverged": "red", "failed": "bold red", "cancelled": "dim"}


def load_study(path: Path, n_trials: int | None) -> StudySpec:
    """The StudySpec in ``path`` (a bare TaskSpec is searched with default settings), ``--trials`` applied."""
    with bad_input(str(path)):
        mapping = copy.deepcopy(read_mapping(path))
        if "task" not in mapping and "search" not in mapping:
            mapping = {"name": path.stem, "task": mapping}
        mapping.setdefault("name", path.stem)
        if n_trials is not None:
            search = mapping.setdefault("search", {})
            if isinstance(search, dict):
                search["n_trials"] = n_trials
        return load_spec(StudySpec, mapping)


class ProgressReporter:
    """Drives a rich progress bar from study events: trials done / planned, the best value and its family."""

    def __init__(self, progress: Progress, spec: StudySpec) -> None:
        self.progress = progress
        self.metric = spec.task.metric
        self.task = progress.add_task("search", total=spec.search.n_trials, best="")
        self.reseed: Any = None

    def __call__(self, event: StudyEvent) -> None:
        data = event.data
        if event.kind == StudyEventKind.TRIAL_FINISHED:
            task = self.task if data.get("phase") == "search" else self.reseed
            if task is not None:
                self.progress.advance(task)
        elif event.kind == StudyEventKind.BEST_CHANGED and data.get("value") is not None:
            best = f"best {self.metric} {data['value']:.4f} ({data['family']} · {data['schedule']})"
            self.progress.update(self.task, best=best)
        elif event.kind == StudyEventKind.PHASE:
            total = data.get("configs", 0) * len(data.get("seeds", []))
            self.reseed = self.progress.add_task("re-seed top-k", total=total, best="")


def ranked_table(result: StudyResult) -> Table:
    """The search trials, best first."""
    table = Table(title=f"{result.name}: trials ranked by {_objective(result)}", title_justify="left")
    for name in ("#", "trial", "family", "schedule", "status", "steps", f"final {result.metric}", "lr"):
        table.add_column(name, justify="right" if name in ("#", "steps", "lr") or name.startswith("final") else "left")
    for trial in result.trials[:MAX_ROWS]:
        style = STATUS_STYLE.get(trial.status.value, "")
        lr = trial.config.resolved_hparams().get("lr")
        final = trial.result.final
        table.add_row(
            str(trial.rank),
            trial.trial_id,
            trial.config.family,
            trial.config.schedule,
            f"[{style}]{trial.status.value}[/]" if style else trial.status.value,
            str(trial.result.steps),
            "-" if final is None else f"{final:.4f}",
            "-" if lr is None else f"{lr:.3g}",
        )
    if len(result.trials) > MAX_ROWS:
        table.caption = f"… and {len(result.trials) - MAX_ROWS} more"
    return table


def seed_table(result: StudyResult) -> Table:
    """The top-k configurations re-run with extra seeds, ranked by their mean."""
    table = Table(
        title=f"top-{len(result.seed_groups)} re-run with {len(result.seed_groups[0].seeds)} seeds",
        title_justify="left",
    )
    for name in ("#", "family", "schedule", f"mean {result.metric}", "std", "seeds"):
        table.add_column(name)
    for group in result.seed_groups:
        table.add_row(
            str(group.rank),
            group.config.family,
            group.config.schedule,
            "-" if group.mean is None else f"{group.mean:.4f}",
            "-" if group.std is None else f"{group.std:.4f}",
            ", ".join(map(str, group.seeds)),
        )
    return table


def _objective(result: StudyResult) -> str:
    return f"time to target, then {result.metric}" if result.objective == "time_to_target" else f"final {result.metric}"


def config_yaml(config: TrialConfig) -> str:
    """The configuration as YAML, ready to paste into a spec's ``search.initial_configs`` or ``optforge trial``."""
    return yaml.safe_dump(json.loads(config.model_dump_json()), sort_keys=False)


def write_outputs(result: StudyResult, out: Path) -> list[Path]:
    """``results.json`` (the whole StudyResult) and ``learning_curves.png`` under ``out``."""
    from optforge.search.plot import plot_learning_curves

    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.json"
    results.write_text(result.model_dump_json(indent=2))
    return [results, plot_learning_curves(result, out / "learning_curves.png")]


def tune(
    spec: Annotated[Path, typer.Argument(help="StudySpec YAML/JSON (a bare TaskSpec is searched with defaults)")],
    json_output: Annotated[bool, typer.Option("--json", help="print the StudyResult as JSON")] = False,
    out: Annotated[Path | None, typer.Option("--out", help="write results.json and learning_curves.png here")] = None,
    trials: Annotated[int | None, typer.Option("--trials", "-n", help="override search.n_trials")] = None,
    ray_address: Annotated[
        str | None, typer.Option("--ray-address", help="join this Ray cluster (default: RAY_ADDRESS, else local)")
    ] = None,
) -> None:
    """Search SPEC's optimizer families, schedules and hyperparameters on local Ray; print the ranking."""
    study = load_study(spec, trials)
    from optforge.search import run_study, validate_study  # deferred: ray and torch load once the spec is good

    if study.search.proxy is not None:
        raise fail(
            [
                (
                    "search.proxy",
                    "optforge tune searches one width; submit μTransfer studies to the service "
                    "(optforge serve) or call optforge.search.transfer.run_transfer",
                )
            ],
            str(spec),
        )

    with bad_input(str(spec)):
        validate_study(study)
    console = Console(stderr=json_output)
    with bad_input(str(spec)):
        if json_output or not console.is_terminal:
            result = run_study(study, ray_address=ray_address)
        else:
            columns = (
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[best]}"),
            )
            with Progress(*columns, console=console, transient=False) as progress:
                result = run_study(study, reporter=ProgressReporter(progress, study), ray_address=ray_address)
    written = write_outputs(result, out) if out is not None else []
    if json_output:
        typer.echo(result.model_dump_json(indent=2))
    else:
        _print_summary(console, result, written)
    if not any(t.status == TrialStatus.COMPLETED for t in result.trials):
        raise typer.Exit(1)


def _print_summary(console: Console, result: StudyResult, written: list[Path]) -> None:
    console.print(ranked_table(result))
    counts = ", ".join(f"{n} {status}" for status, n in sorted(result.counts().items()))
    console.print(f"{len(result.trials)} trials in {result.wall_time:.1f} s: {counts}")
    if result.seed_groups:
        console.print(seed_table(result))
    if result.best_config is not None:
        value = f"{result.best_value:.4f}" + (f" ± {result.best_std:.4f}" if result.best_std is not None else "")
        console.print(f"\n[bold]best configuration[/] ({result.metric} {value}):")
        console.print(config_yaml(result.best_config), markup=False, highlight=False)
    else:
        console.print("[bold red]no trial completed[/]: see the statuses above")
    for path in written:
        console.print(f"wrote {path}")
