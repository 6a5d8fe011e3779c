"""Every exception the SDK raises, in one tree. Catch ``OptforgeError`` to catch them all.

::

    OptforgeError                   base of everything below
    ├── ConnectionFailed            the service could not be reached (connection refused, DNS, TLS,
    │                               timeouts), after the retries; .url, .attempts
    ├── ApiError                    the service answered with an error status; .status_code,
    │   │                           .errors [(loc, msg)], .details (the raw ErrorPublic items), .method, .url
    │   ├── ValidationFailed        400, 413 or 422: the request is invalid. .errors names each field,
    │   │                           e.g. ("search.n_trials", "5000 is above this server's limit of 1000 ...").
    │   │                           Also raised *before* sending (status_code None) when a spec fails
    │   │                           local validation, with the same field paths.
    │   ├── Unauthorized            401: no token, or an unknown, revoked or expired one
    │   ├── Forbidden               403: not allowed, e.g. a spec with user code on a server that runs none
    │   ├── NotFound                404: no such study or trial, or it belongs to someone else
    │   │   └── NotReady            404: the study exists but has no best configuration yet
    │   ├── Conflict                409: the request conflicts with the stored state
    │   ├── RateLimited             429: too many requests (.retry_after seconds) or too many active studies
    │   └── ServerError             5xx, after the retries: the service failed; its log has the traceback
    ├── StudyFailed                 Study.wait(): the study ended with status "failed"; .study, .error
    └── WaitTimeout                 Study.wait(timeout=...) ran out; also a builtin TimeoutError

Field paths (``loc``) are dotted and relative to the request body, so a server error on
``["body", "search", "n_trials"]`` and a local validation error of the same field both read
``"search.n_trials"``. Parts outside the body keep their prefix: ``"header.authorization"``,
``"path.study_id"``, ``"query.status"``.

What is retried (exponential backoff with jitter, bounded by ``RetryPolicy``) before any of these is
raised: connection errors and 502/503/504 (and 500) for idempotent requests; for ``POST /studies``,
which the service cannot de-duplicate, only failures where the request never reached the service
(connect errors) and 503; 429 with a ``Retry-After`` the policy accepts. Everything else is raised at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optforge.client._sync import Study

Loc = str
FieldError = tuple[Loc, str]


class OptforgeError(Exception):
    """Base class of every error the optforge SDK raises."""


class ConnectionFailed(OptforgeError):
    """The service at ``url`` could not be reached after ``attempts`` tries."""

    def __init__(self, message: str, *, url: str = "", attempts: int = 1) -> None:
        self.url = url
        self.attempts = attempts
        super().__init__(message)


class ApiError(OptforgeError):
    """The service answered ``status_code`` with field-level ``errors`` (``(loc, msg)`` pairs)."""

    def __init__(
        self,
        errors: Sequence[FieldError],
        *,
        status_code: int | None = None,
        method: str = "",
        url: str = "",
        details: Sequence[dict[str, Any]] = (),
    ) -> None:
        self.errors: list[FieldError] = list(errors)
        self.status_code = status_code
        self.method = method
        self.url = url
        self.details = list(details)
        super().__init__(self._message())

    def _message(self) -> str:
        where = f"{self.method} {self.url}".strip()
        head = f"{self.status_code} from {where}" if self.status_code is not None else "invalid input"
        if len(self.errors) == 1:
            loc, msg = self.errors[0]
            return f"{head}: {loc}: {msg}" if loc else f"{head}: {msg}"
        lines = "\n".join(f"  {loc or '(request)'}: {msg}" for loc, msg in self.errors)
        return f"{head}:\n{lines}"

    @property
    def messages(self) -> list[str]:
        """Just the messages, in order (handy for logging)."""
        return [msg for _, msg in self.errors]


class ValidationFailed(ApiError):
    """The request is invalid: ``errors`` lists ``(field path, message)`` for every bad field."""


class Unauthorized(ApiError):
    """401: send a valid token (argument ``token=`` or ``OPTFORGE_TOKEN``; ``optforge token create``)."""


class Forbidden(ApiError):
    """403: the request is understood but refused (e.g. user code on a server without --allow-user-code)."""


class NotFound(ApiError):
    """404: no such resource, or it is not yours (the service does not tell the two apart)."""


class NotReady(NotFound):
    """404 for a study that exists but has no best configuration yet (it is saved when the study finishes)."""


class Conflict(ApiError):
    """409: the request conflicts with what is stored."""


class RateLimited(ApiError):
    """429: too many requests. ``retry_after`` (seconds) says when to try again, when the service said."""

    def __init__(self, errors: Sequence[FieldError], *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(errors, **kwargs)


class ServerError(ApiError):
    """5xx after the retries: the service failed (its log has the details)."""


class StudyFailed(OptforgeError):
    """A waited-for study ended with status ``failed``; ``error`` is the service's reason."""

    def __init__(self, study: Study | Any) -> None:
        self.study = study
        self.error: str | None = study.data.error
        super().__init__(f"study {study.id} ({study.name!r}) failed: {self.error or 'no reason given'}")


class WaitTimeout(OptforgeError, TimeoutError):
    """``Study.wait(timeout=...)`` returned before the study finished; the study keeps running."""


STATUS_ERRORS: dict[int, type[ApiError]] = {
    400: ValidationFailed,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: ValidationFailed,
    422: ValidationFailed,
    429: RateLimited,
}


def error_class(status_code: int, error_type: str = "") -> type[ApiError]:
    """The exception class for an error response (``error_type`` is the first detail's ``type``)."""
    if status_code == 404 and error_type == "not_ready":
        return NotReady
    if status_code >= 500:
        return ServerError
    return STATUS_ERRORS.get(status_code, ApiError)


__all__ = [
    "ApiError",
    "Conflict",
    "ConnectionFailed",
    "FieldError",
    "Forbidden",
    "NotFound",
    "NotReady",
    "OptforgeError",
    "RateLimited",
    "ServerError",
    "StudyFailed",
    "Unauthorized",
    "ValidationFailed",
    "WaitTimeout",
    "error_class",
]
