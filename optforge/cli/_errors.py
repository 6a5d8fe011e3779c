"""Turning bad input into one clear message and exit code 2, never a traceback."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer
from rich.console import Console

from optforge.spec import SpecError

BAD_INPUT = 2  # the usual exit code for a usage error (what click uses for bad options)

err_console = Console(stderr=True, highlight=False)


def fail(problems: list[tuple[str, str]], source: str) -> typer.Exit:
    """Print ``problems`` (field, message) under ``source`` and return the Exit to raise."""
    err_console.print(f"[bold red]error[/] in {source}:")
    for field, message in problems:
        err_console.print(f"  [bold]{field}[/]: {message}", soft_wrap=True)
    return typer.Exit(BAD_INPUT)


@contextlib.contextmanager
def bad_input(source: str, rename: dict[str, str] | None = None) -> Iterator[None]:
    """Report SpecError / EntryPointError / ValueError raised inside as bad input in ``source``.

    ``rename`` maps a spec field to the CLI option that sets it (``hparams`` -> ``--set``).
    """
    from_field = rename or {}
    try:
        yield
    except SpecError as exc:
        raise fail([(from_field.get(f.split(".")[0], f), m) for f, m in exc.errors], source) from None
    except ValueError as exc:  # EntryPointError is a ValueError; its message starts with the field
        field, sep, message = str(exc).partition(": ")
        raise fail([(field, message)] if sep and " " not in field else [("input", str(exc))], source) from None


def parse_value(text: str) -> bool | int | float | str:
    """``true``/``false``, an int, a float (``3e-4`` included) or else the string itself."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_assignments(items: list[str] | None, option: str) -> dict[str, bool | int | float | str]:
    """``["lr=3e-4", "beta2=0.95"]`` as a dict; a malformed item is bad input naming ``option``."""
    values: dict[str, bool | int | float | str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise fail([(option, f"{item!r} must look like NAME=VALUE, e.g. lr=3e-4")], "the command line")
        values[name.strip()] = parse_value(value)
    return values
