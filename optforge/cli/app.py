"""The typer application. A new command is a new module plus one ``app.command(...)`` line below.

Command modules import heavy layers (torch, ray) inside their functions, so ``optforge --help`` and
the catalog listings start instantly.
"""

from __future__ import annotations

import typer

from optforge.cli import catalog, coord_check, demo, meta_train, serve, studies, token, trial, tune

app = typer.Typer(
    name="optforge",
    help="Find the best way to train your neural network.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,  # errors users cause are printed by the commands, without tracebacks
)

app.command("trial")(trial.trial)
app.command("tune")(tune.tune)
app.command("families")(catalog.families)
app.command("schedules")(catalog.schedules)
app.command("demo")(demo.demo)
app.command("coord-check")(coord_check.coord_check)
app.command("serve")(serve.serve)
app.command("meta-train")(meta_train.meta_train)
app.add_typer(token.token_app, name="token")
studies.register(app)  # submit, status, list, best, cancel
