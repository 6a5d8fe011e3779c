"""``optforge submit | status | list | best | cancel``: the service's studies, through the SDK.

Every command takes ``--url`` and ``--token`` (default ``$OPTFORGE_URL`` / ``$OPTFORGE_TOKEN``, else
http://127.0.0.1:8000 with no token). Output is a table by default and JSON with ``--json``. Bad input
(a spec that fails validation, a bad URL) exits 2 naming the field; an error from the service exits 1
with its field-level messages; a study that fails or is cancelled under ``--wait`` exits 1.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from optforge.cli._errors import err_console, fail
from optforge.client import (
    ApiError,
    Client,
    ConnectionFailed,
    OptforgeError,
    Study,
    ValidationFailed,
)
from optforge.client._progress import describe_best
from optforge.spec import SpecError, StudyStatus, read_mapping
from optforge.spec._api import StudyPublic

SERVICE_ERROR = 1  # the service refused or failed, or the waited-for study did not complete
INTERRUPTED = 130  # the shell's code for Ctrl-C
STATUS_STYLE = {"queued": "cyan", "running": "yellow", "completed": "green", "failed": "bold red", "cancelled": "dim"}

UrlOption = Annotated[
    str | None, typer.Option("--url", envvar="OPTFORGE_URL", help="the service (default http://127.0.0.1:8000)")
]
TokenOption = Annotated[
    str | None, typer.Option("--token", envvar="OPTFORGE_TOKEN", help="API token (`optforge token create`)")
]
JsonFlag = Annotated[bool, typer.Option("--json", help="print JSON")]
StudyIdArg = Annotated[int, typer.Argument(help="the study's id (see `optforge list`)", min=1)]


class BestFormat(StrEnum):
    yaml = "yaml"
    json = "json"
    python = "python"


@contextlib.contextmanager
def _client(url: str | None, token: str | None) -> Iterator[Client]:
    """A Client whose errors become messages and exit codes, never tracebacks."""
    try:
        client = Client(url, token)
    except ValueError as exc:  # a malformed URL: the message starts with where it came from
        field, _, message = str(exc).partition(": ")
        raise fail([(field if field in ("url", "OPTFORGE_URL") else "--url", message or str(exc))], "--url") from None
    try:
        yield client
    except ValidationFailed as exc:
        if exc.status_code is None:  # failed locally, before anything was sent: bad input
            raise fail(exc.errors, "the spec") from None
        raise _service_error(exc) from None
    except ApiError as exc:
        raise _service_error(exc) from None
    except ConnectionFailed as exc:
        err_console.print(f"[bold red]error[/]: {exc}", soft_wrap=True, markup=False)
        raise typer.Exit(SERVICE_ERROR) from None
    except OptforgeError as exc:  # StudyFailed, WaitTimeout
        err_console.print(f"[bold red]error[/]: {exc}", soft_wrap=True)
        raise typer.Exit(SERVICE_ERROR) from None
    finally:
        client.close()


def _service_error(exc: ApiError) -> typer.Exit:
    err_console.print(
        f"[bold red]error[/] {exc.status_code} from the service ({escape(exc.method)} {escape(exc.url)}):"
    )
    for loc, msg in exc.errors:
        err_console.print(f"  [bold]{escape(loc or '(request)')}[/]: {escape(msg)}", soft_wrap=True, highlight=False)
    return typer.Exit(SERVICE_ERROR)


def _console() -> Console:
    """stdout; long lines are not wrapped, so ids and commands stay whole when copied or grepped."""
    return Console(highlight=False, soft_wrap=True)


def _trials(n: int) -> str:
    return f"{n} trial" if n == 1 else f"{n} trials"


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def _when(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _status(status: StudyStatus) -> str:
    return f"[{STATUS_STYLE.get(status.value, 'bold')}]{status.value}[/]"


def _best_cell(study: StudyPublic) -> str:
    return "-" if study.best is None else f"{study.best.value:.4g} ({study.best.family} + {study.best.schedule})"


def _load_spec(spec: Path, name: str | None, trials: int | None) -> dict[str, Any]:
    """The StudySpec mapping in ``spec``; a bare TaskSpec file becomes the task of a default search."""
    try:
        mapping = dict(read_mapping(spec))
    except SpecError as exc:
        raise fail(exc.errors, str(spec)) from None
    if not ({"task", "search", "name"} & mapping.keys()):
        mapping = {"name": spec.stem, "task": mapping}
    if name is not None:
        mapping["name"] = name
    if trials is not None:
        search = mapping.get("search")
        mapping["search"] = {**(search if isinstance(search, dict) else {}), "n_trials": trials}
    return mapping


def _study_table(study: StudyPublic) -> Table:
    p = study.progress
    table = Table(title=f"study {study.id}: {escape(study.name)}", title_justify="left", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    task = study.spec.task
    what = f"{task.model.name or task.model.entrypoint} on {task.data.name or task.data.entrypoint}"
    rows = [
        ("status", _status(study.status) + (" (cancel requested)" if study.cancel_requested else "")),
        ("owner", escape(study.owner or "-")),
        ("task", escape(f"{what}, {task.steps} steps, {task.metric}")),
        ("trials", f"{p.trials_finished}/{p.trials_total} finished, {p.trials_running} running"),
        ("best so far", escape(describe_best(study))),
        ("created", _when(study.created_at)),
        ("started", _when(study.started_at)),
        ("finished", _when(study.finished_at)),
        ("elapsed", f"{study.elapsed_s:.1f} s" if study.elapsed_s is not None else "-"),
    ]  # fmt: skip
    if study.resumed:
        rows.append(("resumed", f"{study.resumed} time(s)"))
    if study.error:
        rows.append(("error", escape(study.error)))
    for field, value in rows:
        table.add_row(field, value)
    return table


def submit(
    spec: Annotated[Path, typer.Argument(help="StudySpec YAML/JSON (or a TaskSpec: searched with the defaults)")],
    wait: Annotated[bool, typer.Option("--wait", help="wait for the study, with progress, and print its best")] = False,
    name: Annotated[str | None, typer.Option(help="the study's name (default: the spec's, or the file name)")] = None,
    trials: Annotated[int | None, typer.Option(help="override search.n_trials")] = None,
    timeout: Annotated[float | None, typer.Option(help="--wait: give up waiting after this many seconds")] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Submit the study in SPEC; with --wait, follow it to the end and print its best configuration."""
    mapping = _load_spec(spec, name, trials)
    with _client(url, token) as client:
        study = client.submit(mapping)
        if not wait:
            if json_output:
                _print_json(study.data.model_dump(mode="json"))
            else:
                _console().print(
                    f"submitted study [bold]{study.id}[/] ({escape(repr(study.name))}, {_trials(study.progress.trials_total)}, "
                    f"{study.status.value}); follow it with: optforge status {study.id}"
                )
            return
        _wait(study, timeout=timeout, json_output=json_output)


def _wait(study: Study, *, timeout: float | None, json_output: bool) -> None:
    if not json_output:
        err_console.print(
            f"submitted study {study.id} ({study.name!r}); waiting (Ctrl-C stops waiting, not the study)", markup=False
        )
    try:
        study.wait(progress=True, timeout=timeout, raise_on_failure=False)
    except KeyboardInterrupt:
        err_console.print(f"stopped waiting; study {study.id} keeps running (optforge cancel {study.id} stops it)")
        raise typer.Exit(INTERRUPTED) from None
    best = study.best() if study.status == StudyStatus.COMPLETED and study.best_so_far is not None else None
    if json_output:
        _print_json({
            "study": study.data.model_dump(mode="json"),
            "best": best.model_dump(mode="json") if best else None,
        })  # fmt: skip
    else:
        console = _console()
        console.print(_study_table(study.data))
        if best is not None:
            console.print(f"\nbest: {best.summary()}\n", markup=False)
            typer.echo(best.snippet, nl=False)  # verbatim: no markup, emoji codes or wrapping
    if study.status != StudyStatus.COMPLETED:
        raise typer.Exit(SERVICE_ERROR)


def status(
    study_id: Annotated[
        int | None, typer.Argument(help="a study's id; without it: the service and active studies")
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Show a study's status, progress, best so far and timing; without ID, the service's health."""
    with _client(url, token) as client:
        if study_id is not None:
            study = client.study(study_id)
            if json_output:
                _print_json(study.data.model_dump(mode="json"))
            else:
                _console().print(_study_table(study.data))
            return
        health, ready = client.health(), client.ready()
        active = [s for state in (StudyStatus.RUNNING, StudyStatus.QUEUED) for s in client.studies(status=state)]
    if json_output:
        _print_json({
            "url": client.url, "health": health.model_dump(mode="json"), "ready": ready.model_dump(mode="json"),
            "active": [s.data.model_dump(mode="json") for s in active],
        })  # fmt: skip
        return
    console = _console()
    checks = ", ".join(f"{k} {v}" for k, v in ready.checks.items())
    console.print(f"service {client.url}: {ready.status} ({checks}); version {health.version}, auth {health.auth}")
    if active:
        console.print(_studies_table(active, f"{len(active)} active studies"))
    else:
        console.print("no queued or running studies")


def _studies_table(studies: list[Study], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("id", "name", "status", "trials", "best so far", "created"):
        table.add_column(column, justify="right" if column in ("id", "trials") else "left")
    for s in studies:
        p = s.progress
        table.add_row(
            str(s.id), escape(s.name), _status(s.status), f"{p.trials_finished}/{p.trials_total}", _best_cell(s.data),
            _when(s.data.created_at),
        )  # fmt: skip
    return table


def list_studies(
    status: Annotated[StudyStatus | None, typer.Option("--status", help="only studies in this status")] = None,
    limit: Annotated[int, typer.Option(help="studies to show (newest first)", min=1, max=500)] = 20,
    url: UrlOption = None,
    token: TokenOption = None,
    json_output: JsonFlag = False,
) -> None:
    """List your studies, newest first (an admin token: everyone's)."""
    with _client(url, token) as client:
        studies = client.studies(status=status, limit=limit)
    if json_output:
        _print_json({"data": [s.data.model_dump(mode="json") for s in studies], "count": studies.count})
        return
    shown = f"{len(studies)} of {studies.count}" if studies.count > len(studies) else f"{studies.count}"
    _console().print(_studies_table(list(studies), f"{shown} studies"))


def best(
    study_id: StudyIdArg,
    format: Annotated[
        BestFormat, typer.Option("--format", "-f", help="yaml: the configuration; json: everything; python: code")
    ] = BestFormat.yaml,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Print a finished study's best configuration as YAML, JSON or ready-to-paste PyTorch code."""
    with _client(url, token) as client:
        result = client.best(study_id)
    if format == BestFormat.python:
        typer.echo(result.snippet, nl=False)
    elif format == BestFormat.json:
        typer.echo(result.model_dump_json(indent=2))
    else:
        data = result.model_dump(mode="json", exclude={"snippet"})
        typer.echo(f"# study {study_id}, rank {result.rank}: {result.summary()}")
        typer.echo(yaml.safe_dump(data, sort_keys=False), nl=False)


def cancel(
    study_id: StudyIdArg, url: UrlOption = None, token: TokenOption = None, json_output: JsonFlag = False
) -> None:
    """Cancel a study: a queued one at once, a running one within seconds. A finished one is left as it is."""
    with _client(url, token) as client:
        before = client.study(study_id)
        after = client.cancel(study_id)
    if json_output:
        _print_json(after.data.model_dump(mode="json"))
        return
    if before.finished:
        message = f"study {study_id} had already {before.status.value}: nothing to cancel"
    elif after.finished:
        message = f"study {study_id} {after.status.value}"
    else:
        message = f"cancel requested: study {study_id} is {after.status.value}; its trials stop within seconds"
    _console().print(message)


def register(app: typer.Typer) -> None:
    """Add ``submit``, ``status``, ``list``, ``best`` and ``cancel`` to ``app``."""
    app.command("submit")(submit)
    app.command("status")(status)
    app.command("list")(list_studies)
    app.command("best")(best)
    app.command("cancel")(cancel)
