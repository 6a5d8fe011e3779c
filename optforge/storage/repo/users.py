"""Users and their API tokens.

A token is ``of_`` + 43 URL-safe characters (256 random bits). Only its SHA-256 is stored, with its first
12 characters as a visible ``prefix`` for listings and lookup. A fast hash is the right tool here: a
salted slow KDF protects *low-entropy* passwords from guessing, and 256 random bits cannot be guessed.
Verification compares digests with ``hmac.compare_digest`` so timing reveals nothing about the hash.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from optforge.spec import IssuedToken, TokenRecord, UserRecord
from optforge.storage._types import utcnow
from optforge.storage.errors import NotFound, translating
from optforge.storage.models import ApiTokenRow, UserRow
from optforge.storage.repo._common import fields_of, get_row

TOKEN_SCHEME = "of_"
TOKEN_BYTES = 32  # 256 bits: beyond guessing, so a plain SHA-256 suffices for storage
PREFIX_LENGTH = 12  # "of_" + 9 random characters (54 bits): distinct in any listing
# last_used_at is refreshed at most this often, so that authenticating every request does not write every time.
TOUCH_INTERVAL = timedelta(minutes=1)
# First key of lock_submissions' two-key advisory locks (the second is the user); two-key locks never collide
# with the one-key lock that serializes migrations. An arbitrary constant: "subm" in ASCII.
SUBMISSIONS_LOCK_SPACE = 0x7375626D


def hash_token(token: str) -> str:
    """Hex SHA-256 of the token: what the database stores instead of it."""
    return hashlib.sha256(token.encode()).hexdigest()


def _user(row: UserRow) -> UserRecord:
    return UserRecord(**fields_of(row, UserRecord))


def _token(row: ApiTokenRow) -> TokenRecord:
    return TokenRecord(**fields_of(row, TokenRecord))


@translating
def create_user(session: Session, /, *, name: str, is_admin: bool = False) -> UserRecord:
    """A new user. Conflict if the name is taken (the unit of work stays usable after catching it)."""
    row = UserRow(name=name, is_admin=is_admin)
    with session.begin_nested():  # a savepoint: a duplicate name must not poison the caller's transaction
        session.add(row)
        session.flush()
    return _user(row)


@translating
def get_user(session: Session, /, *, user_id: int) -> UserRecord:
    return _user(get_row(session, UserRow, user_id, "user"))


@translating
def get_user_by_name(session: Session, /, *, name: str) -> UserRecord:
    row = session.scalars(select(UserRow).where(UserRow.name == name)).one_or_none()
    if row is None:
        raise NotFound("user", f"name {name!r}")
    return _user(row)


@translating
def list_users(session: Session, /) -> list[UserRecord]:
    return [_user(row) for row in session.scalars(select(UserRow).order_by(UserRow.id))]


@translating
def delete_user(session: Session, /, *, user_id: int) -> None:
    """Delete the user and their tokens; their studies stay, without an owner. NotFound if absent."""
    if session.execute(delete(UserRow).where(UserRow.id == user_id)).rowcount == 0:
        raise NotFound("user", f"id {user_id}")


@translating
def issue_token(
    session: Session, /, *, user_id: int, name: str = "default", expires_at: datetime | None = None
) -> IssuedToken:
    """A new API token for the user. The secret is in the returned ``token`` and nowhere else."""
    get_row(session, UserRow, user_id, "user")
    token = TOKEN_SCHEME + secrets.token_urlsafe(TOKEN_BYTES)
    row = ApiTokenRow(
        user_id=user_id, name=name, prefix=token[:PREFIX_LENGTH], token_hash=hash_token(token), expires_at=expires_at
    )
    session.add(row)
    session.flush()
    return IssuedToken(token=token, record=_token(row))


@translating
def verify_token(session: Session, /, *, token: str) -> UserRecord | None:
    """The user a token belongs to; None for an unknown, revoked or expired token."""
    if not token.startswith(TOKEN_SCHEME) or len(token) < PREFIX_LENGTH:
        return None
    digest = hash_token(token)
    now = utcnow()
    for row in session.scalars(select(ApiTokenRow).where(ApiTokenRow.prefix == token[:PREFIX_LENGTH])):
        if not hmac.compare_digest(row.token_hash, digest):
            continue
        if row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
            return None
        if row.last_used_at is None or now - row.last_used_at > TOUCH_INTERVAL:
            row.last_used_at = now
            session.flush()
        return _user(get_row(session, UserRow, row.user_id, "user"))
    return None


@translating
def list_tokens(session: Session, /, *, user_id: int) -> list[TokenRecord]:
    """The user's tokens, revoked ones included, oldest first (never their secrets)."""
    stmt = select(ApiTokenRow).where(ApiTokenRow.user_id == user_id).order_by(ApiTokenRow.id)
    return [_token(row) for row in session.scalars(stmt)]


@translating
def revoke_token(session: Session, /, *, token_id: int, user_id: int | None = None) -> TokenRecord:
    """Revoke a token (idempotent). With ``user_id``, NotFound unless the token is that user's."""
    row = get_row(session, ApiTokenRow, token_id, "token")
    if user_id is not None and row.user_id != user_id:
        raise NotFound("token", f"id {token_id} of user {user_id}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
    return _token(row)


@translating
def lock_submissions(session: Session, /, *, owner_id: int | None) -> None:
    """Hold, until this transaction ends, the right to add studies or meta-training runs for ``owner_id``
    (None: open mode's anonymous caller), so that a count of what the owner has queued stays true up to the
    insert that follows it: the active-study limits are checked this way.

    PostgreSQL: a transaction-scoped advisory lock on the owner; under READ COMMITTED two submissions could
    otherwise both count, then both insert, and pass a limit together. SQLite: nothing to take, a write
    transaction already holds the database's write lock from its ``BEGIN IMMEDIATE``.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(:space, :owner)"),
            {"space": SUBMISSIONS_LOCK_SPACE, "owner": owner_id or 0},
        )
