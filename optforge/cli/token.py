"""``optforge token create|list|revoke``: API tokens, written straight to the service's database.

A token is shown once, when created; the database keeps only its SHA-256. The first token created turns
a server that ran open (no tokens) into one that requires a token on every request.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from optforge.cli._errors import err_console

token_app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)

DatabaseOption = Annotated[
    str | None, typer.Option("--database-url", help="the service's database (default: OPTFORGE_DATABASE_URL or SQLite)")
]
JsonFlag = Annotated[bool, typer.Option("--json", help="print JSON")]


def _storage(database_url: str | None) -> Any:
    from optforge.settings import Settings
    from optforge.storage.database import Storage

    settings = Settings(**({"database_url": database_url} if database_url else {}))
    return Storage.open(settings.resolved_database_url())


@token_app.command("create")
def create(
    user: Annotated[str, typer.Option("--user", help="the token's user (created if new)")] = "admin",
    admin: Annotated[bool, typer.Option("--admin", help="the user sees and controls every study")] = False,
    name: Annotated[str, typer.Option("--name", help="a label to tell this token apart in listings")] = "default",
    database_url: DatabaseOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Create an API token for USER (creating the user) and print it: it is shown only this once."""
    from optforge.storage.errors import NotFound
    from optforge.storage.repo import users as users_repo

    with _storage(database_url) as storage, storage.session() as session:
        try:
            record = users_repo.get_user_by_name(session, name=user)
            if admin and not record.is_admin:
                err_console.print(f"[bold red]error[/]: user {user!r} exists and is not an admin; pick another --user")
                raise typer.Exit(2)
        except NotFound:
            record = users_repo.create_user(session, name=user, is_admin=admin)
        issued = users_repo.issue_token(session, user_id=record.id, name=name)
    if json_output:
        typer.echo(json.dumps({"token": issued.token, "id": issued.record.id, "user": user, "admin": record.is_admin}))
        return
    Console(highlight=False).print(
        f"token {issued.record.id} for user [bold]{user}[/]{' (admin)' if record.is_admin else ''}:\n\n"
        f"  {issued.token}\n\nStore it now: it is not shown again. Use it as 'Authorization: Bearer <token>' "
        "or OPTFORGE_TOKEN."
    )


@token_app.command("list")
def list_tokens(
    user: Annotated[str | None, typer.Option("--user", help="only this user's tokens")] = None,
    database_url: DatabaseOption = None,
    json_output: JsonFlag = False,
) -> None:
    """List tokens (never their secrets: only the visible prefix)."""
    from optforge.storage.repo import users as users_repo

    rows = []
    with _storage(database_url) as storage, storage.session(readonly=True) as session:
        for u in users_repo.list_users(session):
            if user is not None and u.name != user:
                continue
            for t in users_repo.list_tokens(session, user_id=u.id):
                rows.append({
                    "id": t.id, "user": u.name, "admin": u.is_admin, "name": t.name, "prefix": t.prefix,
                    "created_at": t.created_at.isoformat(timespec="seconds"),
                    "last_used_at": t.last_used_at.isoformat(timespec="seconds") if t.last_used_at else None,
                    "revoked": t.revoked_at is not None,
                })  # fmt: skip
    if json_output:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"{len(rows)} token(s)", title_justify="left")
    for column in ("id", "user", "admin", "name", "prefix", "created", "last used", "revoked"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            str(r["id"]), r["user"], "yes" if r["admin"] else "", r["name"], r["prefix"] + "…", r["created_at"],
            r["last_used_at"] or "-", "revoked" if r["revoked"] else "",
        )  # fmt: skip
    Console().print(table)


@token_app.command("revoke")
def revoke(
    token_id: Annotated[int, typer.Argument(help="the token's id (see `optforge token list`)")],
    database_url: DatabaseOption = None,
) -> None:
    """Revoke a token: requests with it are refused from now on."""
    from optforge.storage.errors import NotFound
    from optforge.storage.repo import users as users_repo

    with _storage(database_url) as storage, storage.session() as session:
        try:
            record = users_repo.revoke_token(session, token_id=token_id)
        except NotFound:
            err_console.print(f"[bold red]error[/]: no token with id {token_id} (see `optforge token list`)")
            raise typer.Exit(2) from None
    typer.echo(f"token {record.id} ({record.prefix}…) revoked")
