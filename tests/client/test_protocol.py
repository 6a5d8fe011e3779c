"""The SDK's I/O-free parts: URL and token resolution, spec coercion, error mapping, SSE decoding, retry rules."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest
import yaml

from optforge.client import (
    ConnectionFailed,
    Forbidden,
    NotFound,
    NotReady,
    OptforgeError,
    RateLimited,
    RetryPolicy,
    ServerError,
    Unauthorized,
    ValidationFailed,
)
from optforge.client import _protocol as proto
from optforge.client._retry import parse_retry_after
from optforge.client._sse import SSEDecoder
from optforge.spec import StudySpec


def response(
    status: int, body: object = None, headers: dict[str, str] | None = None, method: str = "GET"
) -> httpx.Response:
    request = httpx.Request(method, "http://svc/api/v1/studies")
    content = json.dumps(body).encode() if body is not None else b""
    return httpx.Response(status, content=content, headers=headers, request=request)


# --- configuration ------------------------------------------------------------------------------------------


def test_url_and_token_come_from_arguments_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPTFORGE_URL", raising=False)
    monkeypatch.delenv("OPTFORGE_TOKEN", raising=False)
    assert proto.resolve_url() == "http://127.0.0.1:8000"
    assert proto.resolve_token() is None
    monkeypatch.setenv("OPTFORGE_URL", "https://tune.example.org/api/v1/")
    monkeypatch.setenv("OPTFORGE_TOKEN", "env-token")
    assert proto.resolve_url() == "https://tune.example.org"
    assert proto.resolve_token() == "env-token"
    assert proto.resolve_url("http://other:9000") == "http://other:9000"
    assert proto.resolve_token("arg-token") == "arg-token"


def test_a_url_without_http_scheme_is_refused_naming_where_it_came_from(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTFORGE_URL", "localhost:8000")
    with pytest.raises(ValueError, match="OPTFORGE_URL: 'localhost:8000' is not an http"):
        proto.resolve_url()
    with pytest.raises(ValueError, match=r"^url: "):
        proto.resolve_url("ftp://host")


def test_specs_are_read_from_dicts_files_and_text_alike(tmp_path: Path) -> None:
    mapping = {"name": "s", "search": {"n_trials": 3, "families": ["adamw"]}}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(mapping))
    from_all = [proto.coerce_spec(x) for x in (mapping, path, str(path), yaml.safe_dump(mapping), json.dumps(mapping))]
    assert all(s == from_all[0] for s in from_all)
    assert from_all[0].search.n_trials == 3
    assert proto.coerce_spec(from_all[0]) is from_all[0]


def test_a_bad_spec_fails_before_sending_with_every_field_named() -> None:
    with pytest.raises(ValidationFailed) as info:
        proto.coerce_spec({"search": {"n_trialz": 3, "families": ["adamw", "no_such_family"]}})
    exc = info.value
    assert exc.status_code is None
    fields = [loc for loc, _ in exc.errors]
    assert "search.n_trialz" in fields
    assert any(loc.startswith("search.families") for loc in fields)
    assert "no_such_family" in str(exc)


def test_submit_sends_only_the_fields_the_user_set() -> None:
    call = proto.submit_call(StudySpec.model_validate({"name": "x", "search": {"n_trials": 3}}))
    assert call.body == {"name": "x", "search": {"n_trials": 3}}
    assert not call.idempotent


# --- errors -------------------------------------------------------------------------------------------------


def test_error_responses_become_exceptions_with_field_paths_relative_to_the_body() -> None:
    body = {"detail": [
        {"loc": ["body", "search", "n_trials"], "msg": "5000 is above this server's limit of 1000", "type": "limit_exceeded"},
        {"loc": ["body", "task", "model", "width"], "msg": "too wide", "type": "limit_exceeded"},
    ]}  # fmt: skip
    exc = proto.error_from_response(response(422, body, method="POST"))
    assert type(exc) is ValidationFailed
    assert exc.status_code == 422
    assert exc.errors == [
        ("search.n_trials", "5000 is above this server's limit of 1000"),
        ("task.model.width", "too wide"),
    ]
    assert "search.n_trials: 5000 is above" in str(exc) and "POST" in str(exc)


@pytest.mark.parametrize(
    ("status", "error_type", "expected"),
    [
        (401, "unauthorized", Unauthorized),
        (403, "user_code_refused", Forbidden),
        (404, "not_found", NotFound),
        (413, "http_413", ValidationFailed),
        (500, "internal", ServerError),
        (503, "unavailable", ServerError),
    ],
)
def test_each_status_maps_to_its_exception(status: int, error_type: str, expected: type) -> None:
    exc = proto.error_from_response(response(status, {"detail": [{"loc": ["header"], "msg": "m", "type": error_type}]}))
    assert type(exc) is expected
    assert isinstance(exc, OptforgeError)


def test_a_best_not_saved_yet_is_not_ready_and_still_a_not_found() -> None:
    exc = proto.error_from_response(
        response(404, {"detail": [{"loc": ["path", "study_id"], "msg": "m", "type": "not_ready"}]})
    )
    assert isinstance(exc, NotReady) and isinstance(exc, NotFound)
    assert exc.errors == [("path.study_id", "m")]


def test_rate_limited_carries_retry_after() -> None:
    body = {"detail": [{"loc": ["header", "authorization"], "msg": "rate limit", "type": "rate_limited"}]}
    exc = proto.error_from_response(response(429, body, {"Retry-After": "7"}))
    assert isinstance(exc, RateLimited)
    assert exc.retry_after == 7.0


def test_an_error_page_that_is_not_json_keeps_its_text() -> None:
    request = httpx.Request("GET", "http://svc/api/v1/studies")
    exc = proto.error_from_response(httpx.Response(502, text="<html>Bad gateway</html>", request=request))
    assert isinstance(exc, ServerError)
    assert "Bad gateway" in exc.errors[0][1]


# --- server-sent events ---------------------------------------------------------------------------------------


def test_sse_decoder_follows_the_event_stream_rules() -> None:
    decoder = SSEDecoder()
    lines = [": ping", "", "event: trial_result", "id: 4", "retry: 2000", "data: {\"a\":", "data:  1}", "",
             "id: 5", "", "data: x", ""]  # fmt: skip
    messages = [m for m in map(decoder.feed, lines) if m is not None]
    assert len(messages) == 2
    first, second = messages
    assert (first.event, first.id, first.retry, first.data) == ("trial_result", "4", 2000, '{"a":\n 1}')
    # an id-only block dispatches nothing but moves the last event id; the event name does not carry over
    assert (second.event, second.id, second.data) == ("message", "5", "x")


# --- retry policy -------------------------------------------------------------------------------------------


def policy(**kwargs: object) -> RetryPolicy:
    return RetryPolicy(rng=random.Random(0), **kwargs)  # type: ignore[arg-type]


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    p = policy(backoff=0.5, max_backoff=3.0)
    for attempt, ceiling in enumerate([0.5, 1.0, 2.0, 3.0, 3.0]):
        waits = [p.wait(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert len(set(waits)) > 1  # jittered


def test_connect_failures_are_retried_for_every_request_and_read_failures_only_when_idempotent() -> None:
    p = policy(retries=2)
    refused = httpx.ConnectError("refused")
    cut = httpx.ReadError("connection reset")
    assert p.after_error(refused, 0, idempotent=False) is not None
    assert p.after_error(cut, 0, idempotent=True) is not None
    assert p.after_error(cut, 0, idempotent=False) is None  # POST /studies may have been applied
    assert p.after_error(refused, 2, idempotent=True) is None  # bounded


def test_5xx_is_retried_by_idempotency_and_503_always() -> None:
    p = policy()
    assert p.after_response(response(503), 0, idempotent=False) is not None
    assert p.after_response(response(500), 0, idempotent=True) is not None
    assert p.after_response(response(500), 0, idempotent=False) is None
    assert p.after_response(response(422), 0, idempotent=True) is None
    assert p.after_response(response(200), 0, idempotent=True) is None


def test_retry_after_is_honoured_up_to_a_limit_and_429_only_with_it() -> None:
    p = policy(max_retry_after=10)
    assert p.after_response(response(503, headers={"Retry-After": "4"}), 0, idempotent=True) == pytest.approx(
        4, abs=0.3
    )
    assert p.after_response(response(429, headers={"Retry-After": "2"}), 0, idempotent=False) == 2.0
    assert p.after_response(response(429), 0, idempotent=True) is None  # the active-study limit: waiting won't help
    assert p.after_response(response(503, headers={"Retry-After": "60"}), 0, idempotent=True) is None


def test_retry_after_accepts_an_http_date() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 < parse_retry_after(later) <= 30  # type: ignore[operator]
    assert parse_retry_after("soon") is None


def test_a_stream_that_keeps_dropping_gives_up_with_connection_failed() -> None:
    state = proto.EventStreamState(1, after=None, policy=policy(stream_reconnects=2, backoff=0.01), base_url="http://x")
    state.reconnect_delay(httpx.ReadError("cut"))
    state.reconnect_delay(httpx.ReadError("cut"))
    with pytest.raises(ConnectionFailed, match="studies/1/events"):
        state.reconnect_delay(httpx.ReadError("cut"))


def test_the_exception_tree_is_documented_whole_in_one_docstring_and_in_the_guide() -> None:
    import re

    from optforge.client import exceptions

    classes = {
        name for name, obj in vars(exceptions).items() if isinstance(obj, type) and issubclass(obj, OptforgeError)
    }
    tree_names = set(re.findall(r"[├└]── (\w+)", exceptions.__doc__ or "")) | {"OptforgeError"}
    assert tree_names == classes
    guide = (Path(__file__).resolve().parents[2] / "docs" / "sdk.md").read_text()
    assert set(re.findall(r"[├└]── (\w+)", guide)) | {"OptforgeError"} == classes
