"""Trials are reported idempotently: re-reporting after a restart updates the same row and counts once."""

from __future__ import annotations

import math

import pytest
from storage_helpers import config, points

from optforge.spec import MetricPoint, TrialResult, TrialStatus
from optforge.storage import Conflict, InvalidTransition, NotFound, repo


def test_trial_round_trips_with_config_resources_and_summary(storage, study):
    cfg = config(lr=3e-3)
    with storage.session() as s:
        started = repo.trials.upsert_trial(
            s,
            study_id=study.id,
            key="abc_00001",
            config=cfg,
            phase="transfer",
            seed=7,
            width=256,
            resources={"cpu": 1.0, "gpu": 0.25},
            node_id="node-1",
        )
        result = TrialResult(
            status=TrialStatus.COMPLETED,
            steps=40,
            final=0.25,
            best=0.2,
            step_reached_target=30,
            seconds_reached_target=1.5,
            curve=points(40),
            wall_time=2.5,
            device="cpu",
            info={"param_count": 1234, "code_version": "abc"},
        )
        finished = repo.trials.finish_trial(s, trial_id=started.id, result=result, value=0.22)
    with storage.session(readonly=True) as s:
        loaded = repo.trials.get_trial(s, trial_id=started.id, with_curve=True)
        by_key = repo.trials.get_trial_by_key(s, study_id=study.id, key="abc_00001")
    assert loaded.config == cfg
    assert (loaded.phase, loaded.seed, loaded.width, loaded.node_id) == ("transfer", 7, 256, "node-1")
    assert loaded.resources == {"cpu": 1.0, "gpu": 0.25}
    assert (loaded.status, loaded.value, loaded.final, loaded.best, loaded.steps) == (
        TrialStatus.COMPLETED,
        0.22,
        0.25,
        0.2,
        40,
    )
    assert (loaded.step_reached_target, loaded.seconds_reached_target, loaded.wall_time) == (30, 1.5, 2.5)
    assert loaded.info == {"param_count": 1234, "code_version": "abc"}
    assert loaded.curve == points(40)
    assert loaded.number == 0 and loaded.attempt == 1
    assert loaded.finished_at is not None and loaded.started_at is not None
    assert by_key.id == loaded.id and finished.id == loaded.id


def test_reporting_the_same_trial_twice_keeps_one_row_and_one_count(storage, study):
    result = TrialResult(status=TrialStatus.COMPLETED, final=0.5, curve=points(20))
    for _ in range(2):  # the second round is what a restarted driver does
        with storage.session() as s:
            trial = repo.trials.upsert_trial(s, study_id=study.id, key="k", config=config())
            repo.trials.finish_trial(s, trial_id=trial.id, result=result)
    with storage.session(readonly=True) as s:
        assert len(repo.trials.list_trials(s, study_id=study.id)) == 1
        assert repo.metrics.count_metric_points(s, trial_id=trial.id) == 20
        assert repo.studies.get_study(s, study_id=study.id).trials_finished == 1


def test_trials_are_numbered_in_report_order(storage, study):
    with storage.session() as s:
        numbers = [repo.trials.upsert_trial(s, study_id=study.id, key=k, config=config()).number for k in "abc"]
        again = repo.trials.upsert_trial(s, study_id=study.id, key="b", config=config()).number
    assert numbers == [0, 1, 2] and again == 1


def test_reusing_a_key_for_another_config_is_a_conflict(storage, study):
    with storage.session() as s:
        repo.trials.upsert_trial(s, study_id=study.id, key="k", config=config(lr=1e-3))
    with storage.session() as s, pytest.raises(Conflict, match="another configuration"):
        repo.trials.upsert_trial(s, study_id=study.id, key="k", config=config(lr=2e-3))


def test_same_key_in_two_studies_is_two_trials(storage, study):
    from optforge.spec import StudySpec

    with storage.session() as s:
        other = repo.studies.create_study(s, spec=StudySpec(name="other"))
        a = repo.trials.upsert_trial(s, study_id=study.id, key="k", config=config())
        b = repo.trials.upsert_trial(s, study_id=other.id, key="k", config=config())
    assert a.id != b.id


def test_failed_trial_may_run_again_with_the_next_attempt(storage, study):
    with storage.session() as s:
        t = repo.trials.upsert_trial(s, study_id=study.id, key="k", config=config())
        repo.trials.finish_trial(s, trial_id=t.id, result=TrialResult(status=TrialStatus.FAILED, error="Traceback..."))
        assert repo.studies.get_study(s, study_id=study.id).trials_finished == 1
        retry = repo.trials.upsert_trial(s, study_id=study.id, key="k", config=config())
        assert (retry.status, retry.attempt, retry.error, retry.finished_at) == (TrialStatus.RUNNING, 2, None, None)
        assert repo.studies.get_study(s, study_id=study.id).trials_finished == 0
        done = repo.trials.finish_trial(s, trial_id=t.id, result=TrialResult(status=TrialStatus.COMPLETED, final=1.0))
    assert done.status == TrialStatus.COMPLETED and done.attempt == 2


@pytest.mark.parametrize("final", [TrialStatus.COMPLETED, TrialStatus.PRUNED, TrialStatus.DIVERGED])
def test_completed_pruned_and_diverged_trials_are_final(storage, study, final):
    with storage.session() as s:
        t = repo.trials.upsert_trial(s, study_id=study.id, key="k", config=config())
        stored = repo.trials.finish_trial(s, trial_id=t.id, result=TrialResult(status=final))
        replayed = repo.trials.upsert_trial(s, study_id=study.id, key="k", config=config(), node_id="other")
    assert replayed == stored  # a "running" report replayed after a restart changes nothing
    other = TrialStatus.FAILED if final != TrialStatus.FAILED else TrialStatus.COMPLETED
    with storage.session() as s, pytest.raises(InvalidTransition, match=f"'{final.value}' and cannot become"):
        repo.trials.finish_trial(s, trial_id=t.id, result=TrialResult(status=other))


def test_finishing_with_an_unfinished_status_is_refused(storage, study):
    with storage.session() as s:
        t = repo.trials.upsert_trial(s, study_id=study.id, key="k", config=config())
        with pytest.raises(ValueError, match="finished status"):
            repo.trials.finish_trial(s, trial_id=t.id, result=TrialResult(status=TrialStatus.RUNNING))


def test_diverged_curve_keeps_nan_losses_and_nan_free_json(storage, study):
    curve = [
        MetricPoint(step=0, train_loss=2.0, val_loss=2.1, lr=1.0, examples_per_s=10, wall_time=0),
        MetricPoint(step=1, train_loss=float("nan"), lr=1.0, examples_per_s=10, wall_time=0.1),
    ]
    result = TrialResult(
        status=TrialStatus.DIVERGED, final=float("nan"), curve=curve, info={"last_loss": float("inf")}, error="nan"
    )
    with storage.session() as s:
        t = repo.trials.upsert_trial(s, study_id=study.id, key="k", config=config(lr=1.0))
        repo.trials.finish_trial(s, trial_id=t.id, result=result)
    with storage.session(readonly=True) as s:
        loaded = repo.trials.get_trial(s, trial_id=t.id, with_curve=True)
    assert loaded.status == TrialStatus.DIVERGED and loaded.error == "nan"
    assert loaded.final is None and loaded.info == {"last_loss": None}
    assert loaded.curve[0] == curve[0]
    assert math.isnan(loaded.curve[1].train_loss) and loaded.curve[1].val_loss is None


def test_trial_of_a_missing_study_is_not_found(storage):
    with storage.session() as s, pytest.raises(NotFound, match="study"):
        repo.trials.upsert_trial(s, study_id=404, key="k", config=config())


def test_list_trials_filters_by_status_and_brings_curves(storage, study):
    with storage.session() as s:
        for key, status in [("a", TrialStatus.COMPLETED), ("b", TrialStatus.PRUNED), ("c", TrialStatus.COMPLETED)]:
            t = repo.trials.upsert_trial(s, study_id=study.id, key=key, config=config())
            repo.trials.finish_trial(s, trial_id=t.id, result=TrialResult(status=status, curve=points(3)))
    with storage.session(readonly=True) as s:
        completed = repo.trials.list_trials(s, study_id=study.id, status=TrialStatus.COMPLETED, with_curves=True)
    assert [t.key for t in completed] == ["a", "c"]
    assert all(t.curve == points(3) for t in completed)


def test_cancel_unfinished_trials_counts_them_finished(storage, study):
    with storage.session() as s:
        for key in "abc":
            repo.trials.upsert_trial(s, study_id=study.id, key=key, config=config())
        done = repo.trials.get_trial_by_key(s, study_id=study.id, key="a")
        repo.trials.finish_trial(s, trial_id=done.id, result=TrialResult(status=TrialStatus.COMPLETED, final=1.0))
        assert repo.trials.cancel_unfinished_trials(s, study_id=study.id, error="study cancelled") == 2
    with storage.session(readonly=True) as s:
        statuses = [t.status for t in repo.trials.list_trials(s, study_id=study.id)]
        assert statuses == [TrialStatus.COMPLETED, TrialStatus.CANCELLED, TrialStatus.CANCELLED]
        assert repo.studies.get_study(s, study_id=study.id).trials_finished == 3


def test_counters_read_later_in_the_same_unit_of_work_are_current(storage, study):
    from optforge.storage.models import StudyRow

    with storage.session() as s:
        held = s.get(StudyRow, study.id)  # a row the session keeps: counter updates must refresh it
        t = repo.trials.upsert_trial(s, study_id=study.id, key="k", config=config())
        repo.trials.finish_trial(s, trial_id=t.id, result=TrialResult(status=TrialStatus.PRUNED))
        assert repo.studies.get_study(s, study_id=study.id).trials_finished == 1
        assert held.last_trial_number == 0


def test_best_trial_and_running_count_match_a_scan_of_all_trials(storage, study):
    # (status, phase, final): ties, NaN (stored as NULL), infinity, and better values that must not count
    # because the trial was pruned, diverged, still running or belongs to another phase.
    rows = [
        (TrialStatus.COMPLETED, "search", 0.5),
        (TrialStatus.COMPLETED, "search", 0.2),
        (TrialStatus.COMPLETED, "search", 0.2),
        (TrialStatus.COMPLETED, "search", math.nan),
        (TrialStatus.COMPLETED, "search", math.inf),
        (TrialStatus.COMPLETED, "search", 0.9),
        (TrialStatus.PRUNED, "search", 0.01),
        (TrialStatus.DIVERGED, "search", 1e9),
        (TrialStatus.COMPLETED, "transfer", 0.001),
        (TrialStatus.RUNNING, "search", None),
        (TrialStatus.RUNNING, "search", None),
    ]
    with storage.session() as s:
        for i, (status, phase, final) in enumerate(rows):
            trial = repo.trials.upsert_trial(s, study_id=study.id, key=f"t{i}", config=config(lr=1e-3), phase=phase)
            if status != TrialStatus.RUNNING:
                result = TrialResult(status=status, steps=10, final=final)
                repo.trials.finish_trial(s, trial_id=trial.id, result=result)
    with storage.session(readonly=True) as s:
        everything = repo.trials.list_trials(s, study_id=study.id)
        running = repo.trials.count_trials(s, study_id=study.id, status=TrialStatus.RUNNING)
        best = {mode: repo.trials.best_trial(s, study_id=study.id, mode=mode) for mode in ("min", "max")}
        nothing = repo.trials.best_trial(s, study_id=study.id, mode="min", phase="no-such-phase")
        with pytest.raises(ValueError, match="mode"):
            repo.trials.best_trial(s, study_id=study.id, mode="minimum")
    assert running == 2 == sum(t.status == TrialStatus.RUNNING for t in everything)
    candidates = [
        t for t in everything if t.status == TrialStatus.COMPLETED and t.phase == "search" and t.final is not None
    ]
    assert best["min"].id == min(candidates, key=lambda t: (t.final, t.number)).id
    assert best["max"].id == min(candidates, key=lambda t: (-t.final, t.number)).id
    assert (best["min"].number, best["min"].final) == (1, 0.2)  # the first of the tie
    assert best["max"].final == math.inf
    assert nothing is None
