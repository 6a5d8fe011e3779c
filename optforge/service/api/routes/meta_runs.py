"""``/meta-runs``: meta-train the learned optimizer as a service job; list, read and cancel runs.

A submitted MetaTrainSpec is checked against the server's limits, stored as a ``queued`` run, and started
by the scheduler's meta-training launcher (``optforge.service.meta_jobs``) on Ray. Every authenticated
caller sees every run (learned optimizers are shared by name, as on the status page's learned-optimizers
page); only the run's owner or an admin cancels it.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from optforge.learned_opt.meta.public import MetaCheckpointPublic, MetaRunCreate, MetaRunPublic, MetaRunsPublic
from optforge.learned_opt.meta.spec import MetaTrainSpec
from optforge.service.api.deps import CallerDep, ReadSessionDep, Session, SessionDep, StateDep
from optforge.service.errors import ApiError, not_found
from optforge.service.meta_jobs import META_RUNS_DIR
from optforge.settings import Settings
from optforge.spec import MetaRunRecord, StudyStatus
from optforge.spec._api import ErrorDetail, ErrorPublic
from optforge.storage.errors import NotFound
from optforge.storage.repo import learned as learned_repo
from optforge.storage.repo import users as users_repo

router = APIRouter(prefix="/meta-runs", tags=["meta-training"])

ERRORS = {
    401: {"model": ErrorPublic, "description": "missing or invalid API token"},
    404: {"model": ErrorPublic, "description": "no such meta-training run"},
    422: {"model": ErrorPublic, "description": "invalid input, with field-level messages"},
    429: {"model": ErrorPublic, "description": "rate limit or active-run limit reached"},
}
ACTIVE = (StudyStatus.QUEUED, StudyStatus.RUNNING)
# The deepest inner MLP: the engine's ModelSpec allows 64 hidden layers, and a deeper task would fail when
# the run starts rather than now.
MAX_TASK_DEPTH = 64

RunId = Annotated[int, Path(ge=1, le=2**62, description="the meta-training run's id")]


def _too_big(loc: list[str | int], value: int, limit: int, setting: str) -> ErrorDetail:
    return ErrorDetail(
        loc=loc,
        msg=f"{value} is above this server's limit of {limit}; lower it (the operator can raise {setting})",
        type="limit_exceeded",
    )


def inner_steps(spec: MetaTrainSpec) -> int:
    """Inner training steps the run costs at most: two per pair and truncation step, plus the evaluations."""
    pairs = spec.outer.steps * spec.outer.n_tasks * 2 * spec.outer.truncation
    evaluations = (spec.outer.steps // spec.eval.every + 2) * spec.eval.n_tasks * spec.eval_horizon
    return pairs + evaluations


def meta_limit_errors(spec: MetaTrainSpec, settings: Settings) -> list[ErrorDetail]:
    """Fields of ``spec`` beyond what this server runs, each naming the field and the setting that raises it.

    The study limits apply to the inner tasks (``max_width``, ``max_steps`` per horizon), and the whole run
    may cost at most the inner steps of the largest study (``max_trials`` x ``max_steps``).
    """
    errors = []
    if spec.ray_address is not None:
        errors.append(
            ErrorDetail(
                loc=["body", "ray_address"],
                msg="the service meta-trains on its own Ray cluster; leave ray_address out",
                type="value_error",
            )
        )
    width = spec.tasks.widths[1]
    if width > settings.max_width:
        errors.append(_too_big(["body", "tasks", "widths", 1], width, settings.max_width, "OPTFORGE_MAX_WIDTH"))
    depth = spec.tasks.depths[1]
    if depth > MAX_TASK_DEPTH:
        errors.append(
            ErrorDetail(
                loc=["body", "tasks", "depths", 1],
                msg=f"{depth} is above the deepest MLP optforge builds ({MAX_TASK_DEPTH}); lower it",
                type="limit_exceeded",
            )
        )
    for loc, value in (
        (["body", "tasks", "horizons", 1], spec.tasks.horizons[1]),
        (["body", "eval", "horizon"], spec.eval_horizon),
        (["body", "outer", "truncation"], spec.outer.truncation),
    ):
        if value > settings.max_steps:
            errors.append(_too_big(loc, value, settings.max_steps, "OPTFORGE_MAX_STEPS"))
    budget = settings.max_trials * settings.max_steps
    cost = inner_steps(spec)
    if cost > budget:
        errors.append(
            ErrorDetail(
                loc=["body", "outer", "steps"],
                msg=f"the run would train {cost} inner steps (outer.steps x outer.n_tasks x 2 x outer.truncation, "
                f"plus evaluations), above this server's limit of {budget} (OPTFORGE_MAX_TRIALS x "
                "OPTFORGE_MAX_STEPS); lower outer.steps, outer.n_tasks or outer.truncation",
                type="limit_exceeded",
            )
        )
    return errors


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def present(session: Session, runs: Sequence[MetaRunRecord]) -> list[MetaRunPublic]:
    """The runs as the API shows them: progress from their last stored point, leases, checkpoints."""
    ids = [r.id for r in runs]
    progress = learned_repo.meta_run_progress(session, run_ids=ids)
    leases = learned_repo.get_meta_run_leases(session, run_ids=ids)
    out = []
    for run in runs:
        last = progress.get(run.id)
        outer = run.spec.get("outer")
        total = outer.get("steps") if isinstance(outer, dict) else None
        out.append(
            MetaRunPublic(
                **run.model_dump(include={"id", "name", "status", "spec", "error", "created_at", "updated_at"}),
                finished_at=run.finished_at,
                steps_done=last.step if last else 0,
                total_steps=total if isinstance(total, int) else None,
                last_meta_loss=_finite(last.meta_loss) if last else None,
                last_metrics={k: v for k, v in (last.metrics if last else {}).items() if math.isfinite(v)},
                resumed=leases[run.id].resumed if run.id in leases else 0,
                checkpoints=[
                    MetaCheckpointPublic.model_validate(c.model_dump())
                    for c in learned_repo.list_checkpoints(session, run_id=run.id)
                ],
            )
        )
    return out


def read_run(session: Session, run_id: int) -> MetaRunRecord:
    try:
        return learned_repo.get_meta_run(session, run_id=run_id, with_curve=False)
    except NotFound:
        raise not_found("meta-training run", run_id) from None


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=MetaRunPublic,
    responses={**ERRORS, 413: {"model": ErrorPublic}},
)
def create_meta_run(body: MetaRunCreate, caller: CallerDep, state: StateDep, session: SessionDep) -> MetaRunPublic:
    """Queue a meta-training run; the service starts it on Ray when its meta-training slot is free.

    Its files (checkpoints, final weights) go to the service's data directory, so ``output_dir`` is
    replaced; its meta-loss curve and checkpoints go to the database (``GET /meta-runs/{id}``, and the
    status page's learned-optimizers page). A run interrupted by a restart resumes from its last checkpoint.
    """
    settings = state.settings
    spec = MetaTrainSpec.model_validate(body.model_dump())
    errors = meta_limit_errors(spec, settings)
    if errors:
        raise ApiError(422, errors[0].msg, details=errors)
    users_repo.lock_submissions(session, owner_id=caller.user_id)  # the count stays true until the insert
    active = learned_repo.count_meta_runs(session, owner_id=caller.user_id, statuses=ACTIVE)
    if active >= settings.max_active_studies_per_user:
        raise ApiError(
            429,
            f"you have {active} queued or running meta-training runs, the most this server allows "
            f"(OPTFORGE_MAX_ACTIVE_STUDIES_PER_USER={settings.max_active_studies_per_user}); "
            "wait for one to finish or cancel one",
            loc=("body",),
            type="limit_exceeded",
        )
    # Relative to the data directory of whichever service runs it (meta_jobs.run_output_dir).
    spec = spec.model_copy(update={"output_dir": f"{META_RUNS_DIR}/{uuid.uuid4().hex[:12]}"})
    run = learned_repo.create_meta_run(
        session, name=spec.name, spec=spec.model_dump(mode="json"), queued=True, owner_id=caller.user_id
    )
    state.scheduler.wake()
    return present(session, [run])[0]


@router.get("", response_model=MetaRunsPublic, responses=ERRORS)
def list_meta_runs(
    _caller: CallerDep,
    session: ReadSessionDep,
    name: Annotated[str | None, Query(max_length=200, description="only runs of this learned optimizer")] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="runs per page")] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31, description="runs to skip")] = 0,
) -> MetaRunsPublic:
    """Meta-training runs (service jobs and runs the CLI recorded), newest first."""
    runs = learned_repo.list_meta_runs(session, name=name, limit=limit, offset=offset)
    count = learned_repo.count_meta_runs(session, name=name)
    return MetaRunsPublic(data=present(session, runs), count=count)


@router.get("/{run_id}", response_model=MetaRunPublic, responses=ERRORS)
def get_meta_run(run_id: RunId, _caller: CallerDep, session: ReadSessionDep) -> MetaRunPublic:
    """A run's status, outer steps done, last meta-loss and checkpoints."""
    return present(session, [read_run(session, run_id)])[0]


@router.post(
    "/{run_id}/cancel",
    response_model=MetaRunPublic,
    responses={**ERRORS, 403: {"model": ErrorPublic, "description": "not the run's owner or an admin"}},
)
def cancel_meta_run(run_id: RunId, caller: CallerDep, state: StateDep, session: SessionDep) -> MetaRunPublic:
    """Cancel a run: a queued one at once, a running one within a heartbeat (its actor is stopped).
    Its checkpoints stay. Cancelling a finished run changes nothing."""
    read_run(session, run_id)
    lease = learned_repo.get_meta_run_leases(session, run_ids=[run_id])[run_id]
    if not caller.owns(lease.owner_id):
        raise ApiError(403, "only the run's owner or an admin may cancel it", loc=("path", "run_id"), type="forbidden")
    run = learned_repo.cancel_meta_run(session, run_id=run_id)
    state.scheduler.wake()
    return present(session, [run])[0]
