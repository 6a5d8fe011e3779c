"""Everything about talking to the service except the I/O, shared by ``Client`` and ``AsyncClient``.

Each endpoint is a function returning a :class:`Call` (method, path, query, body, whether repeating it
is safe). The clients turn a Call into an ``httpx.Request``, send it (with retries), and hand the response
back here: :func:`decode` parses a success into the shared API schema, :func:`error_from_response` turns
an error into the exception from :mod:`optforge.client.exceptions`. The live stream's bookkeeping (last
event id, when to give up reconnecting) is :class:`EventStreamState`.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ValidationError

from optforge.client._models import StudyEventPublic
from optforge.client._retry import NEVER_SENT, RetryPolicy, parse_retry_after
from optforge.client._sse import SSEMessage
from optforge.client.exceptions import (
    ApiError,
    ConnectionFailed,
    FieldError,
    RateLimited,
    ServerError,
    ValidationFailed,
    error_class,
)
from optforge.learned_opt.meta.spec import MetaTrainSpec  # pydantic only: no torch
from optforge.spec import (
    SpecError,
    StudyEventKind,
    StudySpec,
    StudyStatus,
    TaskSpec,
    TrialStatus,
    load_spec,
    read_mapping,
)

M = TypeVar("M", bound=BaseModel)

ENV_URL = "OPTFORGE_URL"
ENV_TOKEN = "OPTFORGE_TOKEN"
DEFAULT_URL = "http://127.0.0.1:8000"  # where `optforge serve` listens by default
API_PREFIX = "/api/v1"
# Submitting validates the search space on the server (a fraction of a second); 30 s is for a loaded box.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
# The live stream sends a keep-alive comment every 15 s while idle: three missed ones mean a dead connection.
STREAM_READ_TIMEOUT = 45.0

SpecLike = StudySpec | Mapping[str, Any] | str | Path
MetaSpecLike = MetaTrainSpec | Mapping[str, Any] | str | Path
TaskLike = TaskSpec | Mapping[str, Any] | str | Path


def resolve_url(url: str | None = None) -> str:
    """``url``, else ``$OPTFORGE_URL``, else http://127.0.0.1:8000; without a trailing ``/`` or ``/api/v1``."""
    raw = (url or os.environ.get(ENV_URL) or DEFAULT_URL).strip()
    source = "url" if url else (ENV_URL if os.environ.get(ENV_URL) else "the default URL")
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{source}: {raw!r} is not an http(s) URL; give e.g. {DEFAULT_URL}")
    return raw.rstrip("/").removesuffix(API_PREFIX)


def resolve_token(token: str | None = None) -> str | None:
    """``token``, else ``$OPTFORGE_TOKEN``, else None (a server running open needs none)."""
    return token or os.environ.get(ENV_TOKEN) or None


def _local_errors(exc: SpecError) -> ValidationFailed:
    return ValidationFailed(exc.errors, status_code=None)


def coerce_spec(spec: SpecLike) -> StudySpec:
    """A StudySpec from a model, a dict, a YAML/JSON file path or YAML/JSON text; ValidationFailed otherwise."""
    try:
        return load_spec(StudySpec, spec)  # type: ignore[arg-type]
    except SpecError as exc:
        raise _local_errors(exc) from None


def coerce_task(task: TaskLike) -> TaskSpec:
    """A TaskSpec from a model, a dict, a path or text (the ``task`` of a StudySpec file is taken too)."""
    if isinstance(task, StudySpec):
        return task.task
    try:
        if isinstance(task, TaskSpec):
            return task
        mapping = read_mapping(task)  # type: ignore[arg-type]
        if "task" in mapping and isinstance(mapping["task"], Mapping):
            return load_spec(StudySpec, mapping).task
        return load_spec(TaskSpec, mapping)
    except SpecError as exc:
        raise _local_errors(exc) from None


@dataclass(frozen=True)
class Call:
    """One API request, before any I/O. ``idempotent``: repeating it cannot do anything twice."""

    method: str
    path: str  # below /api/v1
    params: Mapping[str, Any] | None = None
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    idempotent: bool = True
    accept: frozenset[int] = frozenset()  # error statuses whose body is still a valid response (readyz's 503)

    def query(self) -> dict[str, Any] | None:
        return {k: v for k, v in self.params.items() if v is not None} if self.params else None


@functools.cache
def user_agent() -> str:
    try:
        version = importlib.metadata.version("optforge")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return f"optforge-sdk/{version} httpx/{httpx.__version__}"


def auth_headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def build_request(
    http: httpx.Client | httpx.AsyncClient, base_url: str, call: Call, token: str | None, timeout: httpx.Timeout
) -> httpx.Request:
    return http.build_request(
        call.method,
        base_url + API_PREFIX + call.path,
        params=call.query(),
        json=call.body,
        headers={**auth_headers(token), **call.headers},
        timeout=timeout,
    )


def retry_delay(policy: RetryPolicy, call: Call, response: httpx.Response, attempt: int) -> float | None:
    """Seconds before sending ``call`` again after ``response``, or None when the response is final."""
    if response.status_code in call.accept:  # an answer, not a failure (readyz's 503 says what is down)
        return None
    return policy.after_response(response, attempt, idempotent=call.idempotent)


# --- endpoints ---------------------------------------------------------------------------------------------


def submit_call(spec: StudySpec) -> Call:
    # Only what the user set: the server fills in its own defaults, as it would for a curl request.
    # Not idempotent: the service has no idempotency key, so a retried POST could create a second study.
    return Call("POST", "/studies", body=spec.model_dump(mode="json", exclude_unset=True), idempotent=False)


def list_studies_call(status: StudyStatus | str | None, limit: int, offset: int) -> Call:
    return Call("GET", "/studies", params={"status": _value(status), "limit": limit, "offset": offset})


def study_call(study_id: int) -> Call:
    return Call("GET", f"/studies/{study_id}")


def cancel_call(study_id: int) -> Call:
    return Call("POST", f"/studies/{study_id}/cancel")  # cancelling twice is cancelling once


def delete_call(study_id: int) -> Call:
    return Call("DELETE", f"/studies/{study_id}")


def trials_call(study_id: int, status: TrialStatus | str | None, limit: int, offset: int) -> Call:
    params = {"status": _value(status), "limit": limit, "offset": offset}
    return Call("GET", f"/studies/{study_id}/trials", params=params)


def metrics_call(study_id: int, trial_id: int, after_step: int | None) -> Call:
    return Call("GET", f"/studies/{study_id}/trials/{trial_id}/metrics", params={"after_step": after_step})


def best_call(study_id: int) -> Call:
    return Call("GET", f"/studies/{study_id}/best")


def bests_call(study_id: int) -> Call:
    return Call("GET", f"/studies/{study_id}/bests")


def recommend_call(task: TaskSpec, limit: int) -> Call:
    body = task.model_dump(mode="json", exclude_unset=True)
    return Call("POST", "/configs/recommend", params={"limit": limit}, body=body)  # a read: safe to repeat


def coerce_meta_spec(spec: MetaSpecLike) -> MetaTrainSpec:
    """A MetaTrainSpec from a model, a dict, a YAML/JSON file path or YAML/JSON text; ValidationFailed otherwise."""
    try:
        return load_spec(MetaTrainSpec, spec)  # type: ignore[arg-type]
    except SpecError as exc:
        raise _local_errors(exc) from None


def submit_meta_run_call(spec: MetaTrainSpec) -> Call:
    # Not idempotent, like submit_call: a retried POST could queue a second run.
    return Call("POST", "/meta-runs", body=spec.model_dump(mode="json", exclude_unset=True), idempotent=False)


def meta_runs_call(name: str | None, limit: int, offset: int) -> Call:
    return Call("GET", "/meta-runs", params={"name": name, "limit": limit, "offset": offset})


def meta_run_call(run_id: int) -> Call:
    return Call("GET", f"/meta-runs/{run_id}")


def cancel_meta_run_call(run_id: int) -> Call:
    return Call("POST", f"/meta-runs/{run_id}/cancel")  # cancelling twice is cancelling once


def families_call() -> Call:
    return Call("GET", "/families")


def schedules_call() -> Call:
    return Call("GET", "/schedules")


def health_call() -> Call:
    return Call("GET", "/healthz")


def ready_call() -> Call:
    return Call("GET", "/readyz", accept=frozenset({503}))


def _value(item: object) -> object:
    return getattr(item, "value", item)


# --- responses ---------------------------------------------------------------------------------------------


def dotted(loc: list[Any] | tuple[Any, ...]) -> str:
    """``["body", "search", "n_trials"]`` → ``"search.n_trials"``: paths relative to the body, as specs name them."""
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts)


def error_from_response(response: httpx.Response) -> ApiError:
    """The exception for an error response, with the service's field-level messages."""
    details: list[dict[str, Any]]
    try:
        body = response.json()
        raw = body.get("detail") if isinstance(body, dict) else None
        if isinstance(raw, list) and all(isinstance(d, dict) for d in raw):
            details = raw
        elif isinstance(raw, str):
            details = [{"loc": [], "msg": raw}]
        else:
            raise ValueError("no detail list")
    except (ValueError, json.JSONDecodeError):  # a proxy's HTML page, an empty body...
        text = response.text.strip()[:300]
        details = [{"loc": [], "msg": text or response.reason_phrase or "no message"}]
    errors: list[FieldError] = [(dotted(d.get("loc") or []), str(d.get("msg", ""))) for d in details]
    cls = error_class(response.status_code, str(details[0].get("type", "")) if details else "")
    request = response.request
    kwargs: dict[str, Any] = {
        "status_code": response.status_code,
        "method": request.method,
        "url": str(request.url),
        "details": details,
    }
    if cls is RateLimited:
        kwargs["retry_after"] = parse_retry_after(response.headers.get("Retry-After"))
    return cls(errors, **kwargs)


def decode(call: Call, response: httpx.Response, model: type[M]) -> M:
    """The response body as ``model``; raises the matching ApiError for an error status."""
    check(call, response)
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise ServerError(
            [("(response)", f"the service sent a body that is not a valid {model.__name__}: {exc.error_count()} "
              "problem(s); is the SDK much older or newer than the service?")],
            status_code=response.status_code,
            method=call.method,
            url=str(response.request.url),
        ) from exc  # fmt: skip


def check(call: Call, response: httpx.Response) -> None:
    """Raise the ApiError for an error status (except those ``call.accept``-s)."""
    if response.is_success or response.status_code in call.accept:
        return
    raise error_from_response(response)


def connection_failed(base_url: str, exc: Exception, attempts: int, call: Call | None = None) -> ConnectionFailed:
    """ConnectionFailed saying what went wrong and what to check."""
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, NEVER_SENT) or call is None:
        message = (
            f"cannot reach the optforge service at {base_url}{tries} ({why}); is it running (`optforge serve`)? "
            f"Point the SDK elsewhere with url= or {ENV_URL}"
        )
    else:
        message = f"the connection to {base_url} failed during {call.method} {API_PREFIX}{call.path}{tries} ({why})"
        if not call.idempotent:
            message += "; the request may have been applied: check with `optforge list` before sending it again"
    return ConnectionFailed(message, url=base_url, attempts=attempts)


# --- the live stream ---------------------------------------------------------------------------------------


class EventStreamState:
    """Where a study's live stream is. The clients loop: connect with :meth:`call`, feed each SSE message to
    :meth:`on_message`, and after a drop wait :meth:`reconnect_delay` seconds (which raises once too many
    reconnects in a row brought nothing). ``done`` is set by the ``finished`` event."""

    def __init__(self, study_id: int, *, after: int | None, policy: RetryPolicy, base_url: str) -> None:
        self.study_id = study_id
        self.last_id = after
        self.done = False
        self.failures = 0
        self.policy = policy
        self.base_url = base_url

    def call(self) -> Call:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if self.last_id:
            headers["Last-Event-ID"] = str(self.last_id)  # resume exactly after the last event we saw
        return Call("GET", f"/studies/{self.study_id}/events", headers=headers)

    def on_message(self, message: SSEMessage) -> StudyEventPublic:
        event = StudyEventPublic.model_validate_json(message.data)
        self.last_id = event.id
        self.failures = 0
        if event.kind == StudyEventKind.FINISHED:
            self.done = True
        return event

    def reconnect_delay(self, exc: Exception | None) -> float:
        """Seconds before reconnecting after ``exc`` (a dropped connection; None: the stream ended early).

        Raises ConnectionFailed once ``policy.stream_reconnects`` reconnects in a row brought no event.
        """
        if self.failures >= self.policy.stream_reconnects:
            reason = exc or httpx.RemoteProtocolError("the stream keeps ending before the study finished")
            raise connection_failed(self.base_url, reason, self.failures + 1, self.call()) from exc
        delay = self.policy.wait(self.failures)
        self.failures += 1
        return delay


def stream_timeout(timeout: httpx.Timeout) -> httpx.Timeout:
    """The request timeout with a read timeout long enough for the stream's keep-alive interval."""
    return httpx.Timeout(
        connect=timeout.connect, read=max(timeout.read or 0, STREAM_READ_TIMEOUT), write=timeout.write,
        pool=timeout.pool,
    )  # fmt: skip
