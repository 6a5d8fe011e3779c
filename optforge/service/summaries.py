"""Per-study trial summaries (running trials, best trial so far), recomputed only when the study changed.

``GET /studies/{id}`` is what every client polls. Reading all of a study's trials on every poll costs
O(trials); instead the summary is cached under the study row's ``updated_at`` (with its finished count and
status), which storage advances on every write to the study's trials, events or counters. A poll of an
unchanged study therefore costs one indexed read of the study row.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from optforge.service.presenters import best_trial
from optforge.spec import StudyRecord, StudyStatus, TrialRecord, TrialStatus
from optforge.storage.repo import trials as trials_repo
from optforge.storage.repo import users as users_repo

# Summaries kept: far more than the studies anyone watches at once; each is two small objects.
MAX_STUDIES = 4096


class StudySummaries:
    """``summary(session, study) -> (running trials, best trial)``, cached per study version."""

    def __init__(self, max_studies: int = MAX_STUDIES) -> None:
        self.max_studies = max_studies
        self._cache: OrderedDict[int, tuple[tuple[Any, ...], tuple[int, TrialRecord | None]]] = OrderedDict()
        self._names: dict[int, str] = {}
        self._lock = threading.Lock()

    def summary(self, session: Any, study: StudyRecord) -> tuple[int, TrialRecord | None]:
        if study.status == StudyStatus.QUEUED and study.trials_finished == 0:
            return 0, None
        version = (study.updated_at, study.trials_finished, study.status)
        with self._lock:
            hit = self._cache.get(study.id)
            if hit is not None and hit[0] == version:
                self._cache.move_to_end(study.id)
                return hit[1]
        trials = trials_repo.list_trials(session, study_id=study.id)
        value = (sum(1 for t in trials if t.status == TrialStatus.RUNNING), best_trial(trials, study.spec.task.mode))
        with self._lock:
            self._cache[study.id] = (version, value)
            self._cache.move_to_end(study.id)
            while len(self._cache) > self.max_studies:
                self._cache.popitem(last=False)
        return value

    def owner_name(self, session: Any, owner_id: int | None) -> str | None:
        """A user's name (names never change, so it is read once per user)."""
        if owner_id is None:
            return None
        name = self._names.get(owner_id)
        if name is None:
            self._names.update({u.id: u.name for u in users_repo.list_users(session)})
            name = self._names.get(owner_id)
        return name
