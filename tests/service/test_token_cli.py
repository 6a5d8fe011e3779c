"""``optforge token create|list|revoke`` against a real database; the server honours what they write."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from optforge.cli.app import app
from optforge.service.auth import count_active_tokens
from optforge.storage.database import Storage
from optforge.storage.repo import users as users_repo

runner = CliRunner()


def test_created_tokens_verify_list_without_their_secret_and_stop_working_once_revoked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tokens.db'}"
    created = runner.invoke(app, ["token", "create", "--user", "ana", "--admin", "--database-url", url, "--json"])
    assert created.exit_code == 0, created.output
    issued = json.loads(created.output)
    assert issued["token"].startswith("of_") and issued["admin"] is True

    listed = runner.invoke(app, ["token", "list", "--database-url", url, "--json"])
    rows = json.loads(listed.output)
    assert [(r["user"], r["admin"], r["revoked"]) for r in rows] == [("ana", True, False)]
    assert issued["token"] not in listed.output and issued["token"].startswith(rows[0]["prefix"])

    with Storage.open(url) as storage:
        with storage.session() as session:
            assert users_repo.verify_token(session, token=issued["token"]).name == "ana"
        assert count_active_tokens(storage) == 1

    revoked = runner.invoke(app, ["token", "revoke", str(issued["id"]), "--database-url", url])
    assert revoked.exit_code == 0, revoked.output
    with Storage.open(url) as storage:
        with storage.session() as session:
            assert users_repo.verify_token(session, token=issued["token"]) is None
        assert count_active_tokens(storage) == 0


def test_revoking_an_unknown_token_is_a_clear_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tokens.db'}"
    result = runner.invoke(app, ["token", "revoke", "42", "--database-url", url])
    assert result.exit_code == 2
    assert "no token with id 42" in result.output


def test_an_existing_user_cannot_be_made_admin_by_a_new_token(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tokens.db'}"
    assert runner.invoke(app, ["token", "create", "--user", "bo", "--database-url", url]).exit_code == 0
    result = runner.invoke(app, ["token", "create", "--user", "bo", "--admin", "--database-url", url])
    assert result.exit_code == 2
    assert "not an admin" in result.output
