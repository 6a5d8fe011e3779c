"""Users and API tokens: tokens are stored only as hashes and verified in constant time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import inspect, text

from optforge.storage import Conflict, NotFound, repo
from optforge.storage._types import utcnow
from optforge.storage.models import Base


def test_user_round_trips(storage):
    with storage.session() as s:
        created = repo.users.create_user(s, name="ada", is_admin=True)
    with storage.session(readonly=True) as s:
        assert repo.users.get_user(s, user_id=created.id) == created
        assert repo.users.get_user_by_name(s, name="ada") == created
        assert repo.users.list_users(s) == [created]
    assert created.is_admin


def test_duplicate_user_name_is_a_conflict_and_the_unit_of_work_goes_on(storage):
    with storage.session() as s:
        repo.users.create_user(s, name="ada")
        with pytest.raises(Conflict):
            repo.users.create_user(s, name="ada")
        repo.users.create_user(s, name="bob")  # the savepoint kept the transaction usable
    with storage.session(readonly=True) as s:
        assert [u.name for u in repo.users.list_users(s)] == ["ada", "bob"]


def test_unknown_user_is_not_found(storage):
    with storage.session() as s, pytest.raises(NotFound, match="user with name 'nobody'"):
        repo.users.get_user_by_name(s, name="nobody")


def _all_stored_text(storage) -> str:
    """Every value of every optforge table, as one string."""
    out = []
    with storage.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            assert table.name in inspect(connection).get_table_names()
            for row in connection.execute(text(f"SELECT * FROM {table.name}")):
                out.extend(str(value) for value in row)
    return "\n".join(out)


def test_raw_token_is_never_stored_only_its_hash(storage):
    with storage.session() as s:
        user = repo.users.create_user(s, name="ada")
        issued = repo.users.issue_token(s, user_id=user.id, name="laptop")
    stored = _all_stored_text(storage)
    assert issued.token not in stored
    assert issued.token[12:] not in stored  # not even the secret part after the visible prefix
    assert repo.users.hash_token(issued.token) in stored
    assert issued.record.prefix == issued.token[:12] and issued.record.name == "laptop"


def test_token_verifies_to_its_user_and_nothing_else_does(storage):
    with storage.session() as s:
        ada = repo.users.create_user(s, name="ada")
        bob = repo.users.create_user(s, name="bob")
        token = repo.users.issue_token(s, user_id=ada.id).token
        repo.users.issue_token(s, user_id=bob.id)
    with storage.session() as s:
        assert repo.users.verify_token(s, token=token) == ada
        assert repo.users.verify_token(s, token=token[:-1] + ("A" if token[-1] != "A" else "B")) is None
        assert repo.users.verify_token(s, token="of_short") is None
        assert repo.users.verify_token(s, token="not-a-token-at-all") is None
        [record] = repo.users.list_tokens(s, user_id=ada.id)
    assert record.last_used_at is not None


def test_revoked_and_expired_tokens_are_refused(storage):
    with storage.session() as s:
        user = repo.users.create_user(s, name="ada")
        revoked = repo.users.issue_token(s, user_id=user.id, name="old")
        expired = repo.users.issue_token(s, user_id=user.id, expires_at=utcnow() - timedelta(seconds=1))
        valid = repo.users.issue_token(s, user_id=user.id, expires_at=utcnow() + timedelta(days=1))
        record = repo.users.revoke_token(s, token_id=revoked.record.id, user_id=user.id)
        assert record.revoked_at is not None
    with storage.session() as s:
        assert repo.users.verify_token(s, token=revoked.token) is None
        assert repo.users.verify_token(s, token=expired.token) is None
        assert repo.users.verify_token(s, token=valid.token) == user


def test_revoking_another_users_token_is_not_found(storage):
    with storage.session() as s:
        ada = repo.users.create_user(s, name="ada")
        bob = repo.users.create_user(s, name="bob")
        token = repo.users.issue_token(s, user_id=ada.id)
        with pytest.raises(NotFound):
            repo.users.revoke_token(s, token_id=token.record.id, user_id=bob.id)


def test_deleting_a_user_keeps_their_studies_without_owner(storage):
    from optforge.spec import StudySpec

    with storage.session() as s:
        ada = repo.users.create_user(s, name="ada")
        token = repo.users.issue_token(s, user_id=ada.id)
        study = repo.studies.create_study(s, spec=StudySpec(), owner_id=ada.id)
        repo.users.delete_user(s, user_id=ada.id)
    with storage.session() as s:
        assert repo.studies.get_study(s, study_id=study.id).owner_id is None
        assert repo.users.verify_token(s, token=token.token) is None
