"""All of optforge's settings, from ``OPTFORGE_*`` environment variables (and ``RAY_ADDRESS``).

One pydantic-settings class and no module globals: the service gets its settings through
``create_app(settings)``, so tests build an app with their own database and limits.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/optforge`` (``~/.local/share/optforge``): where the SQLite database lives by default."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "optforge"


class Settings(BaseSettings):
    """Service and storage settings. Every field is an ``OPTFORGE_<NAME>`` environment variable."""

    model_config = SettingsConfigDict(env_prefix="OPTFORGE_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir, description="database, checkpoints, user datasets")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default: SQLite in data_dir")
    ray_address: str | None = Field(
        None,
        validation_alias=AliasChoices("OPTFORGE_RAY_ADDRESS", "RAY_ADDRESS"),
        description="an existing Ray cluster; default: start a local Ray",
    )
    ray_cpus: int | None = Field(
        None, ge=1, description="CPUs of a local Ray started by the service (default: all of this machine's)"
    )
    # Loopback by default: a server reachable from other machines must have API tokens (see service.auth).
    host: str = Field("127.0.0.1", description="address the API listens on; any but loopback needs API tokens")
    port: int = Field(8000, ge=1, le=65535, description="port the API listens on")
    allow_user_code: bool = Field(False, description="accept specs with model/data entry points")

    # --- limits on what one request may ask for (a request beyond them gets a 4xx naming the field) ---
    # One 2-core box trains ~1000 tiny trials an hour; beyond that a study is a job for a cluster, so an
    # operator raises these on purpose rather than a typo ("n_trials: 100000") filling the queue.
    max_trials: int = Field(1000, ge=1, description="largest search.n_trials a study may ask for")
    max_steps: int = Field(100_000, ge=1, description="largest task.steps (per trial) a study may ask for")
    max_width: int = Field(4096, ge=1, description="largest task.model.width (and proxy width) a study may ask for")
    max_active_studies_per_user: int = Field(
        20, ge=1, description="queued + running studies one user may have; the next submission gets 429"
    )
    # 1 MiB holds any real spec (a spec is a few KB; 100 initial_configs are ~50 KB) and keeps a flood cheap.
    max_body_bytes: int = Field(1_048_576, ge=1024, description="largest request body; larger ones get 413")
    # A spec nests 6 levels deep; 32 leaves room for user kwargs and stops recursion bombs before parsing.
    max_json_depth: int = Field(32, ge=4, description="deepest JSON nesting accepted in a request body")

    # --- auth ---
    # Token verdicts and the "any tokens at all?" answer are reused this long: polling clients then cost no
    # database read for auth, and a revoked token (or the first token created) takes effect within it.
    auth_cache_s: float = Field(5.0, ge=0, description="seconds a token check or the auth mode is remembered")
    # 600/min (10/s sustained) is far above what the SDK's polling needs (1-2/s) and stops a runaway loop.
    rate_limit_per_minute: int = Field(600, ge=1, description="requests per minute per API token")
    rate_limit_burst: int = Field(60, ge=1, description="requests a token may spend at once before the rate applies")

    # --- scheduler ---
    # Each study runs its trials on Ray; two at once keep a 2-core box busy without thrashing.
    max_running_studies: int = Field(2, ge=1, description="studies running at once, over all users")
    max_running_studies_per_user: int = Field(1, ge=1, description="studies of one user running at once")
    # The scheduler wakes at once on a submission; this interval only bounds how stale its view can get.
    scheduler_interval_s: float = Field(1.0, gt=0, description="seconds between scheduler passes")
    # A driver writes a heartbeat every heartbeat_interval_s; a study whose heartbeat is older than
    # lease_timeout_s belongs to a dead service and is resumed. 3 missed beats tolerate a slow database.
    heartbeat_interval_s: float = Field(5.0, gt=0, description="seconds between a running study's heartbeats")
    lease_timeout_s: float = Field(20.0, gt=0, description="a running study with an older heartbeat is resumed")
    # Cancel must stop trials "within seconds": the driver reads the cancel flag this often.
    cancel_poll_interval_s: float = Field(1.0, gt=0, description="seconds between a driver's cancel-flag reads")
    # A study whose driver keeps dying (a trial that crashes the worker) must not be resumed forever.
    max_study_attempts: int = Field(3, ge=1, description="times a study is started before it is marked failed")
    # The live stream reads the event log from the database (it works across processes); 0.5 s is
    # below what a person notices and costs one indexed query per stream per interval.
    stream_poll_interval_s: float = Field(0.5, gt=0, description="seconds between event-log reads of a live stream")

    def resolved_database_url(self) -> str:
        """The configured database URL, or the SQLite file inside ``data_dir``."""
        return self.database_url or f"sqlite:///{self.data_dir / 'optforge.db'}"
