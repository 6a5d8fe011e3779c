"""Mirror optforge studies into Optuna's own tables in the same database, for ``optuna-dashboard``.

Users already know optuna-dashboard; pointing it at optforge's database URL shows every mirrored study
with its trials' parameters, objective values and learning curves (intermediate values)::

    optuna-dashboard sqlite:///$HOME/.local/share/optforge/optforge.db

Optuna creates and migrates its tables itself (``optuna.storages.RDBStorage``); optforge's tables carry an
``optforge_`` prefix and their own Alembic version table, so the two never collide.

The service calls ``mirror_study`` when a study starts and ``mirror_trial`` when a trial finishes (or
``mirror_study_trials`` to back-fill). All three are idempotent: the Optuna study name is kept on the
optforge study and the Optuna trial id on the optforge trial. Two processes mirroring the *same* trial at
the *same* moment could both write it; the service mirrors a trial from one place, when it finishes.

Mapping:
  - study name ``optforge-<id>-<name>``; direction from the objective (``time_to_target`` minimizes,
    otherwise the task metric's mode); user attributes ``optforge_study_id`` and ``fingerprint``;
  - params ``family``, ``schedule``, ``mup`` and ``<family>.<hparam>`` / ``<schedule>.<param>`` for the
    values the configuration sets, with distributions from the catalog's ranges (widened to contain the
    value, since a fixed value may lie outside the search range);
  - state: completed → COMPLETE, pruned → PRUNED, diverged/failed/cancelled → FAIL (the optforge status
    is the user attribute ``optforge_status``); value: the trial's objective; intermediate values: the
    task metric at each evaluated step.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.exceptions import DuplicatedStudyError
from optuna.storages import RDBStorage
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import update

from optforge.catalog import FAMILIES, SCHEDULES, HParam, get_family, get_schedule
from optforge.spec import StudyRecord, TrialConfig, TrialRecord, TrialStatus
from optforge.storage.database import Storage
from optforge.storage.models import StudyRow, TrialRow
from optforge.storage.repo import studies, trials

_STATES = {
    TrialStatus.COMPLETED: TrialState.COMPLETE,
    TrialStatus.PRUNED: TrialState.PRUNED,
    TrialStatus.DIVERGED: TrialState.FAIL,
    TrialStatus.FAILED: TrialState.FAIL,
    TrialStatus.CANCELLED: TrialState.FAIL,
}


def optuna_storage(storage: Storage) -> RDBStorage:
    """Optuna's RDB storage on the same database (created once per Storage; it creates Optuna's tables)."""
    if storage._optuna is None:
        url = storage.engine.url.render_as_string(hide_password=False)
        if storage.dialect == "sqlite":
            engine_kwargs: dict[str, Any] = {"connect_args": {"timeout": 30}}  # wait for optforge's writers
        else:
            engine_kwargs = {"pool_pre_ping": True}
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # "A new study created..." per study is noise here
        storage._optuna = RDBStorage(url, engine_kwargs=engine_kwargs)
    return storage._optuna


def optuna_study_name(study: StudyRecord) -> str:
    """The name the study has in Optuna's tables (and in optuna-dashboard's study list)."""
    return f"optforge-{study.id}-{study.name}"


def _direction(study: StudyRecord) -> StudyDirection:
    if study.spec.search.objective == "time_to_target" or study.spec.task.mode == "min":
        return StudyDirection.MINIMIZE
    return StudyDirection.MAXIMIZE


def mirror_study(storage: Storage, *, study_id: int) -> str:
    """Create the study's Optuna counterpart if missing; returns its Optuna study name."""
    with storage.session(readonly=True) as s:
        study = studies.get_study(s, study_id=study_id)
    if study.optuna_study_name is not None:
        return study.optuna_study_name
    ostorage = optuna_storage(storage)
    name = optuna_study_name(study)
    try:
        optuna_id = ostorage.create_new_study(directions=[_direction(study)], study_name=name)
        ostorage.set_study_user_attr(optuna_id, "optforge_study_id", study.id)
        ostorage.set_study_user_attr(optuna_id, "fingerprint", study.fingerprint)
    except DuplicatedStudyError:
        pass  # an earlier call created it and stopped before recording the name below
    with storage.session() as s:
        s.execute(update(StudyRow).where(StudyRow.id == study_id).values(optuna_study_name=name))
    return name


def mirror_trial(storage: Storage, *, trial_id: int) -> int | None:
    """Write the finished trial into the study's Optuna counterpart; returns its Optuna trial id.

    None for a trial that has not finished yet. Calling it again returns the same id.
    """
    with storage.session(readonly=True) as s:
        trial = trials.get_trial(s, trial_id=trial_id, with_curve=True)
        study = studies.get_study(s, study_id=trial.study_id)
    if trial.optuna_trial_id is not None:
        return trial.optuna_trial_id
    if not trial.status.finished:
        return None
    name = study.optuna_study_name or mirror_study(storage, study_id=study.id)
    ostorage = optuna_storage(storage)
    optuna_id = ostorage.create_new_trial(ostorage.get_study_id_from_name(name), template_trial=_frozen(study, trial))
    with storage.session() as s:
        s.execute(update(TrialRow).where(TrialRow.id == trial_id).values(optuna_trial_id=optuna_id))
    return optuna_id


def mirror_study_trials(storage: Storage, *, study_id: int) -> int:
    """Mirror every finished trial of the study not mirrored yet; returns how many were written."""
    mirror_study(storage, study_id=study_id)
    with storage.session(readonly=True) as s:
        pending = [
            t.id for t in trials.list_trials(s, study_id=study_id) if t.status.finished and t.optuna_trial_id is None
        ]
    return sum(mirror_trial(storage, trial_id=trial_id) is not None for trial_id in pending)


def _frozen(study: StudyRecord, trial: TrialRecord) -> FrozenTrial:
    state = _STATES[trial.status]
    value = trial.value
    if state == TrialState.COMPLETE and (value is None or math.isnan(value)):
        state = TrialState.FAIL  # Optuna requires a number for a complete trial
    params, distributions = _params(trial.config)
    metric = trial.metric or study.spec.task.metric
    intermediate = {p.step: v for p in trial.curve if (v := p.metric(metric)) is not None and math.isfinite(v)}
    user_attrs: dict[str, Any] = {
        "optforge_trial_id": trial.id,
        "optforge_key": trial.key,
        "optforge_status": trial.status.value,
        "phase": trial.phase,
        "config": trial.config.model_dump(mode="json"),
    }
    for name in ("seed", "width", "node_id", "error", "final", "best", "steps"):
        attr = getattr(trial, name)
        if attr is not None and not (isinstance(attr, float) and not math.isfinite(attr)):
            user_attrs[name] = attr
    frozen = FrozenTrial(
        number=trial.number,
        trial_id=0,  # both ignored: Optuna numbers the new trial itself
        state=state,
        value=value
        if state in (TrialState.COMPLETE, TrialState.PRUNED) and value is not None and not math.isnan(value)
        else None,
        datetime_start=_local(trial.started_at or trial.created_at),
        datetime_complete=_local(trial.finished_at or trial.updated_at),
        params=params,
        distributions=distributions,
        user_attrs=user_attrs,
        system_attrs={},
        intermediate_values=intermediate,
    )
    frozen._validate()
    return frozen


def _local(moment: datetime) -> datetime:
    # Optuna stores naive local times (datetime.now()); the dashboard shows them as such.
    return moment.astimezone().replace(tzinfo=None)


def _params(config: TrialConfig) -> tuple[dict[str, Any], dict[str, BaseDistribution]]:
    params: dict[str, Any] = {"family": config.family, "schedule": config.schedule, "mup": config.mup}
    distributions: dict[str, BaseDistribution] = {
        "family": CategoricalDistribution(tuple(sorted(FAMILIES))),
        "schedule": CategoricalDistribution(tuple(sorted(SCHEDULES))),
        "mup": CategoricalDistribution((False, True)),
    }
    family, schedule = get_family(config.family), get_schedule(config.schedule)
    named = [(f"{config.family}.{k}", family.hparam(k), v) for k, v in config.hparams.items()]
    named += [(f"{config.schedule}.{k}", schedule.param(k), v) for k, v in config.schedule_params.items()]
    for name, hparam, value in named:
        distribution = _distribution(hparam, value)
        if distribution is not None:
            params[name] = value
            distributions[name] = distribution
    return params, distributions


def _distribution(hparam: HParam, value: Any) -> BaseDistribution | None:
    """The catalog's range as an Optuna distribution containing ``value``; None if none can (e.g. a fixed 0
    for a log-scale hyperparameter: Optuna requires the same log flag for a name across a study)."""
    if hparam.kind == "bool":
        return CategoricalDistribution((False, True))
    if hparam.kind == "choice":
        return CategoricalDistribution(tuple(hparam.choices or (value,)))
    log = hparam.scale == "log"
    low = min(hparam.low if hparam.low is not None else value, value)
    high = max(hparam.high if hparam.high is not None else value, value)
    if log and low <= 0:
        return None
    if hparam.kind == "int":
        return IntDistribution(int(low), int(high), log=log)
    return FloatDistribution(float(low), float(high), log=log)
