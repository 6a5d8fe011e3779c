"""docs/families.md is generated from the registry and must stay in step with it."""

from __future__ import annotations

from pathlib import Path

from optforge.catalog import FAMILIES, get_family
from optforge.catalog.render import render_markdown, row

DOC = Path(__file__).resolve().parents[2] / "docs" / "families.md"


def test_the_committed_families_page_is_up_to_date() -> None:
    assert DOC.read_text(encoding="utf-8") == render_markdown(), (
        "docs/families.md is stale: run `python -m optforge.catalog.render > docs/families.md`"
    )


def test_the_page_has_one_row_per_family_with_the_required_columns() -> None:
    page = render_markdown()
    header = next(line for line in page.splitlines() if line.startswith("| family"))
    for column in ("library and class", "defaults", "ranges", "state", "reference"):
        assert column in header
    rows = [line for line in page.splitlines() if line.startswith("| `")]
    assert len(rows) == len(FAMILIES)


def test_a_row_shows_library_defaults_search_ranges_and_marks() -> None:
    adamw = row(get_family("adamw"))
    assert "`torch.optim.AdamW`" in adamw and "lr=1e-3" in adamw and "lr log[1e-4, 0.01]" in adamw
    assert "beta1 1-x log[0.9, 0.996]" in adamw and "★" in adamw
    assert "eps " not in adamw.split("|")[4], "fixed hyperparameters are not listed as ranges"
    assert "*create_graph*" in row(get_family("sophia"))
    assert "*schedule-free*" in row(get_family("schedulefree_sgd"))
    assert "*needs total_steps*" in row(get_family("ranger21"))
    assert "inner {adamw, radam, nadam}" in row(get_family("lookahead"))
