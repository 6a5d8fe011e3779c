"""Everything one running app holds: settings, storage, auth, rate limiter and scheduler.

It lives on ``app.state.optforge`` (set by ``create_app``), never in a module global, so two apps in one
process (tests) never share a database or a queue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from optforge.service.auth import Authenticator
from optforge.service.ratelimit import RateLimiter
from optforge.service.scheduler import Scheduler
from optforge.service.summaries import CoalescedReads, StudySummaries
from optforge.settings import Settings
from optforge.storage.database import Storage


@dataclass
class ServiceState:
    settings: Settings
    storage: Storage
    database_url: str = field(repr=False)  # with its password: handed to study drivers, never logged
    auth: Authenticator
    limiter: RateLimiter
    scheduler: Scheduler
    summaries: StudySummaries = field(default_factory=StudySummaries)
    # GET /studies/{id}: per study id, (owner id, the StudyPublic JSON), or None for no such study.
    status_reads: CoalescedReads[int, tuple[int | None, bytes] | None] = field(default_factory=CoalescedReads)
    db_limiter: Any = None  # anyio.CapacityLimiter for database work from async routes (start_service's)
    auth_mode: str = "token"
    owns_storage: bool = True
    started_ray: bool = False
