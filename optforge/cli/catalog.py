"""``optforge families`` and ``optforge schedules``: the catalog, as a table or as JSON (torch-free)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from optforge.catalog import FAMILIES, SCHEDULES, HParam

JsonFlag = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]


def hparam_record(hp: HParam) -> dict[str, Any]:
    """One hyperparameter as JSON-ready data (valid interval and search range as readable strings)."""
    return {
        "name": hp.name,
        "default": hp.default,
        "kind": hp.kind,
        "valid": hp.describe_valid(),
        "search": hp.describe_range(),
        "doc": hp.doc,
    }


def _hparam_lines(hparams: tuple[HParam, ...]) -> str:
    return "\n".join(f"{hp.name}={hp.default}  [dim]{hp.describe_range()}[/]" for hp in hparams)


def families(json_output: JsonFlag = False) -> None:
    """List every optimizer family: its library, hyperparameters (default and search range) and state size."""
    if json_output:
        records = [
            {
                "name": f.name,
                "library": f.library,
                "hparams": [hparam_record(hp) for hp in f.hparams],
                "routing": f.routing,
                "state_per_param": f.state_per_param,
                "reference": f.reference,
                "notes": f.notes,
            }
            for f in FAMILIES.values()
        ]
        typer.echo(json.dumps(records, indent=2))
        return
    table = Table(title=f"{len(FAMILIES)} optimizer families", title_justify="left", show_lines=True)
    table.add_column("family", no_wrap=True)
    table.add_column("library", overflow="fold", max_width=30)
    table.add_column("hyperparameters (default, search range)", ratio=1)
    table.add_column("state/param", max_width=14)
    for f in FAMILIES.values():
        table.add_row(f.name, f.library, _hparam_lines(f.hparams), f.state_per_param)
    Console().print(table)


def schedules(json_output: JsonFlag = False) -> None:
    """List every LR schedule: its implementation and parameters (default and search range)."""
    if json_output:
        records = [
            {
                "name": s.name,
                "implementation": s.implementation,
                "params": [hparam_record(p) for p in s.params],
                "doc": s.doc,
                "reference": s.reference,
            }
            for s in SCHEDULES.values()
        ]
        typer.echo(json.dumps(records, indent=2))
        return
    table = Table(title=f"{len(SCHEDULES)} schedules", title_justify="left", show_lines=True)
    table.add_column("schedule", no_wrap=True)
    table.add_column("what it does", ratio=1)
    table.add_column("parameters (default, search range)", ratio=1)
    for s in SCHEDULES.values():
        table.add_row(s.name, s.doc, _hparam_lines(s.params))
    Console().print(table)
