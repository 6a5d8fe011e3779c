"""μTransfer (Yang et al. 2022, "Tensor Programs V"): tune a narrow proxy in μP, confirm at the target width.

``run_transfer(spec)`` runs a study whose ``search.proxy`` is set in three steps:

1. **proxy**: the whole search (:func:`optforge.search.run_study`) on a copy of the task at the proxy
   width (``proxy.width``, or ``proxy.width_ratio`` x ``task.model.width``), every trial in μP;
2. **target**: the ``proxy.top_k`` best configurations re-run at the target width (``task.model.width``),
   in μP, with ``proxy.seeds`` seeds each (one study whose search evaluates exactly those
   configurations, then re-seeds them);
3. **winner**: the best configuration by its mean over seeds at the target width, with how well the
   proxy ranked the candidates (Spearman's rho and Kendall's tau between proxy and target ranks).

Both widths share ``task.model.base_width``, which is what makes the proxy's learning rates mean the
same at the target.

Resuming (``resume=True``): the proxy phase resumes as :func:`run_study` does. The target phase keeps its
Tune state in a folder named after its candidates and seeds, so it resumes only when the resumed proxy
phase hands on the same ones (re-seeded proxy runs may not repeat exactly on a GPU); else it runs afresh.

Events reach ``reporter`` as in :func:`run_study` (see :mod:`optforge.search.recorder`), with these
differences so a caller can tell the phases apart:

- every event carries ``data["width"]``, the width its trials train at;
- proxy events keep their phase (``"search"``, ``"reseed"``); the proxy's ``started`` carries
  ``transfer_phase="proxy"``, ``proxy_width`` and ``target_width``;
- the target phase opens with a ``phase`` event: ``phase="target"``, width, configs, seeds,
  ``source_trial_ids`` (the proxy trials re-run);
- every target trial event carries ``data["phase"] = "target"`` (its step inside the target study,
  ``"search"`` or ``"reseed"``, is in ``data["target_step"]``);
- the two inner ``finished`` events are held back; one ``finished`` ends the study, carrying the
  winner (``best_config``, ``best_value``, ``best_std``, ``best_trial_id``: its target run), both
  widths, the rank agreement (``spearman``, ``kendall``) and ``counts`` (both phases; also
  ``proxy_counts`` and ``target_counts``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from optforge.search import ranking
from optforge.search.recorder import Reporter
from optforge.search.results import StudyResult, TrialSummary
from optforge.spec import (
    BestConfigCreate,
    SpecError,
    StrictModel,
    StudyEvent,
    StudyEventKind,
    StudySpec,
    TrialConfig,
    TrialStatus,
    load_spec,
)

logger = logging.getLogger(__name__)
NAME_LIMIT = 200  # StudySpec.name's max_length; the phase suffix must fit in it


class TransferCandidate(StrictModel):
    """One of the proxy's top configurations and how it did at the target width."""

    config: TrialConfig
    proxy_trial_id: str
    proxy_rank: int = Field(description="0 is the proxy's best")
    proxy_value: float | None = Field(description="its metric at the proxy width")
    target_rank: int = Field(description="0 is the best at the target width")
    target_mean: float | None = Field(description="mean metric over the target seeds that completed")
    target_std: float | None = None
    target_values: list[float | None] = Field(default_factory=list, description="each target seed's final metric")
    target_trial_ids: list[str] = Field(default_factory=list)
    target_seeds: list[int] = Field(default_factory=list)


class TransferResult(StrictModel):
    """The outcome of :func:`run_transfer`: both phases, the candidates ranked at the target, the winner."""

    name: str
    status: Literal["completed", "cancelled"] = Field(description="'cancelled' when stopped in either phase")
    metric: str
    mode: Literal["min", "max"]
    proxy_width: int
    target_width: int
    base_width: int
    proxy: StudyResult
    target: StudyResult | None = Field(None, description="None when the proxy phase found nothing to transfer")
    candidates: list[TransferCandidate] = Field(default_factory=list, description="best first, at the target width")
    best_config: TrialConfig | None = None
    best_value: float | None = Field(None, description="the winner's mean metric at the target width")
    best_std: float | None = None
    spearman: float | None = Field(None, description="rank agreement proxy vs target (None for < 2 candidates)")
    kendall: float | None = None
    wall_time: float = 0.0

    def best_configs(self, *, limit: int = 5) -> list[BestConfigCreate]:
        """The candidates as storage records them, with both widths: confirmed at the target first."""
        out = []
        for c in self.candidates:
            if c.target_mean is None:
                continue
            out.append(
                BestConfigCreate(
                    config=c.config,
                    metric=self.metric,
                    mode=self.mode,
                    mean=c.target_mean,
                    std=c.target_std,
                    n=sum(v is not None for v in c.target_values),
                    seeds=c.target_seeds,
                    proxy_width=self.proxy_width,
                    target_width=self.target_width,
                )
            )
        return out[:limit]


def proxy_width(spec: StudySpec) -> int:
    """The proxy width ``spec.search.proxy`` asks for; SpecError naming the field when it is unusable."""
    proxy = spec.search.proxy
    if proxy is None:
        raise SpecError([("search.proxy", "μTransfer needs search.proxy: {width: N} or {width_ratio: R}")], "StudySpec")
    target = spec.task.model.width
    width = proxy.width if proxy.width is not None else max(1, round(float(proxy.width_ratio or 1.0) * target))
    field = "search.proxy.width" if proxy.width is not None else "search.proxy.width_ratio"
    if width >= target:
        raise SpecError(
            [(field, f"the proxy width {width} must be narrower than the target width task.model.width={target}")],
            "StudySpec",
        )
    heads = spec.task.model.kwargs.get("heads")
    if isinstance(heads, int) and heads > 0 and width % heads:
        raise SpecError(
            [(field, f"{heads} heads (model.kwargs.heads) do not divide the proxy width {width}")], "StudySpec"
        )
    return width


def _phase_name(name: str, suffix: str) -> str:
    return name[: NAME_LIMIT - len(suffix)] + suffix


def _at_width(spec: StudySpec, width: int, name: str, search: dict[str, Any]) -> StudySpec:
    task = spec.task.model_copy(update={"model": spec.task.model.model_copy(update={"width": width})})
    return spec.model_copy(
        update={
            "name": name,
            "task": task,
            "search": spec.search.model_copy(update={"mup": True, "proxy": None, **search}),
        }
    )


def proxy_study(spec: StudySpec) -> StudySpec:
    """The proxy phase's study: the same search at the proxy width, every trial in μP."""
    return _at_width(spec, proxy_width(spec), _phase_name(spec.name, "-proxy"), {})


def target_study(spec: StudySpec, configs: Sequence[TrialConfig], seeds: int) -> StudySpec:
    """The target phase's study: exactly ``configs`` at the target width (no pruning: every run goes to the
    full budget), each re-run to ``seeds`` seeds."""
    return _at_width(
        spec,
        spec.task.model.width,
        _phase_name(spec.name, "-target"),
        {
            "n_trials": len(configs),
            "initial_configs": [c.model_copy(update={"mup": True}) for c in configs],
            "warm_start": False,
            "sampler": "random",  # never asked: every trial is one of the enqueued configurations
            "early_stopping": "none",
            "top_k": len(configs) if seeds > 1 else 0,
            "extra_seeds": max(1, seeds - 1),
        },
    )


class _Relay:
    """Passes the inner studies' events on to the caller's reporter, tagged with width and phase."""

    def __init__(self, reporter: Reporter | None, width: int, *, target: bool, extra: dict[str, Any] | None = None):
        self.reporter, self.width, self.target, self.extra = reporter, width, target, extra or {}

    def __call__(self, event: StudyEvent) -> None:
        if self.reporter is None or event.kind == StudyEventKind.FINISHED:
            return  # the transfer's own 'finished' ends the study
        data = {**event.data, "width": self.width}
        if event.kind == StudyEventKind.STARTED:
            if self.target:
                return  # announced by the transfer's own 'phase' event
            data.update(self.extra)
        elif self.target:
            data["target_step"] = data.get("phase", "search")
            data["phase"] = "target"
        self.reporter(event.model_copy(update={"data": data}))


def _emit(reporter: Reporter | None, kind: StudyEventKind, **data: Any) -> None:
    """Send one event; a reporter that raises is logged and never stops the study (as in the recorder)."""
    if reporter is None:
        return
    try:
        reporter(StudyEvent(kind=kind, data=data))
    except Exception:
        logger.exception("the study reporter raised on a %s event; the study goes on", kind.value)


def _proxy_candidates(result: StudyResult, spec: StudySpec, top_k: int) -> list[tuple[TrialConfig, str, float | None]]:
    """The proxy's top configurations, best first, each once: its seed groups, then its other completed trials."""
    search = spec.search
    out: list[tuple[TrialConfig, str, float | None]] = []
    for group in result.seed_groups:
        if group.mean is not None:
            out.append((group.config, group.source_trial_id, group.mean))
    for t in result.trials:
        if ranking.is_candidate(t.result, objective=search.objective, unit=search.time_to_target_unit):
            out.append((t.config, t.trial_id, t.result.final))
    unique: list[tuple[TrialConfig, str, float | None]] = []
    for item in out:
        if not any(_same_config(item[0], u[0]) for u in unique):
            unique.append(item)
    return unique[:top_k]


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return bool(a == b)


def _same_config(a: TrialConfig, b: TrialConfig) -> bool:
    """Equal configurations, allowing for float round-off on the way through Optuna."""
    if (a.family, a.schedule) != (b.family, b.schedule):
        return False
    for x, y in (
        (a.resolved_hparams(), b.resolved_hparams()),
        (a.resolved_schedule_params(), b.resolved_schedule_params()),
    ):
        if x.keys() != y.keys() or not all(_close(x[k], y[k]) for k in x):
            return False
    return True


def _target_storage(storage_path: str | Path | None, configs: Sequence[TrialConfig], seeds: int) -> Path | None:
    """Where the target phase keeps its Tune state: a folder per candidate list, so a resume restores a
    target phase only if it confirms exactly these configurations with these seeds."""
    if storage_path is None:
        return None
    text = json.dumps([[c.model_dump(mode="json") for c in configs], seeds], sort_keys=True)
    return Path(storage_path) / f"target-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def _target_runs(target: StudyResult, config: TrialConfig) -> list[TrialSummary]:
    return [t for t in [*target.trials, *target.reseeds] if _same_config(t.config, config)]


def _merged_counts(proxy: StudyResult, target: StudyResult | None) -> dict[str, int]:
    counts = dict(proxy.counts())
    for status, n in (target.counts() if target else {}).items():
        counts[status] = counts.get(status, 0) + n
    return counts


def _rank_agreement(proxy_ranks: list[int], target_ranks: list[int]) -> tuple[float | None, float | None]:
    if len(proxy_ranks) < 2:
        return None, None
    from scipy.stats import kendalltau, spearmanr  # scipy comes with scikit-learn (the engine's datasets)

    rho = float(spearmanr(proxy_ranks, target_ranks).statistic)
    tau = float(kendalltau(proxy_ranks, target_ranks).statistic)
    return (rho if math.isfinite(rho) else None), (tau if math.isfinite(tau) else None)


def _candidates(
    spec: StudySpec, target: StudyResult, proxied: list[tuple[TrialConfig, str, float | None]]
) -> list[TransferCandidate]:
    """The proxy's candidates with their target runs, best first at the target width (ties: proxy order)."""
    task, search = spec.task, spec.search
    scored = []
    for proxy_rank, (config, trial_id, value) in enumerate(proxied):
        runs = _target_runs(target, config)
        finals = [r.result.final if r.status == TrialStatus.COMPLETED else None for r in runs]
        mean, std = ranking.mean_std([v for v in finals if v is not None])
        key = (
            ranking.seed_group_key(
                [r.result for r in runs], mode=task.mode, objective=search.objective, unit=search.time_to_target_unit
            )
            if runs
            else (math.inf,)  # never ran at the target (cancelled): last
        )
        candidate = TransferCandidate(
            config=config,
            proxy_trial_id=trial_id,
            proxy_rank=proxy_rank,
            proxy_value=value,
            target_rank=0,
            target_mean=mean,
            target_std=std,
            target_values=finals,
            target_trial_ids=[r.trial_id for r in runs],
            target_seeds=[r.seed for r in runs],
        )
        scored.append(((key, proxy_rank), candidate))
    scored.sort(key=lambda item: item[0])
    return [c.model_copy(update={"target_rank": rank}) for rank, (_, c) in enumerate(scored)]


def run_transfer(
    spec: StudySpec | dict[str, Any] | str | Path,
    *,
    reporter: Reporter | None = None,
    should_stop: Callable[[], bool] | None = None,
    ray_address: str | None = None,
    storage_path: str | Path | None = None,
    resume: bool = False,
    warm_start_configs: Sequence[TrialConfig] = (),
    merge_proxy: Callable[[StudyResult], StudyResult] | None = None,
) -> TransferResult:
    """Run the μTransfer study ``spec`` (``search.proxy`` set): tune at the proxy width, confirm the top-k at the
    target width, return the winner. Arguments as in :func:`optforge.search.run_study`, whose two runs share
    ``storage_path`` (as ``<name>-proxy`` and ``target-<candidates>/<name>-target``) and ``resume``.

    ``merge_proxy`` receives the proxy phase's result and returns the one the top-k are chosen from: a
    resumed caller ranks in the proxy trials an earlier attempt finished that this run never saw (a restored
    Tune forgets the trials started after its last snapshot). Raises SpecError naming the field for an
    unusable proxy width."""
    from optforge.search.runner import run_study  # Ray loads only once a study really runs

    spec = load_spec(StudySpec, spec)
    started = time.time()
    proxy_spec = proxy_study(spec)
    pw, tw = proxy_spec.task.model.width, spec.task.model.width
    proxy_cfg = spec.search.proxy
    assert proxy_cfg is not None  # proxy_study checked it
    common = {"ray_address": ray_address, "storage_path": storage_path, "resume": resume, "should_stop": should_stop}
    extra = {"transfer_phase": "proxy", "proxy_width": pw, "target_width": tw, "name": spec.name}
    proxy = run_study(
        proxy_spec,
        reporter=_Relay(reporter, pw, target=False, extra=extra),
        warm_start_configs=warm_start_configs,
        **common,
    )
    if merge_proxy is not None:
        proxy = merge_proxy(proxy)
    proxied = _proxy_candidates(proxy, proxy_spec, proxy_cfg.top_k)
    target: StudyResult | None = None
    if proxied and proxy.status != "cancelled" and not (should_stop and should_stop()):
        configs = [c for c, _, _ in proxied]
        _emit(
            reporter,
            StudyEventKind.PHASE,
            phase="target",
            width=tw,
            proxy_width=pw,
            configs=len(configs),
            seeds=[spec.task.seed + i for i in range(proxy_cfg.seeds)],
            source_trial_ids=[t for _, t, _ in proxied],
        )
        target = run_study(
            target_study(spec, configs, proxy_cfg.seeds),
            reporter=_Relay(reporter, tw, target=True),
            **{**common, "storage_path": _target_storage(storage_path, configs, proxy_cfg.seeds)},
        )
    candidates = _candidates(spec, target, proxied) if target is not None else []
    by_proxy = sorted(candidates, key=lambda c: c.proxy_rank)
    rho, tau = _rank_agreement([c.proxy_rank for c in by_proxy], [c.target_rank for c in by_proxy])
    winner = candidates[0] if candidates and candidates[0].target_mean is not None else None
    cancelled = proxy.status == "cancelled" or (target is not None and target.status == "cancelled")
    result = TransferResult(
        name=spec.name,
        status="cancelled" if cancelled or (bool(proxied) and target is None) else "completed",
        metric=spec.task.metric,
        mode=spec.task.mode,
        proxy_width=pw,
        target_width=tw,
        base_width=spec.task.model.base_width,
        proxy=proxy,
        target=target,
        candidates=candidates,
        best_config=winner.config if winner else None,
        best_value=winner.target_mean if winner else None,
        best_std=winner.target_std if winner else None,
        spearman=rho,
        kendall=tau,
        wall_time=time.time() - started,
    )
    _emit(
        reporter,
        StudyEventKind.FINISHED,
        status=result.status,
        best_trial_id=winner.target_trial_ids[0] if winner and winner.target_trial_ids else None,
        best_config=result.best_config.model_dump(mode="json") if result.best_config else None,
        best_value=result.best_value,
        best_std=result.best_std,
        proxy_width=pw,
        target_width=tw,
        spearman=rho,
        kendall=tau,
        counts=_merged_counts(proxy, target),
        proxy_counts=proxy.counts(),
        target_counts=target.counts() if target else {},
        wall_time=result.wall_time,
    )
    return result


__all__ = ["TransferCandidate", "TransferResult", "proxy_study", "proxy_width", "run_transfer", "target_study"]
