"""Migrations create the schema on an empty database, re-run as no-ops, and match the models exactly."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from optforge.storage import MigrationError, Storage
from optforge.storage.migrate import VERSION_TABLE, current_revision, head_revision, is_optforge_name
from optforge.storage.models import Base


def test_open_migrates_an_empty_database_to_head(databases):
    url = databases.empty()
    with Storage.open(url) as storage:
        tables = set(inspect(storage.engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
        assert VERSION_TABLE in tables
        assert current_revision(storage.engine) == head_revision()


def test_reopening_a_migrated_database_changes_nothing(databases):
    url = databases.empty()
    Storage.open(url).close()
    with Storage.open(url) as storage, storage.engine.connect() as connection:
        versions = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    assert versions == [head_revision()]


def test_migrated_schema_matches_the_models(databases):
    with Storage.open(databases.empty()) as storage, storage.engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "version_table": VERSION_TABLE,
                "include_name": lambda name, type_, _: type_ != "table" or is_optforge_name(name),
            },
        )
        assert compare_metadata(context, Base.metadata) == []


def test_migrate_false_leaves_the_database_empty(databases):
    with Storage.open(databases.empty(), migrate=False) as storage:
        assert current_revision(storage.engine) is None
        assert not any(is_optforge_name(t) for t in inspect(storage.engine).get_table_names())


def test_database_from_a_newer_optforge_is_refused_with_advice(databases):
    url = databases.empty()
    Storage.open(url).close()
    with Storage.open(url, migrate=False) as storage, storage.session() as s:
        s.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '9999_future'"))
    with pytest.raises(MigrationError, match="newer optforge"):
        Storage.open(url)


def test_sqlite_database_runs_in_wal_mode_with_foreign_keys(tmp_path):
    with Storage.open(f"sqlite:///{tmp_path}/sub/dir/optforge.db") as storage, storage.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() > 0


def test_default_url_is_sqlite_in_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("OPTFORGE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("OPTFORGE_DATABASE_URL", raising=False)
    with Storage.open() as storage:
        assert storage.dialect == "sqlite"
        assert (tmp_path / "data" / "optforge.db").exists()


def test_unsupported_url_names_the_setting_and_the_choices():
    with pytest.raises(ValueError, match=r"database_url.*sqlite.*postgresql"):
        Storage.open("mysql://localhost/optforge")
