"""``optforge meta-train SPEC.yaml``: meta-train the learned optimizer (μLO) with PES, resumably.

Writes into the spec's ``output_dir``: ``checkpoint.pt`` (every ``checkpoint_every`` steps; ``--resume``
continues from it), ``meta_loss.jsonl`` (one meta-loss point per outer step), ``meta_loss.png`` (its
plot), ``weights.pt`` (the final learned-optimizer weights, loadable with ``MuLO(..., weights=PATH)``)
and ``summary.json`` (wall time, CPU-hours, evaluation meta-loss before and after).

With ``--database-url`` the run is also recorded in optforge's database (its meta-loss curve and every
checkpoint's weights), where the status page's learned-optimizers page shows it; ``--resume`` continues the
run recorded for the same name and output directory.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from optforge.cli._errors import bad_input
from optforge.learned_opt.meta.spec import MetaTrainSpec
from optforge.spec import SpecError, StudyStatus, load_spec, read_mapping

if TYPE_CHECKING:
    from optforge.service.meta_recorder import StorageMetaRecorder

SUMMARY = "summary.json"


def load_meta_spec(path: Path, overrides: dict[str, Any]) -> MetaTrainSpec:
    """The MetaTrainSpec in ``path`` with command-line overrides (dotted keys such as ``outer.steps``)."""
    with bad_input(str(path)):
        if path.suffix.lower() not in (".yaml", ".yml", ".json"):
            raise SpecError([("SPEC", f"must be a .yaml, .yml or .json file, got {path.name!r}")])
        mapping = dict(read_mapping(path))
        for key, value in overrides.items():
            if value is None:
                continue
            *parents, leaf = key.split(".")
            target = mapping
            for part in parents:
                target = target.setdefault(part, {})
            target[leaf] = value
        return load_spec(MetaTrainSpec, mapping)


def meta_train(
    spec: Annotated[
        Path, typer.Argument(help="MetaTrainSpec YAML/JSON (see optforge/learned_opt/configs/mulo_v1.yaml)")
    ],
    resume: Annotated[bool, typer.Option("--resume", help="continue from OUTPUT_DIR/checkpoint.pt")] = False,
    output_dir: Annotated[str | None, typer.Option("--output-dir", "-o", help="override the spec's output_dir")] = None,
    steps: Annotated[int | None, typer.Option(help="override outer.steps")] = None,
    workers: Annotated[int | None, typer.Option(help="Ray workers (0: run in this process)")] = None,
    ray_address: Annotated[str | None, typer.Option(help="an existing Ray cluster to use")] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="also record the run (meta-loss, checkpoints) in this optforge database, for the status page",
        ),
    ] = None,
) -> None:
    """Meta-train the learned optimizer described in SPEC with persistent evolution strategies."""
    meta = load_meta_spec(
        spec,
        {"output_dir": output_dir, "outer.steps": steps, "workers": workers, "ray_address": ray_address},
    )
    from optforge.learned_opt.meta.record import LOG, PLOT, JsonlLog, plot_meta_loss
    from optforge.learned_opt.meta.trainer import MetaTrainer  # deferred: torch and ray load once the spec is good

    console = Console(stderr=True)
    out = Path(meta.output_dir)
    log = JsonlLog(out / LOG)
    if not resume and (out / "checkpoint.pt").exists():
        raise typer.BadParameter(
            f"{out} already holds a run: pass --resume to continue it, or choose another --output-dir",
            param_hint="SPEC",
        )
    if not resume and log.path.exists():
        log.path.unlink()
    recorder = open_recorder(database_url, meta, resume=resume) if database_url else None
    trainer = MetaTrainer(meta, callbacks=[log] if recorder is None else [log, recorder])
    progress = Progress(
        TextColumn("[bold]meta-train[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
        disable=not console.is_terminal,
    )
    with progress, bad_input(str(spec)):
        bar = progress.add_task(meta.name, total=meta.outer.steps, completed=0, status="")

        def on_step(step: int, total: int, point: Any) -> None:
            status = f"meta-loss {point.meta_loss:.4f}"
            if "eval_meta_loss" in point.metrics:
                status += f" · eval {point.metrics['eval_meta_loss']:.4f}"
            progress.update(bar, completed=step, status=status)
            if not console.is_terminal:
                console.print(f"step {step}/{total}: {status}", highlight=False)

        try:
            result = trainer.run(resume=resume, on_step=on_step)
        except BaseException as exc:  # Ctrl-C included: the stored run says it stopped, and --resume reopens it
            close_recorder(recorder, StudyStatus.FAILED, f"{type(exc).__name__}: {exc}".rstrip(": "))
            raise
        close_recorder(recorder, StudyStatus.COMPLETED)
    plot_meta_loss(result.points, out / PLOT, title=f"{meta.name} ({meta.parametrization}) meta-training")
    evals = [p.metrics["eval_meta_loss"] for p in result.points if "eval_meta_loss" in p.metrics]
    summary = {
        "name": meta.name,
        "command": " ".join(["optforge", "meta-train", *map(shlex.quote, sys.argv[2:])]),
        "outer_steps": result.steps,
        "wall_seconds": round(result.wall_seconds, 1),
        "cpu_hours": round(result.cpu_hours, 3),
        "eval_meta_loss_first": evals[0] if evals else None,
        "eval_meta_loss_last": evals[-1] if evals else None,
        "weights": str(result.weights_path),
        "spec": meta.model_dump(mode="json"),
    }
    (out / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")
    Console().print(
        f"[green]done[/]: {result.steps} outer steps in {result.wall_seconds:.0f} s wall, {result.cpu_hours:.2f} CPU-hours; "
        + (f"evaluation meta-loss {evals[0]:.4f} → {evals[-1]:.4f}; " if evals else "")
        + f"weights in {result.weights_path}",
        highlight=False,
    )


def open_recorder(database_url: str, meta: MetaTrainSpec, *, resume: bool) -> StorageMetaRecorder:
    """The storage callback of this run: a new stored run, or with ``resume`` the one recorded for the same
    name and output directory (reopened; a new one if none was recorded)."""
    from optforge.service.meta_recorder import StorageMetaRecorder
    from optforge.storage.database import Storage
    from optforge.storage.errors import StorageError
    from optforge.storage.repo import learned as learned_repo

    # The absolute output directory identifies the run for a later --resume, whatever the working directory.
    spec = meta.model_dump(mode="json") | {"output_dir": str(Path(meta.output_dir).resolve())}
    try:
        storage = Storage.open(database_url)
    except (StorageError, OSError) as exc:
        raise typer.BadParameter(f"cannot open the database: {exc}", param_hint="--database-url") from exc
    with storage.session() as session:
        earlier = [
            r
            for r in learned_repo.list_meta_runs(session, name=meta.name)
            if r.spec.get("output_dir") == spec["output_dir"]
        ]
        leases = learned_repo.get_meta_run_leases(session, run_ids=[r.id for r in earlier])
        mine = [r for r in earlier if leases[r.id].claim_count == 0]  # never a service job's run
        if resume and mine:
            run = learned_repo.reopen_meta_run(session, run_id=mine[0].id, spec=spec)
        else:
            run = learned_repo.create_meta_run(session, name=meta.name, spec=spec)
    return StorageMetaRecorder(storage, run.id, meta)


def close_recorder(recorder: StorageMetaRecorder | None, status: StudyStatus, error: str | None = None) -> None:
    """Record how the run ended, and close its database."""
    if recorder is None:
        return
    from optforge.storage.repo import learned as learned_repo

    try:
        with recorder.storage.session() as session:
            learned_repo.set_meta_run_status(session, run_id=recorder.run_id, status=status, error=error)
    finally:
        recorder.storage.close()
