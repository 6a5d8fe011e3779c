"""Print the Markdown table of optforge's environment variables, from ``optforge.settings.Settings``.

    python scripts/render_settings_doc.py            # print the table
    python scripts/render_settings_doc.py --write    # replace the table in docs/deploy.md

docs/deploy.md holds its output between the ``<!-- settings-table:start -->`` and ``<!-- settings-table:end -->``
markers; tests/deploy/test_settings_doc.py fails when the two differ, so a new setting cannot go undocumented.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any

from pydantic import AliasChoices
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from optforge.settings import Settings

DOC = Path(__file__).resolve().parents[1] / "docs" / "deploy.md"
START = "<!-- settings-table:start -->"
END = "<!-- settings-table:end -->"


def env_names(name: str, field: FieldInfo) -> list[str]:
    """The variables that set ``name``: its aliases when it has some, else ``OPTFORGE_<NAME>``."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    if isinstance(alias, str):
        return [alias]
    return [f"{Settings.model_config.get('env_prefix', '')}{name}".upper()]


def default_text(field: FieldInfo) -> str:
    """The default as a user would write it; a computed default is described by its function's docstring."""
    if field.default_factory is not None:
        doc = inspect.getdoc(field.default_factory) or field.default_factory.__name__
        return doc.split(":")[0].replace("``", "`").strip()
    value: Any = field.default
    if value is PydanticUndefined:
        return "(required)"
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, int) and not isinstance(value, bool) and value >= 10_000:
        return f"`{value}` ({value:,})"
    return f"`{value}`"


def render_table() -> str:
    """The table: one row per setting, in the order ``Settings`` declares them."""
    rows = ["| Variable | Default | What it sets |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        variables = " or ".join(f"`{v}`" for v in env_names(name, field))
        description = (field.description or "").replace("|", "\\|")
        rows.append(f"| {variables} | {default_text(field)} | {description} |")
    return "\n".join(rows)


def with_table(text: str) -> str:
    """``text`` with whatever lies between the markers replaced by the current table."""
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{render_table()}\n{END}{tail}"


if __name__ == "__main__":
    if "--write" in sys.argv[1:]:
        DOC.write_text(with_table(DOC.read_text()))
    else:
        print(render_table())
