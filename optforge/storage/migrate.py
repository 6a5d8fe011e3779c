"""Schema migrations, run programmatically with Alembic (no alembic.ini).

``Storage.open`` calls ``upgrade`` on every start; it is a no-op on an up-to-date database, and safe
when several processes start at once (PostgreSQL: an advisory lock; SQLite: the write lock).

For developers, after changing ``models.py``::

    python -m optforge.storage.migrate revision "add trial tags"

writes a new revision under ``optforge/storage/migrations/versions`` from the difference between the
models and a database at the current head. Read it before committing it.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text
from sqlalchemy import exc as sa_exc

from optforge.storage.errors import MigrationError, translate

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Not Alembic's default "alembic_version": Optuna keeps its own Alembic version table in the same database.
VERSION_TABLE = "optforge_alembic_version"
TABLE_PREFIX = "optforge_"
# pg_advisory_xact_lock key that serializes concurrent migrations (an arbitrary constant: "optf" in ASCII).
_MIGRATION_LOCK_KEY = 0x6F707466


def is_optforge_name(name: str | None) -> bool:
    """Whether a table belongs to optforge (and not to Optuna, which shares the database)."""
    return bool(name) and str(name).startswith(TABLE_PREFIX)


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at the packaged migrations; ``connection`` is what env.py migrates."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision shipped with this optforge."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, f"no migrations found in {MIGRATIONS_DIR}"
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None for a database optforge never migrated."""
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).get_current_revision()
    except sa_exc.SQLAlchemyError as error:
        raise translate(error) from error


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``. Idempotent; raises MigrationError for a database newer than this code."""
    scripts = ScriptDirectory.from_config(alembic_config())
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
            context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
            current = context.get_current_revision()
            target = scripts.get_current_head() if revision == "head" else revision
            if current == target:
                return
            if current is not None and _unknown(scripts, current):
                raise MigrationError(
                    f"the database is at schema revision {current!r}, which this optforge does not know: it was "
                    f"written by a newer optforge. Upgrade optforge, or point database_url at another database."
                )
            command.upgrade(alembic_config(connection), revision)
    except sa_exc.SQLAlchemyError as error:
        raise translate(error) from error


def _unknown(scripts: ScriptDirectory, revision: str) -> bool:
    try:
        return scripts.get_revision(revision) is None
    except Exception:  # alembic raises CommandError/ResolutionError subclasses for unknown ids
        return True


def _new_revision(message: str) -> None:
    from optforge.storage.database import create_storage_engine

    with tempfile.TemporaryDirectory() as tmp:
        engine = create_storage_engine(f"sqlite:///{tmp}/head.db")
        upgrade(engine)
        # Sequential, readable revision ids: 0001, 0002...
        rev_id = f"{int(head_revision().split('_')[0]) + 1:04d}"
        with engine.begin() as connection:
            command.revision(alembic_config(connection), message=message, autogenerate=True, rev_id=rev_id)
        engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m optforge.storage.migrate", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rev = sub.add_parser("revision", help="write a new revision from the difference between models and head")
    rev.add_argument("message")
    up = sub.add_parser("upgrade", help="migrate a database to the latest schema")
    up.add_argument("url", help="SQLAlchemy URL, e.g. sqlite:///optforge.db")
    args = parser.parse_args(argv)
    if args.command == "revision":
        _new_revision(args.message)
    else:
        from optforge.storage.database import create_storage_engine

        engine = create_storage_engine(args.url)
        upgrade(engine)
        engine.dispose()
        print(f"{engine.url.render_as_string(hide_password=True)} is at revision {head_revision()}")


if __name__ == "__main__":
    main()
