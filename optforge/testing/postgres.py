"""A throwaway PostgreSQL server for tests and benchmarks, from the distribution's own binaries.

    with PostgresServer() as server:        # initdb + pg_ctl start in a temporary directory
        url = server.create_database()     # "postgresql+psycopg://postgres@127.0.0.1:<port>/db_1"
        server.restart()                   # e.g. to test that the service survives it
    # stopped, and its directory deleted

It listens on a free loopback port (and a unix socket inside its directory), trusts local connections,
and by default trades durability against OS crashes for speed (``fsync=off``): it exists for seconds.
``initdb`` refuses to run as root, so as root every binary runs as the ``postgres`` system user
(``runuser``), in a directory that user owns.

``postgres_url_for_tests()`` is what the test suite uses: ``OPTFORGE_TEST_POSTGRES_URL`` if set (an
existing server), otherwise a ``PostgresServer``; ``PostgresUnavailable`` says why neither is possible.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

ENV_URL = "OPTFORGE_TEST_POSTGRES_URL"
ENV_REQUIRE = "OPTFORGE_REQUIRE_POSTGRES"
SYSTEM_USER = "postgres"  # the account Debian/Ubuntu's postgresql package creates
SUPERUSER = "postgres"  # the database superuser initdb creates


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server can be started here; the message says what to install or set."""


def find_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` with initdb, or the directory of initdb on PATH."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return Path(candidates[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One PostgreSQL server in its own temporary directory. ``start()``/``stop()``, or use ``with``.

    ``durable=False`` (default) turns fsync and full-page writes off: much faster, and only an operating
    system crash could lose data (a server crash cannot: commits still reach the WAL before they return).
    Use ``durable=True`` for benchmarks meant to reflect production.
    """

    def __init__(self, *, bin_dir: Path | None = None, durable: bool = False, database: str = "optforge") -> None:
        found = bin_dir or find_bin_dir()
        if found is None or not (found / "initdb").exists():
            where = bin_dir or "/usr/lib/postgresql/*/bin and on PATH"
            raise PostgresUnavailable(
                f"PostgreSQL's initdb/pg_ctl were not found (looked in {where}): "
                "install the distribution's 'postgresql' package (scripts/install-system-deps.sh does), or set "
                f"{ENV_URL} to an existing server's postgresql+psycopg:// URL"
            )
        self.bin_dir = found
        self.durable = durable
        self.database = database
        self.port = 0
        self.root: Path | None = None
        self._as_user: list[str] = []
        self._databases = 0
        self._finalizer: weakref.finalize | None = None

    # -- life cycle ---------------------------------------------------------------------------------------

    def start(self) -> PostgresServer:
        """initdb, start, and create ``self.database``. Returns self."""
        self.root = Path(tempfile.mkdtemp(prefix="optforge-pg-"))
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam(SYSTEM_USER)
            except KeyError:
                raise PostgresUnavailable(
                    f"running as root, and initdb refuses root: create the '{SYSTEM_USER}' system user "
                    "(the postgresql package does) or run the tests as a normal user"
                ) from None
            os.chown(self.root, account.pw_uid, account.pw_gid)
            self._as_user = ["runuser", "-u", SYSTEM_USER, "--"]
        # Stop the server even if the caller forgets to (or the interpreter exits first).
        self._finalizer = weakref.finalize(self, _stop_and_remove, self._pg_ctl_base(), self.root)
        try:
            self._run("initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-sync")
            for attempt in range(3):  # the free port may be taken between choosing it and binding it
                self.port = _free_port()
                try:
                    self._pg_ctl("start", "-w", "-t", "30", "-l", str(self.root / "server.log"), "-o", self._options())
                    break
                except PostgresUnavailable:
                    if attempt == 2:
                        raise
            create_database(self.url_for("postgres"), self.database)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server and delete its directory. Safe to call twice."""
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer = None

    def restart(self, *, mode: Literal["fast", "immediate"] = "fast") -> None:
        """Stop and start the server on the same port and data: open connections break, committed data stays.

        ``mode="fast"`` is a clean shutdown; ``"immediate"`` kills the server like a crash (it then recovers
        from its WAL on start).
        """
        log = str(self._root / "server.log")
        self._pg_ctl("restart", "-w", "-t", "30", "-m", mode, "-l", log, "-o", self._options())

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- databases ----------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """SQLAlchemy URL of ``self.database``."""
        return self.url_for(self.database)

    def url_for(self, database: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None, *, template: str | None = None) -> str:
        """A new database (``db_<n>`` unless named; a copy of ``template`` if given); returns its URL.
        Cheap (tens of milliseconds), so tests can each have their own."""
        self._databases += 1
        return create_database(self.url, name or f"db_{self._databases}", template=template)

    # -- internals ----------------------------------------------------------------------------------------

    @property
    def _root(self) -> Path:
        if self.root is None:
            raise RuntimeError("the PostgreSQL server is not started; call start() or use 'with PostgresServer()'")
        return self.root

    @property
    def data_dir(self) -> Path:
        return self._root / "data"

    def _options(self) -> str:
        options = [f"-p {self.port}", f"-k {self._root}", "-c listen_addresses=127.0.0.1", "-c max_connections=100"]
        if not self.durable:
            # Not synchronous_commit=off: that acknowledges commits before their WAL is written, so a
            # server crash (restart(mode="immediate")) would lose them. Without fsync only an OS crash can.
            options += ["-c fsync=off", "-c full_page_writes=off"]
        return " ".join(options)

    def _pg_ctl_base(self) -> list[str]:
        return [*self._as_user, str(self.bin_dir / "pg_ctl")]

    def _pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.data_dir), *args)

    def _run(self, program: str, *args: str) -> None:
        command = [*self._as_user, str(self.bin_dir / program), *args]
        done = subprocess.run(command, capture_output=True, text=True, cwd=self._root, check=False)
        if done.returncode != 0:
            log = self._root / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise PostgresUnavailable(f"{program} failed ({done.returncode}): {done.stderr.strip()}\n{tail}")


def create_database(url: str, name: str, *, template: str | None = None) -> str:
    """Create database ``name`` on the server of ``url`` (a postgresql+psycopg URL whose user may create
    databases), optionally as a copy of ``template``; returns the new database's URL."""
    import psycopg  # only this helper needs the driver at import time
    from psycopg import sql

    parts = urlsplit(url)
    # psycopg takes a libpq URI: the same URL without SQLAlchemy's "+psycopg", on the maintenance database.
    conninfo = urlunsplit(("postgresql", parts.netloc, "/postgres", parts.query, ""))
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        statement = sql.SQL("{} TEMPLATE {}").format(statement, sql.Identifier(template))
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(statement)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


def _stop_and_remove(pg_ctl: list[str], root: Path) -> None:
    data = root / "data"
    if (data / "postmaster.pid").exists():
        subprocess.run([*pg_ctl, "-D", str(data), "stop", "-m", "immediate", "-w"], capture_output=True, check=False)
    shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def postgres_url_for_tests() -> Iterator[tuple[str, PostgresServer | None]]:
    """``(url, server)`` for a test session: ``OPTFORGE_TEST_POSTGRES_URL`` (server None: it is not ours to
    restart), else a fresh ``PostgresServer``. Raises PostgresUnavailable when neither works."""
    external = os.environ.get(ENV_URL)
    if external:
        yield external, None
        return
    with PostgresServer() as server:
        yield server.url, server


def postgres_required() -> bool:
    """Whether a missing PostgreSQL must fail the tests instead of skipping them (CI sets it)."""
    return os.environ.get(ENV_REQUIRE, "") not in ("", "0", "false", "no")
