"""One error shape for every failure: ``{"detail": [{"loc": [...], "msg": ..., "type": ...}]}``.

Validation errors keep pydantic's field paths but drop the echoed ``input`` (it may be a megabyte of
garbage, or a secret the user pasted into the wrong field); messages and path parts that quote a huge value
are clipped in the middle. HTTP errors raised anywhere become the same shape with ``loc`` naming the part
of the request at fault. Storage errors map to 404/409/503. Anything else is logged with its traceback and
answered with a 500 that says only that it was logged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from optforge.spec._api import ErrorDetail, ErrorPublic
from optforge.storage.errors import Conflict, NotFound, StorageUnavailable

log = logging.getLogger("optforge.service")

Loc = Sequence[str | int]


class ApiError(Exception):
    """An error response with field-level details. Raise it from routes and dependencies."""

    def __init__(
        self,
        status_code: int,
        msg: str,
        *,
        loc: Loc = (),
        type: str = "value_error",
        headers: dict[str, str] | None = None,
        details: list[ErrorDetail] | None = None,
    ) -> None:
        self.status_code = status_code
        self.details = details or [ErrorDetail(loc=list(loc), msg=msg, type=type)]
        self.headers = headers
        super().__init__(msg)


def not_found(resource: str, key: object) -> ApiError:
    """404 for a resource that does not exist *or is not yours*: the two are indistinguishable on purpose."""
    return ApiError(404, f"no {resource} with id {key}", loc=("path", f"{resource}_id"), type="not_found")


# Longest message and path part an error carries. Messages quote the value at fault ("unknown optimizer
# family '...'; choose one of: ..."), and a 1 MB value would come back whole: its middle is cut instead,
# which keeps the start of the value and the end of the message, where the fix is. 1,000 characters hold
# every real message (the longest, naming every family, is ~400).
MAX_MSG_CHARS = 1000
MAX_LOC_CHARS = 200  # a path part is a field name or a dict key: a longer one is a pasted value


def clip(text: str, limit: int) -> str:
    """``text``, or its two ends around a marker saying how much was cut when it is longer than ``limit``."""
    if len(text) <= limit:
        return text
    head = limit // 4
    tail = limit - head
    return f"{text[:head]}...[{len(text) - head - tail} characters cut]...{text[-tail:]}"


def error_response(status_code: int, details: list[ErrorDetail], headers: dict[str, str] | None = None) -> JSONResponse:
    """The ``ErrorPublic`` response, with over-long messages and path parts clipped (``clip``)."""
    clipped = [
        ErrorDetail(
            loc=[clip(p, MAX_LOC_CHARS) if isinstance(p, str) else p for p in d.loc],
            msg=clip(d.msg, MAX_MSG_CHARS),
            type=d.type,
        )
        for d in details
    ]
    body = ErrorPublic(detail=clipped).model_dump(mode="json")
    return JSONResponse(body, status_code=status_code, headers=headers)


def validation_details(errors: Sequence[Any]) -> list[ErrorDetail]:
    """pydantic/FastAPI error dicts as ErrorDetails: field path, message without the 'Value error, ' noise."""
    out = []
    for err in errors:
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        loc = [p if isinstance(p, (int, str)) else str(p) for p in err.get("loc", ())]
        out.append(ErrorDetail(loc=loc, msg=msg, type=str(err.get("type", "value_error"))))
    return out


_HTTP_LOC = {
    401: ["header", "authorization"],
    403: ["header", "authorization"],
    405: ["method"],
    404: ["path"],
    413: ["body"],
    429: ["header", "authorization"],
}
_HTTP_MSG = {413: "request body too large", 404: "no such endpoint", 405: "method not allowed for this endpoint"}


async def _on_api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status_code, exc.details, exc.headers)


async def _on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, validation_details(exc.errors()))


# FastAPI's answer to a body that cannot be decoded at all (not UTF-8): a bare 400. It is invalid input like
# malformed JSON, which FastAPI answers with 422, so it gets the same status, shape and type.
_UNPARSABLE_BODY = "There was an error parsing the body"


async def _on_http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == _UNPARSABLE_BODY:
        msg = "the request body is not JSON: send UTF-8 encoded JSON with 'Content-Type: application/json'"
        return error_response(422, [ErrorDetail(loc=["body"], msg=msg, type="json_invalid")])
    msg = exc.detail if isinstance(exc.detail, str) and exc.detail not in ("Not Found", "Content Too Large") else None
    msg = msg or _HTTP_MSG.get(exc.status_code, str(exc.detail))
    detail = ErrorDetail(loc=_HTTP_LOC.get(exc.status_code, []), msg=msg, type=f"http_{exc.status_code}")
    return error_response(exc.status_code, [detail], dict(exc.headers or {}))


async def _on_not_found(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, NotFound)
    return error_response(404, [ErrorDetail(loc=["path"], msg=str(exc), type="not_found")])


async def _on_conflict(_request: Request, exc: Exception) -> JSONResponse:
    return error_response(409, [ErrorDetail(loc=[], msg=str(exc), type="conflict")])


async def _on_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable: %s", exc)
    detail = ErrorDetail(loc=[], msg="the database is unavailable; retry shortly", type="unavailable")
    return error_response(503, [detail], {"Retry-After": "2"})


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    detail = ErrorDetail(loc=[], msg="internal error; it was logged on the server", type="internal")
    return error_response(500, [detail])


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error response the ``ErrorPublic`` shape."""
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(NotFound, _on_not_found)
    app.add_exception_handler(Conflict, _on_conflict)
    app.add_exception_handler(StorageUnavailable, _on_unavailable)
    app.add_exception_handler(Exception, _on_unexpected)
