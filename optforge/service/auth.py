"""Who is calling: bearer API tokens, or open mode on a loopback address with no tokens at all.

- Tokens exist (any user has an unrevoked, unexpired one): every ``/api`` request needs
  ``Authorization: Bearer of_...``; a user sees only their own studies, an admin sees all.
- No tokens and bound to loopback: *open mode*. Every caller is the same anonymous admin; the log says so
  at start. Creating the first token (``optforge token create``) switches a running server to token mode
  within ``Settings.auth_cache_s``.
- No tokens and bound to any other address: the server refuses to start (``OpenModeRefused``).

Tokens are checked by ``optforge.storage`` (SHA-256 digests compared with ``hmac.compare_digest``); the
secret is never logged: log lines name a token only by its user.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import threading
import time
from dataclasses import dataclass

from optforge.storage import Storage
from optforge.storage.repo import users as users_repo

log = logging.getLogger("optforge.service")

# Verdicts kept at most (bad tokens included, so a flood of forged ones cannot grow memory without bound).
TOKEN_CACHE_MAX = 10_000


class OpenModeRefused(RuntimeError):
    """No API token exists and the server would listen beyond loopback: anyone could submit work."""


@dataclass(frozen=True)
class Principal:
    """The caller. ``user_id`` None is the anonymous caller of open mode (who sees everything)."""

    user_id: int | None
    name: str
    is_admin: bool

    @property
    def rate_key(self) -> str:
        return f"user:{self.user_id}" if self.user_id is not None else "anonymous"

    def owns(self, owner_id: int | None) -> bool:
        """Whether this caller may see and control a study owned by ``owner_id``."""
        return self.is_admin or (self.user_id is not None and owner_id == self.user_id)


ANONYMOUS = Principal(user_id=None, name="anonymous", is_admin=True)


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def count_active_tokens(storage: Storage) -> int:
    """Unrevoked, unexpired tokens over all users."""
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    with storage.session(readonly=True) as session:
        users = users_repo.list_users(session)
        return sum(
            1
            for user in users
            for token in users_repo.list_tokens(session, user_id=user.id)
            if token.revoked_at is None and (token.expires_at is None or token.expires_at > now)
        )


class Authenticator:
    """Resolves a bearer token to a Principal, and knows whether the server runs open."""

    def __init__(self, storage: Storage, *, host: str, cache_s: float = 5.0) -> None:
        self.storage = storage
        self.host = host
        # Verdicts and the auth mode are reused this long (Settings.auth_cache_s): polling clients cost no
        # database read for auth; the price is that a revoked or a first token takes up to this long to count.
        self.cache_s = cache_s
        self._lock = threading.Lock()
        self._open: bool | None = None
        self._no_tokens = False
        self._checked_at = 0.0
        self._verdicts: dict[str, tuple[float, Principal | None]] = {}  # sha256(token) -> (when, who)

    def check_startup(self, *, announce: bool = True) -> str:
        """``"token"`` or ``"open"``; raises OpenModeRefused for open mode off loopback. Logs open mode loudly
        (unless ``announce`` is False: a pre-flight check before the service itself starts and says it)."""
        self._refresh(force=True)
        if self._no_tokens:
            if not is_loopback(self.host):
                raise OpenModeRefused(
                    f"no API token exists and the server would listen on {self.host}, reachable from other "
                    "machines: create one first with `optforge token create --admin --user NAME`, or bind to "
                    "127.0.0.1"
                )
            if announce:
                log.warning(
                    "OPEN MODE: no API tokens exist, so every request on %s is accepted without authentication "
                    "and every caller sees every study. Create a token with `optforge token create` to require one.",
                    self.host,
                )
            return "open"
        return "token"

    @property
    def open_mode(self) -> bool:
        """Whether requests without a token are accepted now (reads the database when the answer is stale)."""
        self._refresh()
        return bool(self._open)

    def mode_is_fresh(self) -> bool:
        """Whether ``open_mode`` can answer without a database read (so async callers may skip a thread)."""
        return self._open is not None and time.monotonic() - self._checked_at < self.cache_s

    def cached(self, token: str) -> tuple[bool, Principal | None]:
        """``(True, verdict)`` when a recent check of ``token`` is remembered, else ``(False, None)``."""
        hit = self._verdicts.get(_digest(token))
        if hit is not None and time.monotonic() - hit[0] < self.cache_s:
            return True, hit[1]
        return False, None

    def _refresh(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and self._open is not None and now - self._checked_at < self.cache_s:
            return
        with self._lock:
            was_open = self._open
            self._no_tokens = count_active_tokens(self.storage) == 0
            # Off loopback, no tokens never means open: every request is refused instead (fail closed).
            self._open = self._no_tokens and is_loopback(self.host)
            self._checked_at = now
            if was_open is not None and was_open != self._open:
                log.warning("auth mode changed: now %s", "OPEN (no tokens)" if self._open else "token required")

    def authenticate(self, token: str) -> Principal | None:
        """The owner of ``token``, or None when it is unknown, revoked or expired (remembered ``cache_s``)."""
        known, verdict = self.cached(token)
        if known:
            return verdict
        with self.storage.session() as session:
            user = users_repo.verify_token(session, token=token)
        verdict = None if user is None else Principal(user_id=user.id, name=user.name, is_admin=user.is_admin)
        if len(self._verdicts) >= TOKEN_CACHE_MAX:
            self._verdicts.clear()
        self._verdicts[_digest(token)] = (time.monotonic(), verdict)
        return verdict


def _digest(token: str) -> str:
    # The cache is keyed by a digest, so the secrets themselves are not kept in memory.
    return hashlib.sha256(token.encode()).hexdigest()
