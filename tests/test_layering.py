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


# Imports allowed inside functions only (lazily, never at import time): the SDK's ``best.build(model)``
# needs the full install by design (issue 7), but importing ``optforge.client`` must stay light.
LAZY_ALLOWED: dict[str, set[str]] = {"client": {"optforge.engine", "torch"}}


def imported_modules(path: Path, *, module_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    nodes = _module_level(tree) if module_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _module_level(tree: ast.Module) -> list[ast.AST]:
    """Every node outside function bodies (classes and if/try blocks included): what runs at import."""
    out: list[ast.AST] = []
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        out.append(node)
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(node))
    return out


def violations(package: str) -> list[str]:
    found = []
    lazy = LAZY_ALLOWED.get(package, set())
    for path in sorted((ROOT / package).rglob("*.py")):
        eager = imported_modules(path, module_level_only=True)
        for name in imported_modules(path):
            for banned in FORBIDDEN[package]:
                if name not in eager and any(name == ok or name.startswith(ok + ".") for ok in lazy):
                    continue
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


def test_the_checker_tells_lazy_imports_from_import_time_ones(tmp_path: Path) -> None:
    mod = tmp_path / "mod.py"
    mod.write_text("import httpx\nclass A:\n    def build(self):\n        import torch\n")
    assert imported_modules(mod) == {"httpx", "torch"}
    assert imported_modules(mod, module_level_only=True) == {"httpx"}
