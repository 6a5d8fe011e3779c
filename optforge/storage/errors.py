"""The exceptions ``optforge.storage`` raises. Callers never see a SQLAlchemy or driver exception.

Exception tree::

    StorageError                 any storage failure
    ├── NotFound                 a row that the call names does not exist           → HTTP 404
    ├── Conflict                 a unique key is taken, or the row moved on          → HTTP 409
    │   ├── InvalidTransition    a status change the life cycle does not allow
    │   └── LeaseLost            another worker holds the study's lease now
    ├── StorageUnavailable       the database cannot be reached or is busy; retry   → HTTP 503
    └── MigrationError           the schema cannot be brought to this version of optforge

``StorageUnavailable`` is the only transient one: the same call can succeed a moment later (a restarted
PostgreSQL server, a SQLite file locked for longer than the busy timeout). The engine re-checks pooled
connections before use, so the next unit of work after an outage gets a fresh connection.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from sqlalchemy import exc as sa_exc

P = ParamSpec("P")
R = TypeVar("R")


class StorageError(Exception):
    """Base of every storage error."""


class NotFound(StorageError, LookupError):
    """No ``resource`` with this ``key``. The message names both."""

    def __init__(self, resource: str, key: object) -> None:
        self.resource = resource
        self.key = key
        super().__init__(f"no {resource} with {key}")


class Conflict(StorageError):
    """The write contradicts what is stored: a duplicate unique key, or a row changed by someone else."""


class InvalidTransition(Conflict):
    """A status change that the life cycle forbids, e.g. a completed trial back to running."""

    def __init__(self, resource: str, key: object, current: str, requested: str) -> None:
        self.resource = resource
        self.current = current
        self.requested = requested
        super().__init__(f"{resource} {key} is {current!r} and cannot become {requested!r}")


class LeaseLost(Conflict):
    """The worker no longer holds the study: its lease expired and another worker claimed it."""


class StorageUnavailable(StorageError):
    """The database is unreachable or busy. Transient: retry the whole unit of work."""


class MigrationError(StorageError):
    """The database schema cannot be brought to the version this optforge needs."""


_FOREIGN_KEY_SQLSTATE = "23503"


def translate(error: sa_exc.SQLAlchemyError) -> StorageError:
    """The optforge exception for a SQLAlchemy/driver exception (the original stays as ``__cause__``)."""
    if isinstance(error, sa_exc.IntegrityError):
        sqlstate = getattr(error.orig, "sqlstate", None)
        if sqlstate == _FOREIGN_KEY_SQLSTATE or "FOREIGN KEY constraint failed" in str(error.orig):
            return NotFound("referenced row", _first_line(error.orig))
        return Conflict(f"already stored or constraint violated: {_first_line(error.orig)}")
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return StorageUnavailable(f"database connection lost: {_first_line(error.orig)}")
    if isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)):
        # OperationalError covers "server closed the connection", "could not connect" and SQLite's
        # "database is locked" after the busy timeout: all of them pass when the database is back.
        return StorageUnavailable(f"database unavailable: {_first_line(getattr(error, 'orig', error))}")
    return StorageError(f"database error: {_first_line(getattr(error, 'orig', error))}")


def translating(func: Callable[P, R]) -> Callable[P, R]:
    """Decorate a repository function so it raises optforge's errors instead of SQLAlchemy's."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except sa_exc.SQLAlchemyError as error:
            raise translate(error) from error

    return wrapper


def _first_line(error: object) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
