"""Fixtures for the SDK tests: a scripted HTTP server on loopback (for retries and stream resumes).

The scripted server is a real ``http.server`` on 127.0.0.1: the SDK talks to it through httpx's real
network transport, so what is tested is what a user meets when a service restarts or a proxy drops a
connection, without mocking httpx.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Reply:
    """What the scripted server answers to one request. ``drop``: close the connection after ``body``
    without ending a chunked response (a dropped stream)."""

    status: int = 200
    body: bytes | dict | list | str = b""
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class ScriptedServer:
    """Answers each request with ``script(request)`` (set it, or queue replies with :meth:`replies`)."""

    Reply = Reply  # tests build replies as scripted_server.Reply(...)

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.script: Callable[[Seen], Reply] = lambda _: Reply(404, {"detail": [{"loc": [], "msg": "no script"}]})
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(self.command, self.path, dict(self.headers.items()), self.rfile.read(length))
                server.seen.append(seen)
                reply = server.script(seen)
                body = reply.body
                if isinstance(body, dict | list):
                    body = json.dumps(body).encode()
                elif isinstance(body, str):
                    body = body.encode()
                self.send_response(reply.status)
                headers = dict(reply.headers)
                content_type = "application/json" if isinstance(reply.body, dict | list) else "text/event-stream"
                self.send_header("Content-Type", headers.pop("Content-Type", content_type))
                for name, value in headers.items():
                    self.send_header(name, value)
                if reply.drop:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self.wfile.write(f"{len(body):x}\r\n".encode() + body + b"\r\n")
                    self.wfile.flush()
                    self.close_connection = True  # no final 0-chunk: the client sees the stream cut
                    return
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_DELETE = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def replies(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies`` in order; the last one repeats."""
        queue = list(replies)

        def script(_: Seen) -> Reply:
            return queue.pop(0) if len(queue) > 1 else queue[0]

        self.script = script

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def scripted_server() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    server.thread.start()
    yield server
    server.close()
