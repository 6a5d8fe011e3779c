"""Builders shared by the storage tests (imported by module name: tests/storage has no __init__.py)."""

from __future__ import annotations

import pytest

from optforge.spec import MetricPoint, TrialConfig

# Every contract test runs once per backend; PostgreSQL's runs carry the "postgres" marker.
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def config(lr: float = 1e-3, family: str = "adamw") -> TrialConfig:
    return TrialConfig(family=family, hparams={"lr": lr})


def points(n: int, *, start: int = 0, eval_every: int = 5) -> list[MetricPoint]:
    """A decreasing loss curve of ``n`` steps from ``start``, evaluated every ``eval_every`` steps."""
    out = []
    for step in range(start, start + n):
        evaluated = step % eval_every == 0
        out.append(
            MetricPoint(
                step=step,
                train_loss=2.0 / (1 + step),
                val_loss=2.5 / (1 + step) if evaluated else None,
                val_accuracy=step / (step + 10) if evaluated else None,
                lr=1e-3 * (1 - step / (start + n + 1)),
                examples_per_s=1000.0 + step,
                wall_time=0.01 * step,
            )
        )
    return out


def concurrent_writer(url: str, trial_id: int, study_id: int, worker: int, barrier, error_path: str) -> None:
    """Run in a spawned process: write 500 points (10 transactions of 50) and 25 events (one per transaction).

    All writers pass the barrier together, so their transactions really overlap.
    """
    import traceback

    from optforge.spec import StudyEvent, StudyEventKind
    from optforge.storage import Storage, repo

    try:
        with Storage.open(url) as storage:  # migrating an up-to-date database is a no-op, even concurrently
            barrier.wait(timeout=60)
            batch = 50
            for start in range(worker * 500, worker * 500 + 500, batch):
                with storage.session() as s:
                    repo.metrics.insert_metric_points(s, trial_id=trial_id, points=points(batch, start=start))
            for i in range(25):
                with storage.session() as s:
                    event = StudyEvent(kind=StudyEventKind.TRIAL_RESULT, data={"worker": worker, "i": i})
                    repo.events.append_event(s, study_id=study_id, event=event)
    except BaseException:
        with open(error_path, "w") as f:
            f.write(traceback.format_exc())
        raise
