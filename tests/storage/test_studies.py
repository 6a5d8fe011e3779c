"""Studies round-trip, follow their life cycle, and are handed to exactly one worker at a time."""

from __future__ import annotations

import contextlib
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import update
from storage_helpers import config, points

from optforge.spec import StudyEvent, StudyEventKind, StudySpec, StudyStatus, TaskSpec, TrialResult, TrialStatus
from optforge.storage import InvalidTransition, LeaseLost, NotFound, repo
from optforge.storage._types import utcnow
from optforge.storage.fingerprint import task_fingerprint
from optforge.storage.models import StudyRow


def test_study_round_trips_with_its_spec(storage):
    spec = StudySpec.model_validate(
        {
            "name": "digits sweep",
            "task": {"model": {"name": "mlp", "width": 64}, "data": {"name": "digits"}, "steps": 50},
            "search": {"n_trials": 7, "families": ["adamw", "lion"], "fixed": {"adamw.beta1": 0.9}},
        }
    )
    with storage.session() as s:
        user = repo.users.create_user(s, name="ada")
        created = repo.studies.create_study(s, spec=spec, owner_id=user.id)
    with storage.session(readonly=True) as s:
        loaded = repo.studies.get_study(s, study_id=created.id)
    assert loaded == created
    assert loaded.spec == spec
    assert loaded.status == StudyStatus.QUEUED
    assert loaded.owner_id == user.id
    assert loaded.trials_total == 7 and loaded.trials_finished == 0
    assert loaded.fingerprint == task_fingerprint(spec.task)
    assert loaded.created_at.tzinfo is not None


def test_missing_study_raises_not_found_naming_it(storage):
    with storage.session() as s, pytest.raises(NotFound, match="study with id 12345"):
        repo.studies.get_study(s, study_id=12345)


def test_study_for_an_unknown_owner_is_not_found(storage):
    with pytest.raises(NotFound), storage.session() as s:
        repo.studies.create_study(s, spec=StudySpec(), owner_id=999)


def test_list_filters_by_owner_and_status_newest_first(storage):
    with storage.session() as s:
        ada = repo.users.create_user(s, name="ada")
        bob = repo.users.create_user(s, name="bob")
        a1 = repo.studies.create_study(s, spec=StudySpec(name="a1"), owner_id=ada.id)
        a2 = repo.studies.create_study(s, spec=StudySpec(name="a2"), owner_id=ada.id)
        repo.studies.create_study(s, spec=StudySpec(name="b1"), owner_id=bob.id)
        repo.studies.request_cancel(s, study_id=a1.id)
    with storage.session(readonly=True) as s:
        assert [x.name for x in repo.studies.list_studies(s, owner_id=ada.id)] == ["a2", "a1"]
        assert [x.id for x in repo.studies.list_studies(s, status=StudyStatus.QUEUED, owner_id=ada.id)] == [a2.id]
        assert repo.studies.count_studies(s) == 3
        assert repo.studies.count_studies(s, owner_id=bob.id) == 1
        assert [x.name for x in repo.studies.list_studies(s, limit=1, offset=1)] == ["a2"]
        a1_status = repo.studies.get_study(s, study_id=a1.id).status
        assert a1_status != StudyStatus.QUEUED
        assert repo.studies.count_studies(s, owner_id=ada.id, status=[StudyStatus.QUEUED, a1_status]) == 2
        assert repo.studies.count_studies(s, owner_id=ada.id, status=[StudyStatus.QUEUED, StudyStatus.RUNNING]) == 1
        assert [x.name for x in repo.studies.list_studies(s, status=[a1_status])] == ["a1"]


def test_an_owners_count_holds_until_the_insert_so_two_racing_submissions_cannot_both_pass_a_limit(storage):
    """What the API's active-study limit does: lock the owner, count, insert if under the limit (here 1)."""
    with storage.session() as s:
        owner = repo.users.create_user(s, name="racer").id
    counted = threading.Barrier(2, timeout=1.0)
    created: list[int] = []

    def submit() -> None:
        with storage.session() as s:
            repo.users.lock_submissions(s, owner_id=owner)
            active = repo.studies.count_studies(s, owner_id=owner, status=[StudyStatus.QUEUED, StudyStatus.RUNNING])
            with contextlib.suppress(threading.BrokenBarrierError):
                counted.wait()  # both counted before either inserted: only possible without the lock
            if active < 1:
                created.append(repo.studies.create_study(s, spec=StudySpec(), owner_id=owner).id)

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(created) == 1
    with storage.session(readonly=True) as s:
        assert repo.studies.count_studies(s, owner_id=owner) == 1


def test_life_cycle_allows_retry_but_never_reopens_a_completed_study(storage, study):
    with storage.session() as s:
        running = repo.studies.set_study_status(s, study_id=study.id, status=StudyStatus.RUNNING)
        assert running.started_at is not None
        failed = repo.studies.set_study_status(s, study_id=study.id, status=StudyStatus.FAILED, error="boom")
        assert failed.error == "boom" and failed.finished_at is not None
        retried = repo.studies.set_study_status(s, study_id=study.id, status=StudyStatus.QUEUED)
        assert retried.error is None and retried.finished_at is None
        repo.studies.set_study_status(s, study_id=study.id, status=StudyStatus.RUNNING)
        done = repo.studies.set_study_status(s, study_id=study.id, status=StudyStatus.COMPLETED)
        again = repo.studies.set_study_status(s, study_id=study.id, status=StudyStatus.COMPLETED)
        assert again.finished_at == done.finished_at
    with storage.session() as s, pytest.raises(InvalidTransition, match="'completed' and cannot become 'running'"):
        repo.studies.set_study_status(s, study_id=study.id, status=StudyStatus.RUNNING)


def test_cancel_is_immediate_when_queued_and_a_request_when_running(storage):
    with storage.session() as s:
        queued = repo.studies.create_study(s, spec=StudySpec(name="q"))
        running = repo.studies.create_study(s, spec=StudySpec(name="r"))
        repo.studies.set_study_status(s, study_id=running.id, status=StudyStatus.RUNNING)
        assert repo.studies.request_cancel(s, study_id=queued.id).status == StudyStatus.CANCELLED
        flagged = repo.studies.request_cancel(s, study_id=running.id)
        assert flagged.status == StudyStatus.RUNNING and flagged.cancel_requested


def test_claim_hands_out_oldest_queued_study_once(storage):
    with storage.session() as s:
        first = repo.studies.create_study(s, spec=StudySpec(name="first"))
        second = repo.studies.create_study(s, spec=StudySpec(name="second"))
    with storage.session() as s:
        a = repo.studies.claim_next_study(s, worker="w1")
    with storage.session() as s:
        b = repo.studies.claim_next_study(s, worker="w2")
    with storage.session() as s:
        none = repo.studies.claim_next_study(s, worker="w3")
    assert (a.id, a.claimed_by, a.status, a.claim_count) == (first.id, "w1", StudyStatus.RUNNING, 1)
    assert (b.id, b.claimed_by) == (second.id, "w2")
    assert none is None


def _age_heartbeat(storage, study_id: int, seconds: float) -> None:
    with storage.session() as s:
        s.execute(
            update(StudyRow).where(StudyRow.id == study_id).values(heartbeat_at=utcnow() - timedelta(seconds=seconds))
        )


def test_expired_lease_moves_the_study_to_another_worker(storage, study):
    with storage.session() as s:
        repo.studies.claim_next_study(s, worker="dead", lease_s=60)
        assert repo.studies.claim_next_study(s, worker="other", lease_s=60) is None  # lease still fresh
    _age_heartbeat(storage, study.id, 120)
    with storage.session() as s:
        taken = repo.studies.claim_next_study(s, worker="other", lease_s=60)
    assert (taken.id, taken.claimed_by, taken.claim_count) == (study.id, "other", 2)
    with storage.session() as s, pytest.raises(LeaseLost):
        repo.studies.heartbeat(s, study_id=study.id, worker="dead")
    with storage.session() as s, pytest.raises(LeaseLost):
        repo.studies.set_study_status(s, study_id=study.id, status=StudyStatus.COMPLETED, worker="dead")


def test_heartbeat_renews_the_lease_and_reports_cancellation(storage, study):
    with storage.session() as s:
        claimed = repo.studies.claim_next_study(s, worker="w")
    time.sleep(0.01)
    with storage.session() as s:
        repo.studies.request_cancel(s, study_id=study.id)
        beat = repo.studies.heartbeat(s, study_id=study.id, worker="w")
    assert beat.heartbeat_at > claimed.heartbeat_at
    assert beat.cancel_requested


def test_expired_study_with_cancel_request_is_cancelled_not_claimed(storage, study):
    with storage.session() as s:
        repo.studies.claim_next_study(s, worker="dead")
        repo.studies.request_cancel(s, study_id=study.id)
    _age_heartbeat(storage, study.id, 3600)
    with storage.session() as s:
        assert repo.studies.claim_next_study(s, worker="w2") is None
        assert repo.studies.get_study(s, study_id=study.id).status == StudyStatus.CANCELLED


def test_claim_respects_a_per_owner_limit(storage):
    with storage.session() as s:
        ada = repo.users.create_user(s, name="ada")
        bob = repo.users.create_user(s, name="bob")
        repo.studies.create_study(s, spec=StudySpec(name="a1"), owner_id=ada.id)
        repo.studies.create_study(s, spec=StudySpec(name="a2"), owner_id=ada.id)
        b1 = repo.studies.create_study(s, spec=StudySpec(name="b1"), owner_id=bob.id)
    claims = []
    for worker in ("w1", "w2", "w3"):
        with storage.session() as s:
            claims.append(repo.studies.claim_next_study(s, worker=worker, max_running_per_owner=1))
    assert [c.name if c else None for c in claims] == ["a1", "b1", None]
    assert claims[1].id == b1.id


def test_release_requeues_for_the_next_worker(storage, study):
    with storage.session() as s:
        repo.studies.claim_next_study(s, worker="w1")
        released = repo.studies.release_study(s, study_id=study.id, worker="w1")
        assert released.status == StudyStatus.QUEUED and released.claimed_by is None
        assert repo.studies.claim_next_study(s, worker="w2").id == study.id


def test_detail_reads_all_trials_and_curves(storage, study):
    with storage.session() as s:
        for i in range(3):
            trial = repo.trials.upsert_trial(s, study_id=study.id, key=f"t{i}", config=config(lr=10.0 ** -(i + 2)))
            repo.metrics.insert_metric_points(s, trial_id=trial.id, points=points(10 + i))
    with storage.session(readonly=True) as s:
        detail = repo.studies.get_study_detail(s, study_id=study.id)
        bare = repo.studies.get_study_detail(s, study_id=study.id, with_curves=False)
    assert [t.key for t in detail.trials] == ["t0", "t1", "t2"]
    assert [len(t.curve) for t in detail.trials] == [10, 11, 12]
    assert detail.trials[2].curve == points(12)
    assert [t.curve for t in bare.trials] == [[], [], []]


def test_delete_removes_the_study_with_everything_under_it(storage, study):
    with storage.session() as s:
        trial = repo.trials.upsert_trial(s, study_id=study.id, key="t", config=config())
        repo.metrics.insert_metric_points(s, trial_id=trial.id, points=points(5))
        repo.events.append_event(s, study_id=study.id, event=StudyEvent(kind=StudyEventKind.STARTED))
        repo.studies.delete_study(s, study_id=study.id)
    with storage.session() as s:
        assert repo.metrics.count_metric_points(s) == 0
        assert repo.trials.list_trials(s, study_id=study.id) == []
        with pytest.raises(NotFound):
            repo.studies.delete_study(s, study_id=study.id)


def test_fingerprint_ignores_the_seed(storage):
    with storage.session() as s:
        a = repo.studies.create_study(s, spec=StudySpec(task=TaskSpec(seed=1)))
        b = repo.studies.create_study(s, spec=StudySpec(task=TaskSpec(seed=2)))
    assert a.fingerprint == b.fingerprint


def test_trial_status_counts_toward_progress(storage, study):
    with storage.session() as s:
        t = repo.trials.upsert_trial(s, study_id=study.id, key="t", config=config())
        repo.trials.finish_trial(s, trial_id=t.id, result=TrialResult(status=TrialStatus.PRUNED))
        assert repo.studies.get_study(s, study_id=study.id).trials_finished == 1
