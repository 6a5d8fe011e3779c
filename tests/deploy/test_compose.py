"""docker-compose.yml validates with the real compose tool and has what a cluster deployment needs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"


def compose_command() -> list[str]:
    """`docker compose` (plugin) when present, else the standalone `docker-compose` from the distribution."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail(
        "neither `docker compose` nor `docker-compose` is installed (scripts/install-system-deps.sh installs it)"
    )


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*compose_command(), "-f", str(path), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=path.parent,
    )


def test_compose_file_validates() -> None:
    result = validate(COMPOSE)
    assert result.returncode == 0, result.stderr


def test_validator_rejects_a_broken_compose_file(tmp_path: Path) -> None:
    broken = yaml.safe_load(COMPOSE.read_text())
    broken["services"]["api"]["restart"] = {"not": "a policy"}
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "admin_token.txt").write_text("x")
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken))
    assert validate(path).returncode != 0


def test_cluster_services_have_health_checks_restart_policies_and_shared_storage() -> None:
    config = yaml.safe_load(COMPOSE.read_text())
    services = config["services"]
    assert {"postgres", "ray-head", "ray-worker", "api"} <= set(services)
    anchor = config["x-optforge"]
    for name, service in services.items():
        merged = {**anchor, **service} if name != "postgres" else service
        assert "healthcheck" in merged, f"{name} has no healthcheck"
        assert merged.get("restart") in ("always", "unless-stopped", "on-failure"), f"{name} has no restart policy"
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert "optforge-data:/data" in anchor["volumes"], "Ray nodes and the API must share the data volume"


def test_workers_request_gpus_and_join_the_head() -> None:
    worker = yaml.safe_load(COMPOSE.read_text())["services"]["ray-worker"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices)
    assert "--address=ray-head:6379" in worker["command"]
