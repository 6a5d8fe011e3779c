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
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    allow_user_code: bool = Field(False, description="accept specs with model/data entry points")

    def resolved_database_url(self) -> str:
        """The configured database URL, or the SQLite file inside ``data_dir``."""
        return self.database_url or f"sqlite:///{self.data_dir / 'optforge.db'}"
