"""Reject hostile request bodies before anything parses them: too large, or nested too deeply.

Both answers use the API's error shape (FastAPI's own ``max_body_size`` answers 413 in plain text when
the declared length is too large, whatever handler the app installs, hence this middleware). The size is
checked on the declared ``Content-Length`` before reading, and on the bytes as they arrive for chunked
bodies. The depth check exists because Python's ``json`` module recurses: ``[[[[...]]]]`` a hundred
thousand levels deep fits in 200 KB and would end in a RecursionError (a 500) or a very slow validation.
"""

from __future__ import annotations

import re
from itertools import accumulate

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from optforge.service.errors import error_response
from optforge.spec._api import ErrorDetail

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS_ONLY = bytes(range(256)).translate(None, b"[]{}")  # every byte except brackets, for deletion
_STEP = [1 if c in b"[{" else -1 if c in b"]}" else 0 for c in range(256)]
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def json_depth(body: bytes) -> int:
    """The deepest nesting of ``[`` / ``{`` in ``body``, ignoring brackets inside JSON strings."""
    brackets = _STRING.sub(b"", body).translate(None, _BRACKETS_ONLY)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)  # C loops: ~80 ms per MB of brackets


class RequestGuard:
    """ASGI middleware: buffers request bodies (within the size limit) and refuses over-deep JSON."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_json_depth: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_json_depth = max_json_depth

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = ErrorDetail(
            loc=["body"], msg=f"request body too large; the limit is {self.max_body_bytes} bytes", type="too_large"
        )
        await error_response(413, [detail])(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        depth = json_depth(body)
        if depth > self.max_json_depth:
            detail = ErrorDetail(
                loc=["body"],
                msg=f"JSON nested {depth} levels deep; the limit is {self.max_json_depth}",
                type="too_deep",
            )
            await error_response(422, [detail])(scope, receive, send)
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
