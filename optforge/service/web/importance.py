"""Hyperparameter importance (Optuna's fANOVA) and parallel-coordinates data for the status page.

The trials are rebuilt as an in-memory Optuna study (``optuna.trial.create_trial``) from what storage
holds, rather than read from the Optuna mirror tables: the mirror is written only when something calls
it, while every stored trial is already in optforge's own tables, and an in-memory study costs no
writes and no second connection. Each trial's parameters are exactly what the sampler saw: the study's
``SearchSpace`` maps the configuration to Optuna parameters (``to_params``) and replays its define-by-run
sampling on a ``FixedTrial`` to learn their distributions, so names read as in the search
(``adamw.lr``, ``adamw.one_minus_beta1``, ``family``) and in optuna-dashboard.

Dimensions are named after their owner, so AdamW's LR and SGD's LR never share an axis; fANOVA over a
multi-family study therefore sees only the dimensions every trial has (family, schedule). That is one
*scope*; each family with enough completed trials gets its own scope, where all of its hyperparameters
count. Only completed trials of the search phase enter (pruned ones have no final value, re-seeded ones
repeat a configuration).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.importance import FanovaImportanceEvaluator, get_param_importances
from optuna.trial import FixedTrial, create_trial

from optforge.search.space import FAMILY_KEY, SCHEDULE_KEY, SearchSpace
from optforge.service.web.schemas import AnalysisScope, Dimension, ImportanceItem, ParallelRow
from optforge.spec import SpecError, StudySpec, TrialRecord, TrialStatus

# fANOVA needs a few points per dimension before its forest says anything; below this a scope shows a note.
MIN_TRIALS = 3
# Optuna's defaults are 64 trees of depth 64; 32 trees halve the cost (~50 ms for 100 trials) and the
# ranking of the top parameters does not change on studies of this size.
N_TREES = 32
# A fixed seed: the same trials always give the same importances, so a refresh does not reshuffle the chart.
SEED = 0


def objective_of(trial: TrialRecord) -> float | None:
    """The value the search ranked ``trial`` by (its objective), else its final metric; None if not finite."""
    value = trial.value if trial.value is not None else trial.final
    return value if value is not None and math.isfinite(value) else None


def completed_search_trials(trials: Sequence[TrialRecord]) -> list[TrialRecord]:
    return [
        t for t in trials if t.phase == "search" and t.status == TrialStatus.COMPLETED and objective_of(t) is not None
    ]


def trial_params(space: SearchSpace, trial: TrialRecord) -> tuple[dict[str, Any], dict[str, BaseDistribution]]:
    """The Optuna parameters and distributions the search's sampler saw for ``trial``.

    ``family`` and ``schedule`` are always present (also when the study searched only one), so every
    trial of a study shares them.
    """
    params = space.to_params(trial.config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a user's fixed value may lie outside the default range
        fixed = FixedTrial({**params})
        space.sample(fixed)  # type: ignore[arg-type]  # replays the define-by-run order
    distributions = dict(fixed.distributions)
    params = {name: fixed.params[name] for name in distributions}
    params[FAMILY_KEY], params[SCHEDULE_KEY] = trial.config.family, trial.config.schedule
    distributions[FAMILY_KEY] = CategoricalDistribution((trial.config.family,))
    distributions[SCHEDULE_KEY] = CategoricalDistribution((trial.config.schedule,))
    return params, distributions


def merge_distribution(a: BaseDistribution, b: BaseDistribution) -> BaseDistribution:
    """One distribution containing both (Optuna requires one distribution per name within a study)."""
    if isinstance(a, CategoricalDistribution) and isinstance(b, CategoricalDistribution):
        return CategoricalDistribution(tuple(dict.fromkeys([*a.choices, *b.choices])))
    if isinstance(a, IntDistribution) and isinstance(b, IntDistribution):
        return IntDistribution(min(a.low, b.low), max(a.high, b.high), log=a.log and b.log)
    if isinstance(a, FloatDistribution) and isinstance(b, FloatDistribution):
        return FloatDistribution(min(a.low, b.low), max(a.high, b.high), log=a.log and b.log)
    return a  # incompatible kinds under one name cannot come from one search space; keep the first


def _widen(distribution: BaseDistribution, value: Any) -> BaseDistribution:
    """``distribution`` grown to contain ``value`` (a user's fixed value may lie outside the search range)."""
    if isinstance(distribution, CategoricalDistribution):
        return (
            distribution if value in distribution.choices else CategoricalDistribution((*distribution.choices, value))
        )
    if isinstance(distribution, FloatDistribution | IntDistribution):
        low, high = min(distribution.low, value), max(distribution.high, value)
        return type(distribution)(low, high, log=distribution.log and low > 0)  # type: ignore[arg-type]
    return distribution


def _scope(
    key: str, label: str, rows: list[tuple[TrialRecord, dict[str, Any], dict[str, BaseDistribution]]], mode: str
) -> AnalysisScope:
    """Importance and parallel-coordinates rows of one group of trials."""
    merged: dict[str, BaseDistribution] = {}
    for _, params, distributions in rows:
        for name, distribution in distributions.items():
            dist = _widen(distribution, params[name])
            merged[name] = merge_distribution(merged[name], dist) if name in merged else dist
    # Only dimensions every trial of the scope has (Optuna's intersection search space does the same).
    shared = [name for name in merged if all(name in params for _, params, _ in rows)]
    importance: dict[str, float] = {}
    note = None
    if len(rows) < MIN_TRIALS:
        note = f"{len(rows)} completed trial(s): importance needs at least {MIN_TRIALS}"
    else:
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # as the mirror does: "study created" per call is noise
        study = optuna.create_study(direction="maximize" if mode == "max" else "minimize")
        for trial, params, _ in rows:
            study.add_trial(
                create_trial(
                    params={n: params[n] for n in shared},
                    distributions={n: merged[n] for n in shared},
                    value=objective_of(trial),
                )
            )
        try:
            importance = get_param_importances(study, evaluator=FanovaImportanceEvaluator(n_trees=N_TREES, seed=SEED))
        except RuntimeError:  # fANOVA's "zero total variance": every trial scored the same
            note = "every trial has the same result: nothing to attribute"
        if not note and not any(v > 0 for v in importance.values()):
            note = "no parameter varies across these trials"
    ordered = sorted(shared, key=lambda n: (-importance.get(n, 0.0), n))
    dims = [_dimension(name, merged[name]) for name in ordered if not merged[name].single()]
    return AnalysisScope(
        key=key,
        label=label,
        n_trials=len(rows),
        importance=[ImportanceItem(name=n, importance=v) for n, v in importance.items() if not merged[n].single()],
        note=note,
        dimensions=dims,
        rows=[
            ParallelRow(
                trial_id=trial.id,
                number=trial.number,
                values=[params[d.name] for d in dims],
                objective=objective_of(trial),  # type: ignore[arg-type]
            )
            for trial, params, _ in rows
        ],
    )


def _dimension(name: str, distribution: BaseDistribution) -> Dimension:
    if isinstance(distribution, CategoricalDistribution):
        return Dimension(name=name, kind="category", categories=[str(c) for c in distribution.choices])
    log = bool(getattr(distribution, "log", False))
    return Dimension(name=name, kind="value", log=log, low=distribution.low, high=distribution.high)  # type: ignore[attr-defined]


def analysis_scopes(spec: StudySpec, trials: Sequence[TrialRecord]) -> list[AnalysisScope]:
    """The ``all`` scope (every completed search trial) and one per family with completed trials.

    Families are ordered by their best objective (the best family first).
    """
    try:
        space = SearchSpace.from_spec(spec.search)
    except SpecError:  # a spec the search itself refused: the study failed; show no analysis
        return []
    rows = []
    for trial in completed_search_trials(trials):
        try:
            rows.append((trial, *trial_params(space, trial)))
        except ValueError:  # a configuration the space cannot replay (e.g. stored before the catalog changed)
            continue
    mode = "min" if spec.search.objective == "time_to_target" else spec.task.mode
    scopes = [_scope("all", "all families", rows, mode)]
    by_family: dict[str, list] = {}
    for row in rows:
        by_family.setdefault(row[0].config.family, []).append(row)
    if len(by_family) < 2:
        return scopes  # one family: the "all" scope already holds every hyperparameter
    sign = -1.0 if mode == "max" else 1.0

    def best(family: str) -> float:
        return min(sign * objective_of(row[0]) for row in by_family[family])  # type: ignore[operator]

    scopes += [_scope(f"family:{f}", f, by_family[f], mode) for f in sorted(by_family, key=best)]
    return scopes
