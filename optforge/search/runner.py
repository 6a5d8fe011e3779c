"""``run_study``: a whole study on Ray Tune, with Optuna proposing configurations and ASHA stopping bad ones.

The driver (the process calling :func:`run_study`) runs Tune's controller, Optuna's sampler and the
callbacks; each trial runs :func:`optforge.search.trainable.run_tune_trial` on a Ray worker. Workers
are reused across trials (``reuse_actors``), so the interpreter, torch and the dataset are paid once
per worker; the dataset goes into the object store once (``tune.with_parameters``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna
import ray
from ray import tune

from optforge.search import ranking
from optforge.search.early_stopping import Rungs
from optforge.search.recorder import Reporter, StudyRecorder
from optforge.search.results import SeedSummary, StudyResult, TrialSummary
from optforge.search.samplers import build_sampler, validate_sampler
from optforge.search.space import SearchSpace
from optforge.search.trainable import TrialSettings, run_tune_trial
from optforge.search.transfer import proxy_width
from optforge.search.tune_bridge import CancelStopper, RecorderCallback, live_study
from optforge.search.tune_resume import RestoredSearch, StudySearcher, build_search
from optforge.spec import SpecError, StudyEventKind, StudySpec, TrialConfig, TrialStatus, load_spec

logger = logging.getLogger(__name__)

# wsd_branch judges a rung on a cooldown of this fraction of the steps taken so far: the default WSD
# decay_fraction (0.2, Hägele et al. 2024 find 10-20% matches cosine), so a rung sees the model a run
# of that length would end with.
BRANCH_FRACTION = 0.2


def validate_study(spec: StudySpec, *, warm_start_configs: Sequence[TrialConfig] = ()) -> SearchSpace:
    """Check what pydantic cannot see in ``spec`` (the space against the catalog, the sampler, the objective)
    and return the search space. Raises SpecError naming the field and the fix."""
    search, task = spec.search, spec.task
    if search.objective == "time_to_target" and task.target is None:
        raise SpecError(
            [
                (
                    "task.target",
                    "search.objective 'time_to_target' needs a target value: set task.target "
                    f"(a {task.metric} the model should reach)",
                )
            ],
            source="StudySpec",
        )
    if search.proxy is not None:
        proxy_width(spec)  # a proxy no narrower than the target (or one its heads do not divide): refused now
    space = SearchSpace.from_spec(search, warm_start_configs=warm_start_configs)
    validate_sampler(search, space)
    return space


def connect_ray(address: str | None = None) -> None:
    """Join ``address`` (else ``RAY_ADDRESS``), or start a local Ray, unless this process is already connected."""
    if ray.is_initialized():
        return
    ray.init(
        address=address or os.environ.get("RAY_ADDRESS") or None,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )


def _quiet_tune() -> None:
    """Keep Tune's console output and result files out of the user's way: events are the interface.

    Environment variables because that is how Tune reads these switches; ``setdefault`` so a user who
    sets them keeps their choice.
    """
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # no CSV/JSON/TensorBoard per trial
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the new console reporter prints errors even at verbose=0
    os.environ.setdefault("TUNE_PRINT_ALL_TRIAL_ERRORS", "0")  # tracebacks reach the caller in trial_finished
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "1e9")
    for name in ("ray.tune", "ray.train", "ray.air"):
        logging.getLogger(name).setLevel(logging.ERROR)
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _safe_name(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("_") or "study"


def _resources(spec: StudySpec) -> dict[str, float]:
    res = spec.search.resources
    return {"cpu": res.cpu, "gpu": res.gpu, **res.custom}


# Tune keeps trainables in a registry keyed by Ray job and trainable name, which every process of the job
# shares; the service's study drivers are actors of one job. Under one name, a study that registered its
# trainable (its task, bound by ``tune.with_parameters``) while another was starting trials made that other
# study's trials train this study's task. So each experiment's trainable has a name of its own: stable for
# one experiment directory, which ``Tuner.restore`` requires.
LEGACY_TRAINABLE_NAME = "run_tune_trial"  # the one name optforge used before; experiments saved so keep it


def trainable_name(experiment: str) -> str:
    """The trainable's registry name for the Tune experiment at ``experiment`` (its directory)."""
    digest = hashlib.sha256(str(Path(experiment).resolve()).encode()).hexdigest()[:16]
    return f"optforge_trial_{digest}"


def _trainable(settings: TrialSettings, dataset: Any, resources: dict[str, float], name: str) -> Any:
    bound = tune.with_parameters(run_tune_trial, settings=settings, dataset=dataset)
    bound.__name__ = name  # what Tune registers it under (tune.Experiment.get_trainable_name)
    return tune.with_resources(bound, resources)


def _restore(experiment: str, trainable: Any) -> Any:
    """``Tuner.restore`` with ``trainable`` under the name the experiment was saved with."""
    try:
        return tune.Tuner.restore(experiment, trainable=trainable, resume_unfinished=True, resume_errored=False)
    except ValueError as exc:  # saved by an optforge before per-experiment names: Tune insists on the old one
        if f"expected '{LEGACY_TRAINABLE_NAME}'" not in str(exc):
            raise
        logger.warning(
            "%s was saved under the shared trainable name %r; resuming it under that name",
            experiment,
            LEGACY_TRAINABLE_NAME,
        )
        trainable.__name__ = LEGACY_TRAINABLE_NAME  # the same trainable: its parameters stay in the object store
        return tune.Tuner.restore(experiment, trainable=trainable, resume_unfinished=True, resume_errored=False)


def _run_config(name: str, storage: str, callback: RecorderCallback, max_failures: int) -> tune.RunConfig:
    return tune.RunConfig(
        name=name,
        storage_path=storage,
        verbose=0,
        log_to_file=False,
        callbacks=[callback],
        stop=CancelStopper(str(Path(storage) / name)),
        failure_config=tune.FailureConfig(max_failures=max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
    )


def run_study(
    spec: StudySpec | dict[str, Any] | str | Path,
    *,
    reporter: Reporter | None = None,
    should_stop: Callable[[], bool] | None = None,
    ray_address: str | None = None,
    storage_path: str | Path | None = None,
    resume: bool = False,
    warm_start_configs: Sequence[TrialConfig] = (),
) -> StudyResult:
    """Run the study ``spec`` to the end (or until ``should_stop()`` turns true) and return it ranked.

    - ``reporter`` receives every :class:`StudyEvent` in this process (see :mod:`optforge.search.recorder`
      for the payloads); it is how the service stores results. The search never touches a database.
    - ``should_stop`` is polled about once a second per Tune loop turn; when it returns True the running
      trials are stopped (recorded ``cancelled``) and the result so far is returned.
    - ``ray_address`` (else ``RAY_ADDRESS``) joins a cluster; by default a local Ray starts. A Ray already
      initialized in this process is used as it is.
    - ``storage_path`` keeps Tune's experiment state (default: a temporary directory, removed after).
      ``resume=True`` continues an interrupted search found there under the study's name.
    - ``warm_start_configs`` (e.g. storage's recommendations for a similar task) are evaluated first,
      after ``search.initial_configs``; those outside the study's space are skipped.
    """
    spec = load_spec(StudySpec, spec)
    if spec.search.proxy is not None:  # two widths, two searches: optforge.search.transfer drives this one
        raise SpecError(
            [
                (
                    "search.proxy",
                    "run_study searches one width; run a study with search.proxy through "
                    "optforge.search.transfer.run_transfer",
                )
            ],
            source="StudySpec",
        )
    space = validate_study(spec, warm_start_configs=warm_start_configs if spec.search.warm_start else ())
    task, search = spec.task, spec.search
    rungs = Rungs.plan(task, search)
    recorder = StudyRecorder(
        metric=task.metric,
        mode=task.mode,
        objective=search.objective,
        unit=search.time_to_target_unit,
        reporter=reporter,
    )
    _quiet_tune()
    connect_ray(ray_address)
    from optforge.engine.data import load_data  # torch is imported only once a study really runs

    dataset = load_data(task.data)
    started = time.time()
    recorder.emit(
        StudyEventKind.STARTED,
        name=spec.name,
        n_trials=search.n_trials,
        families=list(space.families),
        schedules=list(space.schedules),
        sampler=search.sampler,
        early_stopping=search.early_stopping,
        rungs=list(rungs.steps),
        objective=search.objective,
        metric=task.metric,
        mode=task.mode,
        warm_start=len(space.warm_start),
    )
    with tempfile.TemporaryDirectory(prefix="optforge-tune-") as tmp:
        storage = str(Path(storage_path).resolve()) if storage_path else tmp
        name = _safe_name(spec.name)
        _search_phase(spec, space, rungs, recorder, dataset, storage, name, should_stop, resume)
        seed_groups = []
        if search.top_k > 0 and not recorder.cancelling:
            seed_groups = _reseed_phase(spec, recorder, dataset, storage, name, should_stop)
        recorder.finish_unfinished()
    return _study_result(
        spec, recorder, seed_groups, time.time() - started, str(storage_path) if storage_path else None
    )


def _search_phase(
    spec: StudySpec,
    space: SearchSpace,
    rungs: Rungs,
    recorder: StudyRecorder,
    dataset: Any,
    storage: str,
    name: str,
    should_stop: Callable[[], bool] | None,
    resume: bool,
) -> None:
    task, search = spec.task, spec.search
    branch = search.early_stopping == "wsd_branch"
    settings = TrialSettings(
        task=task,
        objective=search.objective,
        unit=search.time_to_target_unit,
        cpus=search.resources.cpu,
        branch_steps=rungs.steps if branch else (),
        branch_fraction=BRANCH_FRACTION if branch else 0.0,
    )
    resources = _resources(spec)
    experiment = str(Path(storage) / name)
    trainable = _trainable(settings, dataset, resources, trainable_name(experiment))
    callback = RecorderCallback(recorder, phase="search", default_seed=task.seed, resources=resources)
    run_config = _run_config(name, storage, callback, search.max_retries)
    if resume and tune.Tuner.can_restore(experiment):
        tuner = _restore(experiment, trainable)
        restored = tuner._local_tuner.get_run_config()  # the pickled callback lost its reporter on purpose
        restored_search = tuner._local_tuner._tune_config.search_alg  # Tune has no public way to it
        restored.callbacks = [*run_config.callbacks, RestoredSearch(restored_search)]
    else:
        searcher = StudySearcher(
            space=space.define_by_run,
            metric="objective",
            mode="min",
            sampler=build_sampler(search, space),
            points_to_evaluate=[space.to_params(c) for c in space.warm_start] or None,
        )
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                metric="objective",
                mode="min",
                search_alg=build_search(searcher, search.max_concurrent),
                scheduler=rungs.scheduler(),
                num_samples=search.n_trials,
                reuse_actors=True,
                trial_name_creator=_trial_name,
                trial_dirname_creator=_trial_name,
            ),
            run_config=run_config,
        )
    with live_study(experiment, should_stop, recorder):
        tuner.fit()


def _trial_name(trial: Any) -> str:
    return str(trial.trial_id)


def _reseed_phase(
    spec: StudySpec,
    recorder: StudyRecorder,
    dataset: Any,
    storage: str,
    name: str,
    should_stop: Callable[[], bool] | None,
) -> list[SeedSummary]:
    """Re-run the top-k completed configurations with ``extra_seeds`` more seeds each, to full budget."""
    task, search = spec.task, spec.search
    ranked = [
        t
        for t in recorder.ranked("search")
        if ranking.is_candidate(t.result, objective=search.objective, unit=search.time_to_target_unit)
    ][: search.top_k]
    if not ranked:
        return []
    seeds = [task.seed + i for i in range(1, search.extra_seeds + 1)]
    jobs = [{"trial_config": t.config.model_dump(mode="json"), "source_trial_id": t.trial_id} for t in ranked]
    recorder.emit(StudyEventKind.PHASE, phase="reseed", configs=len(jobs), seeds=seeds)
    settings = TrialSettings(
        task=task, objective=search.objective, unit=search.time_to_target_unit, cpus=search.resources.cpu
    )
    resources = _resources(spec)
    callback = RecorderCallback(recorder, phase="reseed", default_seed=task.seed, resources=resources)
    experiment = str(Path(storage) / f"{name}-reseed")
    tuner = tune.Tuner(
        _trainable(settings, dataset, resources, trainable_name(experiment)),
        param_space={"reseed": tune.grid_search(jobs), "seed": tune.grid_search(seeds)},
        tune_config=tune.TuneConfig(
            metric="objective",
            mode="min",
            reuse_actors=True,
            max_concurrent_trials=search.max_concurrent,
            trial_name_creator=_trial_name,
            trial_dirname_creator=_trial_name,
        ),
        run_config=_run_config(f"{name}-reseed", storage, callback, search.max_retries),
    )
    with live_study(experiment, should_stop, recorder):
        tuner.fit()
    return _seed_groups(spec, recorder, ranked)


def _seed_groups(spec: StudySpec, recorder: StudyRecorder, ranked: list[TrialSummary]) -> list[SeedSummary]:
    """One group per top-k configuration: its search run plus its re-runs, ranked by mean."""
    task, search = spec.task, spec.search
    groups = []
    for source in ranked:
        members = [source] + [
            s.summary() for s in recorder.finished_states("reseed") if s.source_trial_id == source.trial_id
        ]
        results = [m.result for m in members]
        values = [r.final if r.status == TrialStatus.COMPLETED else None for r in results]
        mean, std = ranking.mean_std([v for v in values if v is not None])
        key = ranking.seed_group_key(
            results, mode=task.mode, objective=search.objective, unit=search.time_to_target_unit
        )
        groups.append(
            (
                key,
                SeedSummary(
                    config=source.config,
                    source_trial_id=source.trial_id,
                    trial_ids=[m.trial_id for m in members],
                    seeds=[m.seed for m in members],
                    values=values,
                    mean=mean,
                    std=std,
                    rank=0,
                ),
            )
        )
    groups.sort(key=lambda g: g[0])
    return [g.model_copy(update={"rank": i}) for i, (_, g) in enumerate(groups)]


def _study_result(
    spec: StudySpec, recorder: StudyRecorder, seed_groups: list[SeedSummary], wall_time: float, storage_path: str | None
) -> StudyResult:
    trials = recorder.ranked("search")
    best = recorder.best()
    result = StudyResult(
        name=spec.name,
        status="cancelled" if recorder.cancelling else "completed",
        metric=spec.task.metric,
        mode=spec.task.mode,
        objective=spec.search.objective,
        trials=trials,
        reseeds=recorder.ranked("reseed"),
        seed_groups=seed_groups,
        best_trial_id=best.trial_id if best else None,
        wall_time=wall_time,
        storage_path=storage_path,
    )
    if seed_groups and seed_groups[0].mean is not None:
        top = seed_groups[0]
        result = result.model_copy(
            update={
                "best_config": top.config,
                "best_value": top.mean,
                "best_std": top.std,
                "best_trial_id": top.source_trial_id,
            }
        )
    elif best is not None:
        result = result.model_copy(update={"best_config": best.config, "best_value": best.result.final})
    recorder.emit(
        StudyEventKind.FINISHED,
        status=result.status,
        best_trial_id=result.best_trial_id,
        best_config=result.best_config.model_dump(mode="json") if result.best_config else None,
        best_value=result.best_value,
        best_std=result.best_std,
        counts=result.counts(),
        wall_time=wall_time,
    )
    return result


__all__ = ["connect_ray", "run_study", "validate_study"]
