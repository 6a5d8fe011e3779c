"""Security, tried against the real app under uvicorn: tokens, isolation, user code, data paths, secrets.

Routes are enumerated from the app itself, so a route added later is covered without editing these tests.
Already asserted elsewhere, and not repeated here:

- a raw token is never stored, and a token differing in one character does not verify:
  tests/storage/test_users.py (``test_raw_token_is_never_stored_only_its_hash``,
  ``test_token_verifies_to_its_user_and_nothing_else_does``);
- model entry points refused without ``--allow-user-code``, ``../`` and absolute data paths refused, each
  token's own rate limit with Retry-After: tests/service/test_bad_input.py;
- another user's *running* study is 404 for every verb, with real Ray: tests/service/test_studies_api.py.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastapi.routing
import httpx
import pytest
from fastapi import FastAPI
from service.conftest import tiny_spec
from sqlalchemy import make_url, text

from optforge.client.testing import LocalService
from optforge.settings import Settings
from optforge.spec import StudySpec
from optforge.storage.database import Storage
from optforge.storage.models import ApiTokenRow, Base
from optforge.storage.repo import studies as studies_repo
from reliability.test_bad_input import app_without_scheduler, finished_study, new_user, served

# Routes that answer without a token, and why each may.
OPEN_ROUTES = {
    "/healthz": "liveness probe: says only that the process answers",
    "/readyz": "readiness probe: says whether the database and Ray answer",
    "/api/v1/healthz": "the same probe under the API prefix",
    "/api/v1/readyz": "the same probe under the API prefix",
    "/openapi.json": "the API's public description",
    "/docs": "the API's documentation page",
    "/docs/oauth2-redirect": "part of the documentation page",
    "/": "the status page's HTML shell; its data comes from /web-api with the token",
    "/studies/{study_id}": "the study page's HTML shell, the same for every id, with no study data",
    "/learned": "the learned-optimizers page's HTML shell",
    "/static": "the status page's JavaScript and CSS",
}


@dataclass
class Route:
    method: str
    path: str

    def url(self, **params: object) -> str:
        """The path with ``{name}`` placeholders filled from ``params`` (1 for any not given)."""
        return re.sub(r"{(\w+)(:\w+)?}", lambda m: str(params.get(m.group(1), 1)), self.path)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def every_route(app: FastAPI) -> list[Route]:
    """Every (method, path) the app serves, included routers flattened (FastAPI's route contexts when
    this FastAPI has them); mounts (static files) as GET."""
    walk = getattr(fastapi.routing, "iter_route_contexts", None)
    routes = []
    for route in walk(app.routes) if walk is not None else app.routes:
        methods = getattr(route, "methods", None) or {"GET"}
        routes += [Route(m, route.path) for m in sorted(methods - {"HEAD"})]
    return routes


@dataclass
class Secured:
    app: FastAPI
    url: str
    storage: Storage
    settings: Settings
    alice: str
    bob: str
    admin: str
    finished_id: int  # alice's completed study, with a trial
    trial_id: int
    queued_id: int  # alice's queued study

    def client(self, token: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def _app(tmp: Path, storage: Storage, **overrides: Any) -> tuple[FastAPI, Settings]:
    settings = Settings(
        data_dir=tmp, database_url=str(storage.engine.url), rate_limit_burst=10_000, auth_cache_s=60, **overrides
    )
    return app_without_scheduler(settings, storage), settings


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    """Token mode, users alice, bob and an admin; alice owns a completed and a queued study."""
    tmp = tmp_path_factory.mktemp("security")
    storage = Storage.open(f"sqlite:///{tmp / 'optforge.db'}")
    alice_id, alice = new_user(storage, "alice")
    _, bob = new_user(storage, "bob")
    _, admin = new_user(storage, "root", admin=True)
    finished_id, trial_id = finished_study(storage, owner_id=alice_id, name="alice-secret-project")
    with storage.session() as session:
        queued = studies_repo.create_study(session, spec=StudySpec.model_validate(tiny_spec("alice-queued")),
                                           owner_id=alice_id)  # fmt: skip
    app, settings = _app(tmp, storage)
    with served(app) as url:
        yield Secured(app, url, storage, settings, alice, bob, admin, finished_id, trial_id, queued.id)
    storage.close()


# --- tokens ---------------------------------------------------------------------------------------------


def _is_open(route: Route) -> bool:
    return route.path in OPEN_ROUTES


def _unauthorized(response: httpx.Response) -> bool:
    return (
        response.status_code == 401
        and response.headers.get("www-authenticate") == "Bearer"
        and response.json()["detail"][0]["loc"] == ["header", "authorization"]
    )


def forged(token: str) -> list[str]:
    """Tokens an attacker might try: the same visible prefix with another secret, one character short or
    long, another case."""
    rest = token[12:]
    return [token[:12] + rest[::-1], token[:-1], token + "A", token.swapcase()]


def test_the_route_list_covers_every_operation_of_the_openapi_schema(secured: Secured) -> None:
    served_routes = {str(r) for r in every_route(secured.app)}
    documented = {f"{m.upper()} {p}" for p, ops in secured.app.openapi()["paths"].items() for m in ops}
    assert documented <= served_routes, documented - served_routes
    assert {r.path for r in every_route(secured.app)} >= set(OPEN_ROUTES), "a stale entry in OPEN_ROUTES"


def test_every_route_but_the_open_ones_refuses_a_missing_or_forged_token(secured: Secured) -> None:
    routes = [r for r in every_route(secured.app) if not _is_open(r)]
    assert len(routes) >= 20  # the API, the status page's data routes and the meta-run routes
    failures = []
    with secured.client(None) as anonymous:
        for route in routes:
            url = route.url(study_id=secured.finished_id, trial_id=secured.trial_id)
            for token in [None, *forged(secured.alice)]:
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                # An invalid body too: the 401 must come first, so a caller without a token learns nothing.
                response = anonymous.request(route.method, url, json={"bogus": [1]}, headers=headers)
                if not _unauthorized(response):
                    failures.append(f"{route} with {'no token' if token is None else 'a forged token'}: "
                                    f"{response.status_code} {response.text[:200]}")  # fmt: skip
    assert not failures, "\n".join(failures)
    with secured.client(secured.alice) as alice:  # nothing was deleted or cancelled by the attempts
        study = alice.get(f"/api/v1/studies/{secured.finished_id}").json()
        assert study["status"] == "completed" and not study["cancel_requested"]


def test_the_open_routes_show_no_study_data_without_a_token(secured: Secured) -> None:
    with secured.client(None) as anonymous:
        for route in every_route(secured.app):
            if not _is_open(route) or route.path == "/static":
                continue
            response = anonymous.request(route.method, route.url(study_id=secured.finished_id))
            assert response.status_code in (200, 503), (route, response.status_code)
            assert "alice" not in response.text, route  # neither the owner nor the study's name
        assert anonymous.get("/static/does-not-exist.js").status_code == 404


def test_tokens_are_stored_as_sha256_digests_only(secured: Secured) -> None:
    with secured.storage.engine.connect() as connection:
        rows = connection.execute(text(f"SELECT prefix, token_hash FROM {ApiTokenRow.__tablename__}")).all()
        stored = "\n".join(
            str(value)
            for table in Base.metadata.sorted_tables
            for row in connection.execute(text(f"SELECT * FROM {table.name}"))
            for value in row
        )
    tokens = [secured.alice, secured.bob, secured.admin]
    assert {(t[:12], hashlib.sha256(t.encode()).hexdigest()) for t in tokens} <= set(rows)
    for token in tokens:
        assert token not in stored and token[12:] not in stored


# --- isolation ------------------------------------------------------------------------------------------


def _per_study(app: FastAPI) -> list[Route]:
    routes = [r for r in every_route(app) if "{study_id}" in r.path and not _is_open(r)]
    return sorted(routes, key=lambda r: r.method in ("POST", "DELETE"))  # reads first, then cancel and delete


def _shape(response: httpx.Response) -> tuple[int, str, list[Any]]:
    detail = response.json()["detail"][0]
    return response.status_code, detail["type"], detail["loc"]


def test_another_users_study_is_404_like_a_missing_one_on_every_per_study_route(secured: Secured) -> None:
    routes = _per_study(secured.app)
    assert {"GET", "POST", "DELETE"} <= {r.method for r in routes}
    assert any(r.path.endswith("/events") for r in routes)
    missing_id = 10**9
    with secured.client(secured.bob) as bob, secured.client(secured.alice) as alice:
        for study_id in (secured.finished_id, secured.queued_id):
            for route in routes:
                theirs = bob.request(route.method, route.url(study_id=study_id, trial_id=secured.trial_id))
                missing = bob.request(route.method, route.url(study_id=missing_id, trial_id=secured.trial_id))
                assert theirs.status_code == 404, (route, theirs.status_code, theirs.text[:200])
                assert _shape(theirs) == _shape(missing) == (404, "not_found", ["path", "study_id"]), route
                assert theirs.json()["detail"][0]["msg"] == missing.json()["detail"][0]["msg"].replace(
                    str(missing_id), str(study_id)
                ), route
        assert bob.get("/api/v1/studies").json()["count"] == 0
        # The owner still reaches every read, and bob's cancel and delete changed nothing.
        for route in routes:
            if route.method == "GET":
                url = route.url(study_id=secured.finished_id, trial_id=secured.trial_id)
                assert alice.get(url).status_code == 200, route
        queued = alice.get(f"/api/v1/studies/{secured.queued_id}").json()
        assert queued["status"] == "queued" and not queued["cancel_requested"]
    with secured.client(secured.admin) as admin:
        assert admin.get(f"/api/v1/studies/{secured.queued_id}").json()["owner"] == "alice"


# --- user code and data paths ---------------------------------------------------------------------------


def _post(client: httpx.Client, spec: dict[str, Any]) -> tuple[int, dict[tuple[Any, ...], str]]:
    response = client.post("/api/v1/studies", json=spec)
    if response.status_code == 201:
        client.delete(f"/api/v1/studies/{response.json()['id']}")
        return 201, {}
    return response.status_code, {tuple(d["loc"]): d["msg"] for d in response.json()["detail"]}


def _user_code_spec() -> dict[str, Any]:
    spec = tiny_spec("user-code")
    spec["task"]["model"] = {"entrypoint": "mypackage.models:build", "width": 16}
    spec["task"]["data"] = {"entrypoint": "mypackage.data:load"}
    return spec


def test_model_and_data_entry_points_are_refused_each_naming_the_flag(secured: Secured) -> None:
    with secured.client(secured.alice) as alice:
        status, found = _post(alice, _user_code_spec())
    assert status == 403
    for part in ("model", "data"):
        assert "--allow-user-code" in found[("body", "task", part, "entrypoint")]


def test_entry_points_are_accepted_when_the_server_allows_user_code(secured: Secured, tmp_path: Path) -> None:
    app, _ = _app(tmp_path, secured.storage, allow_user_code=True)
    with served(app) as url, httpx.Client(base_url=url, headers={"Authorization": f"Bearer {secured.alice}"}) as c:
        assert _post(c, _user_code_spec())[0] == 201


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CSV file outside the data directory."""
    path = tmp_path_factory.mktemp("outside") / "secret.csv"
    path.write_text("a,b\n1,2\n")
    return path


def _arrays(path: str) -> dict[str, Any]:
    spec = tiny_spec("paths")
    spec["task"]["data"] = {"name": "arrays", "path": path}
    return spec


def test_symlinks_out_of_the_data_directory_are_refused_naming_the_field(secured: Secured, outside: Path) -> None:
    data_dir = secured.settings.data_dir
    (data_dir / "link.csv").unlink(missing_ok=True)
    (data_dir / "link.csv").symlink_to(outside)
    (data_dir / "linked-dir").unlink(missing_ok=True)
    (data_dir / "linked-dir").symlink_to(outside.parent, target_is_directory=True)
    attempts = ["link.csv", "linked-dir/secret.csv", str(data_dir / "link.csv"), "~/secret.csv",
                f"{data_dir}/../{outside.parent.name}/secret.csv"]  # fmt: skip
    with secured.client(secured.alice) as alice:
        for path in attempts:
            status, found = _post(alice, _arrays(path))
            assert status == 422, path
            assert "data directory" in found[("body", "task", "data", "path")], path


def test_paths_inside_the_data_directory_are_accepted(secured: Secured) -> None:
    data_dir = secured.settings.data_dir
    (data_dir / "sub").mkdir(exist_ok=True)
    (data_dir / "sub" / "mine.csv").write_text("a,b\n1,2\n")
    (data_dir / "inner-link.csv").unlink(missing_ok=True)
    (data_dir / "inner-link.csv").symlink_to(data_dir / "sub" / "mine.csv")
    with secured.client(secured.alice) as alice:
        for path in ["sub/mine.csv", str(data_dir / "sub" / "mine.csv"), "inner-link.csv", "sub/../sub/mine.csv"]:
            assert _post(alice, _arrays(path))[0] == 201, path


# --- secrets in logs ------------------------------------------------------------------------------------

PASSWORD = "pw-" + uuid.uuid4().hex  # trust authentication ignores it; the URL still carries it everywhere


def _files_under(root: Path) -> Iterator[Path]:
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            yield path


@pytest.mark.slow
@pytest.mark.postgres
def test_no_token_or_database_password_reaches_the_logs(postgres_url: str, tmp_path: Path) -> None:
    from optforge.testing.postgres import create_database

    url = make_url(create_database(postgres_url, f"secrets_{uuid.uuid4().hex[:10]}"))
    url_with_password = url.set(password=PASSWORD).render_as_string(hide_password=False)
    with Storage.open(url_with_password) as storage:
        _, token = new_user(storage, "alice")
    # Ray's session directory (its workers' logs, where study drivers write) goes here, so it is scanned too;
    # a short path, as Ray's socket paths must fit in 107 characters.
    ray_tmp = Path(tempfile.mkdtemp(prefix="of-ray-", dir="/tmp"))
    env = {
        "OPTFORGE_DATABASE_URL": url_with_password, "RAY_TMPDIR": str(ray_tmp), "OPTFORGE_RAY_CPUS": "2",
        "OPTFORGE_SCHEDULER_INTERVAL_S": "0.3", "OPTFORGE_HEARTBEAT_INTERVAL_S": "1",
    }  # fmt: skip
    try:
        service = LocalService(data_dir=tmp_path / "data", env=env, log_level="debug")
        with service, httpx.Client(base_url=service.url, timeout=60) as http:
            good = {"Authorization": f"Bearer {token}"}
            assert http.get("/api/v1/studies", headers=good).status_code == 200
            assert http.get("/api/v1/studies", params={"token": token}).status_code == 401  # a token in the URL
            for bad in forged(token):
                assert http.get("/api/v1/studies", headers={"Authorization": f"Bearer {bad}"}).status_code == 401
            assert http.post("/api/v1/studies", headers=good, json={"name": token, "bogus": 1}).status_code == 422
            started = time.perf_counter()
            huge = http.post("/api/v1/studies", headers=good, content=b"{" + b" " * (10 << 20) + b"}")
            print(f"\n10 MB body to `optforge serve`: {huge.status_code} in {time.perf_counter() - started:.3f} s")
            assert huge.status_code == 413
            study = http.post("/api/v1/studies", headers=good, json=tiny_spec("secrets", n_trials=2, steps=20))
            assert study.status_code == 201, study.text
            deadline = time.monotonic() + 300
            while (status := http.get(f"/api/v1/studies/{study.json()['id']}", headers=good).json()["status"]) in (
                "queued", "running"
            ):  # fmt: skip
                assert time.monotonic() < deadline, "the study did not finish in 300 s"
                time.sleep(0.5)
            assert status == "completed"
            assert http.get(f"/api/v1/studies/{study.json()['id']}/best", headers=good).status_code == 200
        log = service.log_path.read_bytes()
        logs = [service.log_path, *_files_under(ray_tmp)]
        # The logs are real: debug output of the service, and the Ray workers that ran the study's driver.
        assert b"optforge service ready" in log and b"***" in log  # the database URL, password masked
        assert any("worker" in p.name for p in logs) and len(logs) > 5
        secrets = {"token": token.encode(), "token secret": token[12:].encode(), "password": PASSWORD.encode()}
        leaks = [f"{name} in {path}" for path in logs for name, s in secrets.items() if s in path.read_bytes()]
        print(f"scanned {len(logs)} log files, {sum(p.stat().st_size for p in logs) >> 10} KiB, for 3 secrets")
        assert not leaks, leaks
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
