"""What ``Study`` and ``AsyncStudy`` share: the last snapshot of the study and what it says, without I/O."""

from __future__ import annotations

import time
from dataclasses import dataclass

from optforge.client.exceptions import StudyFailed, WaitTimeout
from optforge.spec import StudySpec, StudyStatus
from optforge.spec._api import BestSoFar, StudyProgress, StudyPublic

# Polling once a second looks live to a person and costs the service one indexed read per waiting client.
DEFAULT_POLL_INTERVAL = 1.0


class StudyView:
    """A study as last seen (``data``, a ``StudyPublic``); ``refresh()`` on the subclasses reads it again."""

    data: StudyPublic

    @property
    def id(self) -> int:
        return self.data.id

    @property
    def name(self) -> str:
        return self.data.name

    @property
    def status(self) -> StudyStatus:
        return self.data.status

    @property
    def spec(self) -> StudySpec:
        return self.data.spec

    @property
    def progress(self) -> StudyProgress:
        return self.data.progress

    @property
    def best_so_far(self) -> BestSoFar | None:
        """The best finished trial as of the last refresh (``best()`` fetches the final configuration)."""
        return self.data.best

    @property
    def finished(self) -> bool:
        return self.data.status.finished

    def __repr__(self) -> str:
        p = self.data.progress
        return (
            f"<{type(self).__name__} {self.id} {self.name!r} {self.status.value} "
            f"{p.trials_finished}/{p.trials_total} trials>"
        )


@dataclass
class WaitClock:
    """The deadline and poll interval of one ``wait()``; how long to sleep next, or WaitTimeout."""

    timeout: float | None
    poll_interval: float

    def __post_init__(self) -> None:
        if self.poll_interval <= 0:
            raise ValueError(f"poll_interval must be positive, got {self.poll_interval}")
        self.deadline = None if self.timeout is None else time.monotonic() + self.timeout

    def next_sleep(self, study: StudyView) -> float:
        if self.deadline is None:
            return self.poll_interval
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise WaitTimeout(
                f"study {study.id} is still {study.status.value} after {self.timeout} s "
                f"({study.progress.trials_finished}/{study.progress.trials_total} trials); it keeps running"
            )
        return min(self.poll_interval, remaining)


def final_check(study: StudyView, raise_on_failure: bool) -> None:
    if raise_on_failure and study.status == StudyStatus.FAILED:
        raise StudyFailed(study)
