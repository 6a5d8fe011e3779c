"""Bad input, limits and auth against a running service: always a 4xx with field-level messages, never a 500."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from service.conftest import Service, issue, tiny_spec


def problems(response: httpx.Response) -> dict[tuple[str | int, ...], str]:
    """``{loc: msg}`` of an error response, after checking it has the API's one error shape."""
    body = response.json()
    assert set(body) == {"detail"}, body
    assert body["detail"], body
    for item in body["detail"]:
        assert set(item) == {"loc", "msg", "type"}, item
    return {tuple(item["loc"]): item["msg"] for item in body["detail"]}


def post(service: Service, body: Any = None, *, token: str | None = None, **kwargs: Any) -> httpx.Response:
    with service.client(token or service.tokens.alice) as client:
        if body is not None:
            kwargs["json"] = body
        return client.post("/api/v1/studies", **kwargs)


def test_an_unknown_family_names_the_field_and_the_known_families(service: Service) -> None:
    response = post(service, tiny_spec(families=["adamw", "adamww"]))
    assert response.status_code == 422
    msg = problems(response)[("body", "search", "families")]
    assert "adamww" in msg and "lion" in msg


def test_an_out_of_range_value_names_the_field(service: Service) -> None:
    spec = tiny_spec()
    spec["task"]["batch_size"] = 0
    response = post(service, spec)
    assert response.status_code == 422
    assert "greater than or equal to 1" in problems(response)[("body", "task", "batch_size")]


def test_an_out_of_range_hyperparameter_names_it_and_its_valid_interval(service: Service) -> None:
    response = post(service, tiny_spec(fixed={"adamw.lr": -1.0}))
    assert response.status_code == 422
    msg = problems(response)[("body", "search", "fixed", "adamw", "lr")]
    assert "out of range" in msg and "(0, inf)" in msg


def test_a_misspelt_field_is_refused_not_ignored(service: Service) -> None:
    spec = tiny_spec()
    spec["task"]["stpes"] = 100
    response = post(service, spec)
    assert response.status_code == 422
    assert ("body", "task", "stpes") in problems(response)


def test_malformed_json_is_a_422(service: Service) -> None:
    response = post(service, content=b'{"name": "x", "task": {', headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert problems(response)


def test_a_body_that_is_not_an_object_is_a_422(service: Service) -> None:
    response = post(service, [1, 2, 3])
    assert response.status_code == 422
    assert problems(response)


def test_an_oversized_body_is_a_413(service: Service) -> None:
    limit = service.live.settings.max_body_bytes
    spec = tiny_spec(name="x" * 10)
    spec["task"]["model"]["kwargs"] = {"junk": "a" * (limit + 1)}
    response = post(service, spec)
    assert response.status_code == 413
    assert "too large" in problems(response)[("body",)]


def test_an_oversized_chunked_body_is_a_413(service: Service) -> None:
    limit = service.live.settings.max_body_bytes

    def chunks() -> Any:
        yield b'{"name": "'
        for _ in range(limit // 65536 + 2):
            yield b"a" * 65536
        yield b'"}'

    response = post(service, content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert problems(response)


def test_deeply_nested_json_is_refused_before_parsing(service: Service) -> None:
    depth = 100_000
    response = post(service, content=b"[" * depth + b"]" * depth, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert "nested" in problems(response)[("body",)]


def test_requests_beyond_the_servers_limits_name_the_field_and_the_limit(service: Service) -> None:
    settings = service.live.settings
    spec = tiny_spec(n_trials=settings.max_trials + 1, steps=settings.max_steps + 1)
    spec["task"]["model"]["width"] = settings.max_width + 1
    response = post(service, spec)
    assert response.status_code == 422
    found = problems(response)
    assert str(settings.max_trials) in found[("body", "search", "n_trials")]
    assert str(settings.max_steps) in found[("body", "task", "steps")]
    assert "OPTFORGE_MAX_WIDTH" in found[("body", "task", "model", "width")]


def test_user_code_is_refused_without_allow_user_code(service: Service) -> None:
    spec = tiny_spec()
    spec["task"]["model"] = {"entrypoint": "mypackage.models:build", "width": 16}
    response = post(service, spec)
    assert response.status_code == 403
    assert "--allow-user-code" in problems(response)[("body", "task", "model", "entrypoint")]


@pytest.mark.parametrize("path", ["../../etc/passwd.csv", "/etc/passwd.csv", "sub/../../outside.csv"])
def test_dataset_paths_outside_the_data_directory_are_refused(service: Service, path: str) -> None:
    spec = tiny_spec()
    spec["task"]["data"] = {"name": "arrays", "path": path}
    response = post(service, spec)
    assert response.status_code == 422
    assert "data directory" in problems(response)[("body", "task", "data", "path")]


def test_a_search_that_fits_no_family_is_refused_at_submission(service: Service) -> None:
    spec = tiny_spec(families=["sgd"])
    spec["search"]["fixed"] = {"beta2": 0.95}  # an Adam-type hyperparameter; SGD has none
    response = post(service, spec)
    assert response.status_code == 422
    assert ("body", "search", "fixed", "beta2") in problems(response)


def test_no_token_or_a_bad_token_is_a_401(service: Service) -> None:
    with service.client(None) as anonymous, service.client("of_not-a-real-token-at-all") as forged:
        for client in (anonymous, forged):
            for method, path in (("GET", "/api/v1/studies"), ("POST", "/api/v1/studies"), ("GET", "/api/v1/families")):
                response = client.request(method, path, json=tiny_spec() if method == "POST" else None)
                assert response.status_code == 401, (method, path, response.text)
                assert response.headers["www-authenticate"] == "Bearer"
                assert problems(response)[("header", "authorization")]


def test_a_revoked_token_is_refused_within_the_token_cache_time(service: Service) -> None:
    from optforge.storage.repo import users as users_repo

    token = issue(service.storage, "erin")
    with service.client(token) as client:
        assert client.get("/api/v1/studies").status_code == 200
        with service.storage.session() as session:
            user = users_repo.get_user_by_name(session, name="erin")
            for record in users_repo.list_tokens(session, user_id=user.id):
                users_repo.revoke_token(session, token_id=record.id)
        revoked = time.monotonic()
        while client.get("/api/v1/studies").status_code == 200:
            assert time.monotonic() - revoked < service.live.settings.auth_cache_s + 5, "a revoked token still works"
            time.sleep(0.25)
        assert client.get("/api/v1/studies").status_code == 401


def test_each_token_has_its_own_rate_limit(service: Service) -> None:
    burst = service.live.settings.rate_limit_burst
    greedy, patient = issue(service.storage, "greedy"), issue(service.storage, "patient")
    with service.client(greedy) as client, ThreadPoolExecutor(max_workers=8) as pool:
        # 3x the burst, 8 at a time: they arrive far faster than the 10/s refill even on a loaded machine,
        # where one request after another can each take longer than a refill.
        responses = list(pool.map(lambda _: client.get("/api/v1/schedules"), range(3 * burst)))
    codes = [response.status_code for response in responses]
    assert codes.count(200) >= burst
    # One of the refused ones, not one more request afterwards: that one may find a token refilled (10/s)
    # when the machine is slow, which is the limiter working, not failing.
    limited = next((response for response in responses if response.status_code == 429), None)
    assert limited is not None, codes
    assert int(limited.headers["retry-after"]) >= 1
    assert "rate limit" in problems(limited)[("header", "authorization")]
    with service.client(patient) as client:
        assert client.get("/api/v1/schedules").status_code == 200


def test_the_active_study_limit_is_a_429_naming_the_setting(service: Service) -> None:
    limit = service.live.settings.max_active_studies_per_user
    token = issue(service.storage, "carol")
    spec = tiny_spec("carol", steps=50_000)
    with service.client(token) as client:
        ids = []
        for _ in range(limit):
            # Each one may start while the next is submitted: a study moving from queued to running must
            # still count once (the count once took two statements and counted it twice on PostgreSQL).
            accepted = client.post("/api/v1/studies", json=spec)
            assert accepted.is_success, accepted.text
            ids.append(accepted.json()["id"])
        try:
            response = client.post("/api/v1/studies", json=spec)
            assert response.status_code == 429
            assert "OPTFORGE_MAX_ACTIVE_STUDIES_PER_USER" in problems(response)[("body",)]
        finally:
            for study_id in ids:
                client.post(f"/api/v1/studies/{study_id}/cancel")


def test_unknown_paths_and_methods_have_the_same_error_shape(service: Service) -> None:
    with service.client(service.tokens.alice) as client:
        assert client.get("/api/v1/nope").status_code == 404
        assert problems(client.get("/api/v1/nope"))
        assert client.put("/api/v1/studies").status_code == 405
        assert problems(client.put("/api/v1/studies"))
        bad_id = client.get("/api/v1/studies/not-a-number")
        assert bad_id.status_code == 422 and ("path", "study_id") in problems(bad_id)


def test_a_proxy_no_narrower_than_the_target_is_refused_at_submit(service: Service) -> None:
    spec = tiny_spec()
    spec["search"]["proxy"] = {"width": spec["task"]["model"]["width"]}
    response = post(service, spec)
    assert response.status_code == 422
    assert "narrower than the target width" in problems(response)[("body", "search", "proxy", "width")]
