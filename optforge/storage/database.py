"""``Storage``: one database (engine + unit-of-work factory), created by whoever needs it. No module globals.

storage = Storage.open()                      # SQLite in Settings().data_dir, migrated to the latest schema
storage = Storage.open("postgresql+psycopg://user:pw@host/optforge")
with storage.session() as s:                  # one unit of work: commits on success, rolls back on error
    study = repo.studies.create_study(s, spec=spec)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from optforge.storage.errors import StorageUnavailable, translate

# How long a SQLite writer waits for another writer's lock before giving up (StorageUnavailable). Long
# enough to ride out a burst of concurrent trial reports, short enough that a stuck lock surfaces.
DEFAULT_BUSY_TIMEOUT_S = 30.0
_READONLY = "optforge_readonly"


class Storage:
    """A database: the SQLAlchemy engine and the unit-of-work factory bound to it.

    Create it with ``Storage.open(url)``; close it with ``close()`` (or use it as a context manager).
    Repository functions in ``optforge.storage.repo`` take the session that ``session()`` yields.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._readonly_sessions = sessionmaker(engine.execution_options(**{_READONLY: True}), expire_on_commit=False)
        self._optuna: Any = None  # optuna RDBStorage, created on first use by optuna_mirror

    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        migrate: bool = True,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
        pool_size: int = 5,
        echo: bool = False,
    ) -> Storage:
        """Connect to ``url`` (default: ``Settings().resolved_database_url()``, a SQLite file) and, unless
        ``migrate=False``, bring its schema to the latest version (a no-op when it already is).

        SQLite runs in WAL mode with foreign keys on, and writers wait up to ``busy_timeout_s`` for the
        write lock. PostgreSQL connections are checked before use, so a restarted server costs one
        failed unit of work at most.
        """
        if url is None:
            from optforge.settings import Settings  # pydantic-settings only when no URL is given

            url = Settings().resolved_database_url()
        storage = cls(create_storage_engine(url, busy_timeout_s=busy_timeout_s, pool_size=pool_size, echo=echo))
        if migrate:
            from optforge.storage.migrate import upgrade

            try:
                upgrade(storage.engine)
            except BaseException:
                storage.close()
                raise
        return storage

    @property
    def url(self) -> str:
        """The database URL with any password masked."""
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    @contextlib.contextmanager
    def session(self, *, readonly: bool = False) -> Iterator[Session]:
        """One unit of work. Commits when the block ends normally, rolls back when it raises.

        ``readonly=True`` never commits and, on SQLite, takes no write lock (a plain deferred BEGIN), so
        readers such as the live event stream never wait for writers. Database errors leave as
        ``optforge.storage.errors`` exceptions.
        """
        factory = self._readonly_sessions if readonly else self._sessions
        session = factory()
        try:
            yield session
            if readonly:
                session.rollback()
            else:
                session.commit()
        except sa_exc.SQLAlchemyError as error:
            _rollback_quietly(session)
            raise translate(error) from error
        except BaseException:
            _rollback_quietly(session)
            raise
        finally:
            session.close()

    def ping(self) -> None:
        """Raise StorageUnavailable unless the database answers a trivial query (for health checks)."""
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except sa_exc.SQLAlchemyError as error:
            raise StorageUnavailable(f"database {self.url} does not answer: {error.orig or error}") from error

    def close(self) -> None:
        """Close every pooled connection (Optuna's too). The object can still open new ones afterwards."""
        if self._optuna is not None:
            self._optuna.engine.dispose()
            self._optuna = None
        self.engine.dispose()

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Storage({self.url!r})"


def create_storage_engine(
    url: str, *, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S, pool_size: int = 5, echo: bool = False
) -> Engine:
    """An engine configured for optforge: SQLite pragmas and write locking, or PostgreSQL pooling."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, busy_timeout_s=busy_timeout_s, echo=echo)
    if parsed.get_backend_name() == "postgresql":
        return create_engine(
            url,
            pool_pre_ping=True,  # a pooled connection may predate a server restart
            pool_size=pool_size,
            max_overflow=2 * pool_size,
            connect_args={"connect_timeout": 10},
            echo=echo,
        )
    raise ValueError(
        f"database_url {parsed.render_as_string(hide_password=True)!r}: optforge supports 'sqlite:///path' and "
        f"'postgresql+psycopg://user:password@host/db'"
    )


def _sqlite_engine(url: str, *, busy_timeout_s: float, echo: bool) -> Engine:
    parsed = make_url(url)
    database = parsed.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    if not in_memory:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {"connect_args": {"timeout": busy_timeout_s}}
    if in_memory:  # one shared connection, or every session would see its own empty database
        kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    engine = create_engine(url, echo=echo, **kwargs)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Autocommit at the driver level: SQLAlchemy's "begin" hook below decides how transactions start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not in_memory:
            # WAL: readers never block the writer and the writer never blocks readers.
            cursor.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable across application crashes in WAL mode; FULL only adds power-loss safety
            # for the last transactions, at an fsync per commit.
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # BEGIN IMMEDIATE takes the write lock up front, so the busy timeout applies. A deferred transaction
        # that reads and then writes fails at once with "database is locked" when another writer got in
        # between, whatever the timeout.
        readonly = connection.get_execution_options().get(_READONLY, False)
        connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    return engine


def _rollback_quietly(session: Session) -> None:
    # The connection may be the thing that failed; the original error is the one worth raising.
    with contextlib.suppress(sa_exc.SQLAlchemyError):
        session.rollback()
