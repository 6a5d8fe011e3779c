"""Retries and stream resumes over real loopback HTTP: a service that fails, restarts, or drops a stream."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from optforge.client import AsyncClient, Client, ConnectionFailed, RetryPolicy, ServerError
from optforge.client.testing import free_port

FAST = RetryPolicy(retries=3, backoff=0.02, max_backoff=0.1)
HEALTH = {"status": "ok", "checks": {}, "version": "test", "auth": "open"}
UNAVAILABLE = {"detail": [{"loc": [], "msg": "the database is unavailable; retry shortly", "type": "unavailable"}]}
STUDY = {"name": "s"}


def test_503s_are_retried_until_the_service_answers(scripted_server) -> None:  # type: ignore[no-untyped-def]
    R = scripted_server.Reply
    scripted_server.replies(R(503, UNAVAILABLE), R(503, UNAVAILABLE), R(200, HEALTH))
    with Client(scripted_server.url, retry=FAST) as client:
        assert client.health().version == "test"
    assert len(scripted_server.seen) == 3


def test_retries_are_bounded_and_end_in_server_error_with_the_message(scripted_server) -> None:  # type: ignore[no-untyped-def]
    scripted_server.replies(scripted_server.Reply(503, UNAVAILABLE))
    with Client(scripted_server.url, retry=FAST) as client, pytest.raises(ServerError) as info:
        client.health()
    assert len(scripted_server.seen) == FAST.retries + 1
    assert info.value.errors == [("", "the database is unavailable; retry shortly")]


def test_a_500_on_submit_is_not_repeated_since_it_may_have_created_the_study(scripted_server) -> None:  # type: ignore[no-untyped-def]
    error = {"detail": [{"loc": [], "msg": "internal error; it was logged on the server", "type": "internal"}]}
    scripted_server.replies(scripted_server.Reply(500, error))
    with Client(scripted_server.url, retry=FAST) as client, pytest.raises(ServerError, match="it was logged"):
        client.submit(STUDY)
    assert [(s.method, s.path) for s in scripted_server.seen] == [("POST", "/api/v1/studies")]
    assert json.loads(scripted_server.seen[0].body) == STUDY


def test_the_token_is_sent_as_a_bearer_header(scripted_server, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OPTFORGE_TOKEN", "secret-from-env")
    scripted_server.replies(scripted_server.Reply(200, HEALTH))
    with Client(scripted_server.url) as client:
        client.health()
    assert scripted_server.seen[0].headers["Authorization"] == "Bearer secret-from-env"
    assert scripted_server.seen[0].headers["User-Agent"].startswith("optforge-sdk/")


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps(HEALTH).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_connection_refused_is_retried_until_the_service_is_up() -> None:
    port = free_port()
    servers: list[HTTPServer] = []

    def start_late() -> None:
        time.sleep(0.4)  # the client's first attempts meet a closed port
        server = HTTPServer(("127.0.0.1", port), _Health)
        servers.append(server)
        server.serve_forever()

    threading.Thread(target=start_late, daemon=True).start()
    patient = RetryPolicy(retries=8, backoff=0.1, max_backoff=0.4)
    started = time.monotonic()
    try:
        with Client(f"http://127.0.0.1:{port}", retry=patient) as client:
            assert client.health().status == "ok"
        assert time.monotonic() - started >= 0.35
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def test_a_service_that_stays_down_raises_connection_failed_saying_how_to_fix_it() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with Client(url, retry=FAST) as client, pytest.raises(ConnectionFailed) as info:
        client.studies()
    assert info.value.attempts == FAST.retries + 1
    assert "cannot reach the optforge service at" in str(info.value)
    assert "OPTFORGE_URL" in str(info.value)


def _sse(*events: tuple[int, str]) -> str:
    return "".join(
        f"id: {i}\nevent: {kind}\ndata: {json.dumps({'id': i, 'study_id': 1, 'kind': kind, 'data': {}, 'time': 0})}\n\n"
        for i, kind in events
    )


def test_a_dropped_stream_resumes_after_the_last_event_with_last_event_id(scripted_server) -> None:  # type: ignore[no-untyped-def]
    R = scripted_server.Reply
    scripted_server.replies(
        R(200, ": ping\n\n" + _sse((1, "started"), (2, "trial_started")), drop=True),
        R(200, _sse((3, "trial_result"), (4, "finished"))),
    )
    with Client(scripted_server.url, retry=FAST) as client:
        events = list(client.events(1))
    assert [(e.id, e.kind) for e in events] == [
        (1, "started"),
        (2, "trial_started"),
        (3, "trial_result"),
        (4, "finished"),
    ]
    first, second = scripted_server.seen
    assert "Last-Event-ID" not in first.headers
    assert second.headers["Last-Event-ID"] == "2"


def test_the_async_client_retries_and_resumes_the_same_way(scripted_server) -> None:  # type: ignore[no-untyped-def]
    R = scripted_server.Reply
    scripted_server.replies(
        R(503, UNAVAILABLE),
        R(200, _sse((5, "trial_result")), drop=True),
        R(200, _sse((6, "finished"))),
    )

    async def run() -> list[int]:
        async with AsyncClient(scripted_server.url, retry=FAST) as client:
            return [e.id async for e in client.events(1, after=4)]

    assert asyncio.run(run()) == [5, 6]
    assert [s.headers.get("Last-Event-ID") for s in scripted_server.seen] == ["4", "4", "5"]


def test_a_not_ready_service_is_reported_at_once_not_retried(scripted_server) -> None:  # type: ignore[no-untyped-def]
    body = {"status": "unavailable", "checks": {"database": "ok", "ray": "not connected"}, "version": "t"}
    scripted_server.replies(scripted_server.Reply(503, body))
    with Client(scripted_server.url, retry=FAST) as client:
        ready = client.ready()
    assert ready.status == "unavailable" and ready.checks["ray"] == "not connected"
    assert len(scripted_server.seen) == 1
