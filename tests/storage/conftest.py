"""The storage contract suite runs every test against SQLite and against a real PostgreSQL server.

Each test gets a fresh database: on SQLite a copy of a file migrated once per session, on PostgreSQL one
migrated database emptied before each test (creating a database there costs most of a second). The
migration tests ask for truly empty databases instead.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from storage_helpers import BACKENDS

from optforge.spec import StudyRecord, StudySpec
from optforge.storage import Storage, repo
from optforge.storage.models import Base


class Databases:
    """Fresh database URLs of one backend: ``empty()`` or ``migrated()``."""

    def empty(self) -> str:
        raise NotImplementedError

    def migrated(self) -> str:
        raise NotImplementedError


class SqliteDatabases(Databases):
    def __init__(self, root: Path) -> None:
        self.root = root
        self.counter = itertools.count()
        self.template = root / "template.db"
        Storage.open(f"sqlite:///{self.template}").close()  # closing the last connection checkpoints the WAL

    def empty(self) -> str:
        return f"sqlite:///{self.root / f'db_{next(self.counter)}.db'}"

    def migrated(self) -> str:
        path = self.root / f"db_{next(self.counter)}.db"
        shutil.copyfile(self.template, path)
        return f"sqlite:///{path}"


class PostgresDatabases(Databases):
    """Empty databases are created (CREATE DATABASE, under a second); the migrated one is shared and
    emptied with one TRUNCATE before each test, which takes milliseconds."""

    def __init__(self, url: str) -> None:
        from optforge.testing.postgres import create_database

        self.create = create_database
        self.url = url
        self.counter = itertools.count()
        self.shared = create_database(url, "optforge_contract")
        Storage.open(self.shared).close()

    def empty(self) -> str:
        return self.create(self.url, f"t_{next(self.counter)}")

    def migrated(self) -> str:
        tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
        with Storage.open(self.shared, migrate=False) as storage, storage.session() as s:
            s.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        return self.shared


@pytest.fixture(scope="session")
def sqlite_databases(tmp_path_factory: pytest.TempPathFactory) -> Databases:
    return SqliteDatabases(tmp_path_factory.mktemp("sqlite"))


@pytest.fixture(scope="session")
def postgresql_databases(postgres_url: str) -> Databases:
    return PostgresDatabases(postgres_url)


@pytest.fixture(params=BACKENDS)
def databases(request: pytest.FixtureRequest) -> Databases:
    """Fresh databases of each backend in turn (PostgreSQL starts only when a test asks for it)."""
    return request.getfixturevalue(f"{request.param}_databases")


@pytest.fixture
def storage(databases: Databases) -> Iterator[Storage]:
    """An open Storage on a fresh, migrated database."""
    with Storage.open(databases.migrated()) as opened:
        yield opened


@pytest.fixture
def study(storage: Storage) -> StudyRecord:
    """A queued study with default spec and no owner."""
    with storage.session() as s:
        return repo.studies.create_study(s, spec=StudySpec(name="fixture"))
