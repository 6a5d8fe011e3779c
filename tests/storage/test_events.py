"""Study events get ids 1, 2, 3... per study, so a live stream resumes after Last-Event-ID."""

from __future__ import annotations

import pytest

from optforge.spec import StudyEvent, StudyEventKind, StudySpec
from optforge.storage import NotFound, repo


def _events(n: int, kind: StudyEventKind = StudyEventKind.TRIAL_RESULT) -> list[StudyEvent]:
    return [StudyEvent(kind=kind, trial_id=f"t{i}", data={"i": i, "loss": 1.0 / (i + 1)}) for i in range(n)]


def test_events_round_trip_with_ids_counting_per_study(storage, study):
    with storage.session() as s:
        other = repo.studies.create_study(s, spec=StudySpec(name="other"))
        first = repo.events.append_events(s, study_id=study.id, events=_events(3))
        repo.events.append_event(s, study_id=other.id, event=StudyEvent(kind=StudyEventKind.STARTED))
        later = repo.events.append_event(s, study_id=study.id, event=StudyEvent(kind=StudyEventKind.FINISHED))
    with storage.session(readonly=True) as s:
        stored = repo.events.list_events(s, study_id=study.id)
        others = repo.events.list_events(s, study_id=other.id)
    assert [e.id for e in stored] == [1, 2, 3, 4]
    assert stored[:3] == first and stored[3] == later
    assert [(e.kind, e.trial_id, e.data) for e in stored[:3]] == [(e.kind, e.trial_id, e.data) for e in _events(3)]
    assert [e.id for e in others] == [1]


def test_events_after_an_id_resume_a_stream(storage, study):
    with storage.session() as s:
        repo.events.append_events(s, study_id=study.id, events=_events(10))
    with storage.session(readonly=True) as s:
        assert [e.id for e in repo.events.list_events(s, study_id=study.id, after_id=7)] == [8, 9, 10]
        assert [e.id for e in repo.events.list_events(s, study_id=study.id, after_id=2, limit=3)] == [3, 4, 5]
        assert repo.events.list_events(s, study_id=study.id, after_id=10) == []


def test_non_finite_numbers_in_event_data_are_stored_as_null(storage, study):
    event = StudyEvent(kind=StudyEventKind.TRIAL_FINISHED, data={"loss": float("nan"), "nested": [float("inf"), 1.0]})
    with storage.session() as s:
        stored = repo.events.append_event(s, study_id=study.id, event=event)
    with storage.session(readonly=True) as s:
        assert repo.events.list_events(s, study_id=study.id)[0].data == {"loss": None, "nested": [None, 1.0]}
    assert stored.data == {"loss": None, "nested": [None, 1.0]}


def test_events_of_a_missing_study_are_not_found(storage):
    with storage.session() as s, pytest.raises(NotFound, match="study"):
        repo.events.append_events(s, study_id=404, events=_events(1))
