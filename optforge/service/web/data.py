"""``/web-api``: what the status page needs beyond ``/api/v1``, in one call per panel.

- ``GET /web-api/studies/{id}/curves``: every trial with its learning curve, and the event id to resume
  the live stream from (``/api/v1/.../trials/{tid}/metrics`` would cost one call per trial).
- ``GET /web-api/studies/{id}/analysis``: fANOVA importance and parallel-coordinates data per scope, and
  μTransfer ranks; computed once per study version (cached on the app).
- ``GET /web-api/studies/{id}/best``: the configuration to take away, as YAML and PyTorch code; the final
  best once the study saved it, the best trial so far before (``null`` while no trial completed).
- ``GET /web-api/learned``: learned-optimizer meta-training runs with their meta-loss curves and checkpoints.

Auth and ownership are the API's own dependencies (a study that is not yours is a 404). These routes are
the page's, not the SDK's: they are left out of the OpenAPI document, and may change with the page.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Depends, Request

from optforge.service.api.deps import CallerDep, OwnedStudyDep, ReadSessionDep, Session
from optforge.service.presenters import best_public
from optforge.service.web.importance import analysis_scopes
from optforge.service.web.schemas import (
    BestView,
    CurveTrial,
    LearnedView,
    MetaRunView,
    StudyAnalysis,
    StudyCurves,
)
from optforge.service.web.transfer import transfer_points
from optforge.spec import StudyRecord, TrialConfig, TrialRecord
from optforge.spec.snippet import pytorch_snippet
from optforge.storage.repo import best as best_repo
from optforge.storage.repo import events as events_repo
from optforge.storage.repo import learned as learned_repo
from optforge.storage.repo import trials as trials_repo

router = APIRouter(prefix="/web-api", tags=["status page"], include_in_schema=False)

# Analyses kept: one per study someone has open; each is a few KB.
MAX_CACHED_ANALYSES = 256
# Meta-training runs shown: the newest ones; older runs stay in the database.
MAX_META_RUNS = 50


class AnalysisCache:
    """``StudyAnalysis`` per study, reused while the study is unchanged (same ``updated_at`` and counts)."""

    def __init__(self, max_studies: int = MAX_CACHED_ANALYSES) -> None:
        self.max_studies = max_studies
        self._items: OrderedDict[int, tuple[tuple[Any, ...], StudyAnalysis]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def version(study: StudyRecord) -> tuple[Any, ...]:
        return (study.updated_at, study.trials_finished, study.status)

    def get(self, study: StudyRecord) -> StudyAnalysis | None:
        with self._lock:
            hit = self._items.get(study.id)
            if hit is None or hit[0] != self.version(study):
                return None
            self._items.move_to_end(study.id)
            return hit[1]

    def put(self, study: StudyRecord, analysis: StudyAnalysis) -> None:
        with self._lock:
            self._items[study.id] = (self.version(study), analysis)
            self._items.move_to_end(study.id)
            while len(self._items) > self.max_studies:
                self._items.popitem(last=False)


def get_analysis_cache(request: Request) -> AnalysisCache:
    return request.app.state.web_analysis_cache


AnalysisCacheDep = Annotated[AnalysisCache, Depends(get_analysis_cache)]


def last_event_id(session: Session, study_id: int) -> int:
    """The id of the study's newest event (0 if none), in O(log n) one-row reads.

    Event ids are 1, 2, 3... without gaps (``storage.repo.events``), so "an event with id >= i exists"
    holds exactly for i <= n: a doubling search then a bisection find n without reading the log.
    """

    def has(i: int) -> bool:
        return bool(events_repo.list_events(session, study_id=study_id, after_id=i - 1, limit=1))

    if not has(1):
        return 0
    low, high = 1, 2  # has(low) holds; find the first high for which it does not
    while has(high):
        low, high = high, high * 2
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if has(mid) else (low, mid)
    return low


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def curve_trial(trial: TrialRecord, metric: str) -> CurveTrial:
    points = [(p.step, v) for p in trial.curve if _finite(v := p.metric(metric))]
    return CurveTrial.model_validate({**trial.model_dump(exclude={"curve"}), "points": points})


@router.get("/studies/{study_id}/curves", response_model=StudyCurves)
def study_curves(study: OwnedStudyDep, session: ReadSessionDep) -> StudyCurves:
    """Every trial of the study with its curve of the task's metric, in trial order."""
    cursor = last_event_id(session, study.id)  # read first: events after it may repeat points, never miss one
    trials = trials_repo.list_trials(session, study_id=study.id, with_curves=True)
    task = study.spec.task
    return StudyCurves(
        study_id=study.id,
        metric=task.metric,
        mode=task.mode,
        cursor=cursor,
        trials=[curve_trial(t, task.metric) for t in trials],
    )


@router.get("/studies/{study_id}/analysis", response_model=StudyAnalysis)
def study_analysis(study: OwnedStudyDep, session: ReadSessionDep, cache: AnalysisCacheDep) -> StudyAnalysis:
    """Hyperparameter importance (fANOVA), parallel coordinates and μTransfer ranks of the study."""
    cached = cache.get(study)
    if cached is not None:
        return cached
    trials = trials_repo.list_trials(session, study_id=study.id)
    search, task = study.spec.search, study.spec.task
    time_based = search.objective == "time_to_target"
    mode = "min" if time_based else task.mode
    analysis = StudyAnalysis(
        study_id=study.id,
        objective=f"{search.time_to_target_unit} to {task.metric} {task.target}" if time_based else task.metric,
        mode=mode,
        scopes=analysis_scopes(study.spec, trials),
        transfer=transfer_points(trials, mode),
    )
    cache.put(study, analysis)
    return analysis


def config_yaml(config: TrialConfig, header: str) -> str:
    """The configuration as YAML, headed by comment lines saying where it came from."""
    comments = "".join(f"# {line}\n" for line in header.splitlines())
    return comments + yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


@router.get("/studies/{study_id}/best", response_model=BestView | None)
def study_best(study: OwnedStudyDep, session: ReadSessionDep) -> BestView | None:
    """The stored best configuration; before the study saved one, its best completed trial so far."""
    bests = best_repo.list_best_configs(session, study_id=study.id)
    if bests:
        best = best_public(bests[0])
        spread = f" ± {best.stats.std:.4g}" if best.stats.std is not None else ""
        header = (
            f"optforge study {study.id} best: {best.metric} {best.stats.mean:.6g}{spread} over {best.stats.n} seed(s)"
        )
        return BestView(
            source="final",
            family=best.config.family,
            schedule=best.config.schedule,
            metric=best.metric,
            value=best.stats.mean,
            std=best.stats.std,
            n=best.stats.n,
            yaml=config_yaml(best.config, header),
            snippet=best.snippet,
        )
    task = study.spec.task
    trial = trials_repo.best_trial(session, study_id=study.id, mode=task.mode)
    if trial is None or trial.final is None:
        return None
    header = (
        f"optforge study {study.id}, best so far (trial #{trial.number}, the study is {study.status.value}): "
        f"{task.metric} {trial.final:.6g}"
    )
    return BestView(
        source="so_far",
        trial_id=trial.id,
        family=trial.config.family,
        schedule=trial.config.schedule,
        metric=task.metric,
        value=trial.final,
        yaml=config_yaml(trial.config, header),
        snippet=pytorch_snippet(trial.config, total_steps=task.steps, header=header),
    )


@router.get("/learned", response_model=LearnedView)
def learned(_caller: CallerDep, session: ReadSessionDep) -> LearnedView:
    """The newest meta-training runs (meta-loss curves, checkpoints) and the checkpoints of no stored run."""
    checkpoints = learned_repo.list_checkpoints(session)
    runs = []
    for run in learned_repo.list_meta_runs(session)[:MAX_META_RUNS]:
        full = learned_repo.get_meta_run(session, run_id=run.id, with_curve=True)
        runs.append(
            MetaRunView(
                **full.model_dump(exclude={"curve"}),
                curve=[(p.step, p.meta_loss) for p in full.curve if _finite(p.meta_loss)],
                checkpoints=[c for c in checkpoints if c.run_id == run.id],
            )
        )
    shown = {r.id for r in runs}
    return LearnedView(runs=runs, checkpoints=[c for c in checkpoints if c.run_id not in shown])
