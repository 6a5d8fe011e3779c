"""The driver-side record of a study: trial states, the best trial so far, and the events sent to the caller.

Ray-free on purpose: :mod:`optforge.search.tune_bridge` translates Tune's callbacks into the calls
below, and tests drive it directly. Events go to the caller's ``reporter`` in the driver process;
the search never touches a database.

Event payloads (``StudyEvent.data``), the contract storage and the live page read:

- ``started``: name, n_trials, families, schedules, sampler, early_stopping, rungs, objective, metric, mode
- ``phase``: phase (``"reseed"``), configs, seeds — the multi-seed re-runs begin
- ``trial_started``: number, phase, seed, config (TrialConfig), attempt, resources
- ``trial_result``: phase, point (MetricPoint), objective (the finite minimized value), node_id
- ``trial_finished``: number, phase, seed, config, status, value, attempts, node_id, result (TrialResult)
- ``best_changed``: value (the metric), config, family, schedule (``trial_id`` on the event)
- ``finished``: status, best_trial_id, best_config, best_value, best_std, counts, wall_time
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from optforge.search import ranking
from optforge.search.results import Phase, TrialSummary, result_from_points
from optforge.spec import MetricPoint, StudyEvent, StudyEventKind, TrialConfig, TrialResult, TrialStatus

logger = logging.getLogger(__name__)
Reporter = Callable[[StudyEvent], None]


@dataclass
class TrialState:
    """What the driver knows about one trial while it runs."""

    trial_id: str
    number: int
    phase: Phase
    seed: int
    config: TrialConfig
    source_trial_id: str | None = None  # reseed: the search trial whose configuration this re-runs
    points: list[MetricPoint] = field(default_factory=list)
    node_id: str | None = None
    attempts: int = 1
    value: float | None = None
    result: TrialResult | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.result is not None

    def summary(self) -> TrialSummary:
        assert self.result is not None
        return TrialSummary(
            trial_id=self.trial_id,
            number=self.number,
            phase=self.phase,
            seed=self.seed,
            config=self.config,
            result=self.result,
            value=self.value,
            attempts=self.attempts,
        )


@dataclass
class StudyRecorder:
    """Turns trial lifecycle calls into :class:`StudyEvent`s and keeps every trial's state."""

    metric: str
    mode: ranking.Mode
    objective: ranking.Objective = "final"
    unit: ranking.TimeUnit = "steps"
    reporter: Reporter | None = None
    trials: dict[str, TrialState] = field(default_factory=dict)
    best_trial_id: str | None = None
    cancelling: bool = False
    started_at: float = field(default_factory=time.time)

    # ---- events ----------------------------------------------------------------------------------

    def emit(self, kind: StudyEventKind, trial_id: str | None = None, **data: Any) -> None:
        """Send one event to the reporter. A reporter that raises is logged, never allowed to stop the study:
        trials already paid for keep running and the final StudyResult still carries everything."""
        if self.reporter is None:
            return
        try:
            self.reporter(StudyEvent(kind=kind, trial_id=trial_id, data=data))
        except Exception:
            logger.exception("the study reporter raised on a %s event; the study goes on", kind.value)

    # ---- trial lifecycle -------------------------------------------------------------------------

    def trial_started(
        self,
        trial_id: str,
        *,
        config: TrialConfig,
        seed: int,
        phase: Phase,
        resources: dict[str, float] | None = None,
        source_trial_id: str | None = None,
    ) -> None:
        state = self.trials.get(trial_id)
        if state is None:
            state = TrialState(
                trial_id=trial_id,
                number=len(self.trials),
                phase=phase,
                seed=seed,
                config=config,
                source_trial_id=source_trial_id,
            )
            self.trials[trial_id] = state
        self.emit(
            StudyEventKind.TRIAL_STARTED,
            trial_id,
            number=state.number,
            phase=phase,
            seed=seed,
            config=config.model_dump(mode="json"),
            attempt=state.attempts,
            resources=resources or {},
        )

    def trial_result(self, trial_id: str, metrics: dict[str, Any]) -> None:
        """One report from a trial: an evaluation point, or the trial's own final result."""
        state = self.trials.get(trial_id)
        if state is None:
            return
        state.node_id = metrics.get("node_id", state.node_id)
        if metrics.get("objective") is not None:
            state.value = float(metrics["objective"])
        if metrics.get("point"):
            point = MetricPoint.model_validate_json(metrics["point"])
            state.points.append(point)
            self.emit(
                StudyEventKind.TRIAL_RESULT,
                trial_id,
                phase=state.phase,
                point=point.model_dump(mode="json"),
                objective=state.value,
                node_id=state.node_id,
            )

    def trial_completed(self, trial_id: str, last: dict[str, Any] | None) -> None:
        """Tune says the trial ended normally: it finished (its final report carries its result) or was stopped."""
        state = self.trials.get(trial_id)
        if state is None or state.finished:
            return
        if last and last.get("trial_result"):
            result = TrialResult.model_validate_json(last["trial_result"])
        else:
            status = TrialStatus.CANCELLED if self.cancelling else TrialStatus.PRUNED
            result = result_from_points(state.points, status=status, metric=self.metric, mode=self.mode)
        self._finish(state, result)

    def trial_retried(self, trial_id: str, error: str) -> None:
        """The trial raised and Tune restarts it: its curve starts over."""
        state = self.trials.get(trial_id)
        if state is None:
            return
        state.errors.append(error)
        state.attempts += 1
        state.points = []

    def trial_failed(self, trial_id: str, error: str) -> None:
        """The trial raised on its last allowed attempt."""
        state = self.trials.get(trial_id)
        if state is None or state.finished:
            return
        state.errors.append(error)
        state.value = None
        result = result_from_points(
            state.points, status=TrialStatus.FAILED, metric=self.metric, mode=self.mode, error=error
        )
        self._finish(state, result)

    def replay(
        self,
        trial_id: str,
        *,
        config: TrialConfig,
        seed: int,
        phase: Phase,
        last: dict[str, Any] | None,
        error: str | None = None,
    ) -> None:
        """Add a trial that finished before this process took over (a resumed study), without re-sending its
        events: the caller stored them the first time. It takes part in ranking and in the best trial."""
        if trial_id in self.trials:
            return
        state = TrialState(trial_id=trial_id, number=len(self.trials), phase=phase, seed=seed, config=config)
        self.trials[trial_id] = state
        if error is not None:
            state.result = result_from_points(
                [], status=TrialStatus.FAILED, metric=self.metric, mode=self.mode, error=error
            )
        elif last and last.get("trial_result"):
            state.result = TrialResult.model_validate_json(last["trial_result"])
            state.value = last.get("objective")
        else:
            state.result = result_from_points([], status=TrialStatus.PRUNED, metric=self.metric, mode=self.mode)
            if last and last.get("point"):
                point = MetricPoint.model_validate_json(last["point"])
                state.result = result_from_points(
                    [point], status=TrialStatus.PRUNED, metric=self.metric, mode=self.mode
                )
        if phase == "search":
            self._update_best()

    def finish_unfinished(self) -> None:
        """Mark every trial that never reported an end (the study was cancelled under it) as cancelled."""
        for state in self.trials.values():
            if not state.finished:
                self._finish(
                    state,
                    result_from_points(state.points, status=TrialStatus.CANCELLED, metric=self.metric, mode=self.mode),
                )

    def _finish(self, state: TrialState, result: TrialResult) -> None:
        if state.node_id and "node_id" not in result.info:
            result = result.model_copy(update={"info": {**result.info, "node_id": state.node_id}})
        if state.attempts > 1:
            result = result.model_copy(update={"info": {**result.info, "attempts": state.attempts}})
        state.result = result
        self.emit(
            StudyEventKind.TRIAL_FINISHED,
            state.trial_id,
            number=state.number,
            phase=state.phase,
            seed=state.seed,
            config=state.config.model_dump(mode="json"),
            status=result.status.value,
            value=state.value,
            attempts=state.attempts,
            node_id=state.node_id,
            result=json.loads(result.model_dump_json()),
        )
        if state.phase == "search":
            self._update_best()

    def _update_best(self) -> None:
        candidates = [
            s
            for s in self.finished_states("search")
            if ranking.is_candidate(s.result, objective=self.objective, unit=self.unit)
        ]  # type: ignore[arg-type]
        if not candidates:
            return
        best = ranking.rank(candidates, lambda s: s.result, mode=self.mode, objective=self.objective, unit=self.unit)[0]
        if best.trial_id != self.best_trial_id:
            self.best_trial_id = best.trial_id
            assert best.result is not None
            self.emit(
                StudyEventKind.BEST_CHANGED,
                best.trial_id,
                value=_finite_or_none(best.result.final),
                config=best.config.model_dump(mode="json"),
                family=best.config.family,
                schedule=best.config.schedule,
            )

    # ---- queries ---------------------------------------------------------------------------------

    def finished_states(self, phase: Phase) -> list[TrialState]:
        return [s for s in self.trials.values() if s.phase == phase and s.finished]

    def ranked(self, phase: Phase) -> list[TrialSummary]:
        """Finished trials of ``phase``, best first, with their rank filled in."""
        states = ranking.rank(
            self.finished_states(phase),
            lambda s: s.result,
            mode=self.mode,  # type: ignore[arg-type,return-value]
            objective=self.objective,
            unit=self.unit,
        )
        return [s.summary().model_copy(update={"rank": i}) for i, s in enumerate(states)]

    def best(self) -> TrialSummary | None:
        state = self.trials.get(self.best_trial_id or "")
        return state.summary() if state and state.finished else None


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
