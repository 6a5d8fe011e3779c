"""docs/deploy.md lists every environment variable optforge reads, as scripts/render_settings_doc.py renders it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from optforge.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "deploy.md"


def renderer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render_settings_doc", ROOT / "scripts" / "render_settings_doc.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_deploy_guide_has_the_current_settings_table() -> None:
    render = renderer()
    text = DOC.read_text()
    assert render.START in text and render.END in text, f"{DOC} lost its settings-table markers"
    documented = text.split(render.START, 1)[1].split(render.END, 1)[0].strip()
    assert documented == render.render_table(), (
        "docs/deploy.md's environment-variable table is out of date: "
        "replace it with the output of `python scripts/render_settings_doc.py`"
    )


def test_every_setting_has_a_row_whose_variable_the_settings_really_read(monkeypatch: pytest.MonkeyPatch) -> None:
    render = renderer()
    table = render.render_table()
    for name, field in Settings.model_fields.items():
        variables = render.env_names(name, field)
        assert f"`{variables[0]}`" in table, f"{name} has no row"
        default = getattr(Settings(), name)
        if isinstance(default, bool) or not isinstance(default, int | float):
            continue
        for variable in variables:  # a number one above its default, through the documented variable
            monkeypatch.setenv(variable, str(default + 1))
            assert getattr(Settings(), name) == default + 1, f"{variable} does not set {name}"
            monkeypatch.delenv(variable)
