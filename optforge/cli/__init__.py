"""The ``optforge`` command line. Each command lives in its own module, registered in :mod:`optforge.cli.app`."""

from __future__ import annotations


def main() -> None:
    """Entry point of the ``optforge`` script."""
    from optforge.cli.app import app

    app()
