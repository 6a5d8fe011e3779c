"""The SDK is light: it imports no torch, Ray, SQLAlchemy or Optuna, and its install pulls in no more."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "ray", "sqlalchemy", "optuna", "fastapi", "uvicorn", "optforge.engine", "optforge.storage",
         "optforge.service", "optforge.search")  # fmt: skip


def run_fresh(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_using_the_sdk_imports_nothing_heavy_in_a_fresh_interpreter() -> None:
    code = (
        "import sys\n"
        "import optforge.client, optforge.client.testing\n"
        "from optforge.client import AsyncClient, Client, exceptions\n"
        "with Client('http://127.0.0.1:9') as c: c.url\n"
        "from optforge.client._protocol import coerce_spec\n"
        "coerce_spec({'search': {'n_trials': 2, 'families': ['adamw']}})\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    proc = run_fresh(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", f"heavy modules imported: {proc.stdout}"


def test_best_build_without_the_engine_says_how_to_install_it() -> None:
    # torch blocked: what a user with `pip install optforge` (the SDK only) meets
    code = (
        "import sys\n"
        "sys.modules['torch'] = None\n"
        "from optforge.client import Best\n"
        "best = Best.model_validate({'study_id': 1, 'metric': 'val_loss', 'mode': 'min', 'config': {},\n"
        "    'task': {}, 'stats': {'n': 1, 'mean': 0.5}, 'snippet': ''})\n"
        "try:\n"
        "    best.build(object())\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    proc = run_fresh(code)
    assert proc.returncode == 0, proc.stderr
    assert 'pip install "optforge[all]"' in proc.stdout
    assert "best.snippet" in proc.stdout


def test_the_bare_install_and_the_client_extra_need_only_pydantic_httpx_pyyaml_and_sniffio() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {dep.split(">")[0].split("=")[0].split("[")[0].strip().lower() for dep in project["dependencies"]}
    # sniffio: a pure-Python helper httpcore imports on every async request (see pyproject.toml).
    assert names == {"pydantic", "httpx", "pyyaml", "sniffio"}
    assert project["optional-dependencies"]["client"] == []
