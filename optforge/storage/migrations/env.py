"""Alembic environment: runs on the connection ``optforge.storage.migrate`` hands over, never from an ini file.

Only optforge's own tables are compared and migrated: Optuna's tables share the database and are
Optuna's business (it migrates them with its own Alembic version table).
"""

from __future__ import annotations

from typing import Any

from alembic import context

from optforge.storage.migrate import VERSION_TABLE, is_optforge_name
from optforge.storage.models import Base


def _include_name(name: str | None, type_: str, _parent_names: Any) -> bool:
    return type_ != "table" or is_optforge_name(name)


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run optforge migrations through optforge.storage.migrate, which passes a connection")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        include_name=_include_name,
        render_as_batch=True,  # SQLite can only ALTER TABLE by copying it; batch mode does that
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("optforge migrations run online only: use optforge.storage.migrate.upgrade(engine)")
run_migrations_online()
