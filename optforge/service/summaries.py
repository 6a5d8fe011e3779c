"""What makes ``GET /studies/{id}``, the request every client polls, cheap.

- ``StudySummaries``: per-study trial summaries (running trials, best trial so far), recomputed only when
  the study changed, and then with two indexed queries (a count, and the best row), never a read of all
  its trials. The summary is cached under the study row's ``updated_at`` (with its finished count and
  status), which storage advances on every write to the study's trials, events or counters, so a poll of
  an unchanged study costs one indexed read of the study row.
- ``CoalescedReads``: polls of one study that arrive together share that one read (and its JSON
  encoding), instead of each taking a database thread. Under 50 pollers this is what keeps a burst of
  polls (after the service was descheduled for a moment) from queueing behind each other's reads.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

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
        value = (
            trials_repo.count_trials(session, study_id=study.id, status=TrialStatus.RUNNING),
            trials_repo.best_trial(session, study_id=study.id, mode=study.spec.task.mode),
        )
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


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class CoalescedReads(Generic[K, V]):
    """``await reads.read(key, fetch)``: ``fetch()``'s value, with concurrent callers of one key sharing a call.

    A caller never gets a value older than its own arrival: it joins a fetch that has not started yet, or
    else queues the next one, which starts when the fetch in flight ends. So at most one fetch per key runs
    at a time, one more waits, and every caller that arrives meanwhile shares the waiting one. A result is
    never kept after its fetch: nothing is cached, and a write the caller saw committed is always visible.
    A caller that goes away (client disconnect) cancels only its own wait, never the shared fetch. An error
    raised by ``fetch`` reaches every caller that shared it.

    For one event loop (asyncio); no locks, since only the loop's thread touches it.
    """

    def __init__(self) -> None:
        self._waiting: dict[K, asyncio.Task[V]] = {}  # per key: the fetch not started yet, that arrivals join
        self._latest: dict[K, asyncio.Task[V]] = {}  # per key: the last fetch scheduled, that the next one follows

    async def read(self, key: K, fetch: Callable[[], Awaitable[V]]) -> V:
        task = self._waiting.get(key)
        if task is None:
            task = asyncio.ensure_future(self._run(key, self._latest.get(key), fetch))
            self._waiting[key] = self._latest[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))
        return await asyncio.shield(task)

    async def _run(self, key: K, previous: asyncio.Task[V] | None, fetch: Callable[[], Awaitable[V]]) -> V:
        if previous is not None and not previous.done():
            await asyncio.wait([previous])  # one fetch per key at a time; callers keep joining this one meanwhile
        if self._waiting.get(key) is asyncio.current_task():
            del self._waiting[key]  # starting now: later arrivals must not share a read that began before them
        return await fetch()

    def _forget(self, key: K, task: asyncio.Task[V]) -> None:
        if self._latest.get(key) is task:
            del self._latest[key]
        if self._waiting.get(key) is task:  # cancelled before it started
            del self._waiting[key]
        if not task.cancelled():
            task.exception()  # retrieved here, so a failure whose callers all left is not logged as unhandled
