"""``optforge demo``: for now, one trial of the digits MLP example (it becomes the service demo later)."""

from __future__ import annotations

from pathlib import Path

from optforge.cli.trial import run_cli_trial

DEMO_SPEC = Path(__file__).resolve().parents[2] / "examples" / "specs" / "digits_mlp.yaml"


def demo() -> None:
    """Train AdamW with a cosine schedule on the digits MLP example and print the curve."""
    run_cli_trial(DEMO_SPEC)
