"""Layers import downward only (docs/architecture.md). Checked on the source, module by module."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "optforge"

# package → top-level modules it must never import (directly, at any depth of the file)
FORBIDDEN: dict[str, set[str]] = {
    "catalog": {"torch", "ray", "optuna", "sqlalchemy", "fastapi", "optforge.spec", "optforge.engine"},
    "spec": {"torch", "ray", "optuna", "sqlalchemy", "fastapi", "optforge.engine", "optforge.storage"},
    "engine": {"ray", "optuna", "sqlalchemy", "fastapi", "optforge.search", "optforge.storage", "optforge.service"},
    "learned_opt": {"sqlalchemy", "fastapi", "optforge.search", "optforge.storage", "optforge.service"},
    "search": {"sqlalchemy", "fastapi", "optforge.storage", "optforge.service"},
    "storage": {"torch", "ray", "fastapi", "optforge.engine", "optforge.search", "optforge.service"},
    "client": {"torch", "ray", "sqlalchemy", "optuna", "optforge.engine", "optforge.storage", "optforge.service"},
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def violations(package: str) -> list[str]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in imported_modules(path):
            for banned in FORBIDDEN[package]:
                if name == banned or name.startswith(banned + "."):
                    found.append(f"{path.relative_to(ROOT.parent)} imports {name}")
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_lower_layers(package: str) -> None:
    if not (ROOT / package).is_dir():
        pytest.skip(f"optforge.{package} does not exist yet")
    assert violations(package) == []


def test_sqlalchemy_is_imported_only_by_storage() -> None:
    offenders = [
        f"{path.relative_to(ROOT.parent)}"
        for path in ROOT.rglob("*.py")
        if "storage" not in path.relative_to(ROOT).parts
        and any(n == "sqlalchemy" or n.startswith("sqlalchemy.") for n in imported_modules(path))
    ]
    assert offenders == []


def test_specs_load_without_torch_in_a_fresh_interpreter() -> None:
    code = (
        "import sys, optforge.spec, optforge.catalog; "
        "optforge.spec.StudySpec(); "
        "bad = [m for m in ('torch', 'ray', 'sqlalchemy', 'optuna') if m in sys.modules]; "
        "print(','.join(bad)); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"heavy modules imported: {proc.stdout} {proc.stderr}"


def test_the_checker_catches_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "mod.py"
    bad.write_text("import torch.nn as nn\nfrom sqlalchemy.orm import Session\n")
    assert imported_modules(bad) == {"torch.nn", "sqlalchemy.orm"}
