"""When to try a request again, and how long to wait first. Pure decisions; the clients do the sleeping.

httpx's own ``retries=`` only re-tries failed *connects*; this policy also covers 5xx responses,
``Retry-After`` and dropped connections, and refuses to repeat a request that may already have had an
effect (``POST /studies`` has no idempotency key, so a read timeout there is raised, not retried).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

# The request never left this machine, so repeating it cannot do anything twice.
NEVER_SENT: tuple[type[Exception], ...] = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# The request may have reached the service: repeat only what is safe to repeat.
MAYBE_SENT: tuple[type[Exception], ...] = (
    httpx.ReadTimeout,
    httpx.WriteTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)
# 503 means the service did not handle the request (RFC 9110 §15.6.4): safe for any method. 500/502/504
# may come after the handler ran, so only idempotent requests repeat them.
RETRY_ANY = frozenset({503})
RETRY_IDEMPOTENT = frozenset({500, 502, 504})


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None when absent or malformed."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with jitter.

    The wait before retry ``n`` (0-based) is drawn from ``[d/2, d]`` with ``d = min(max_backoff,
    backoff * 2**n)``: the jitter keeps many clients from retrying in lock-step after a restart, and
    the ``d/2`` floor keeps every wait long enough to matter. A ``Retry-After`` from the service
    replaces the drawn wait when it is longer, up to ``max_retry_after``.
    """

    # 4 retries wait ~0.25+0.5+1+2 ≈ 3.75 s at most: enough to ride out a service restart or a database
    # blip, short enough that a dead service is reported while the user still looks at the screen.
    retries: int = 4
    backoff: float = 0.25  # seconds before the first retry; doubles each time
    max_backoff: float = 8.0  # no single wait is longer, whatever the attempt
    # A Retry-After above this is not waited for: the error is raised with its retry_after instead.
    max_retry_after: float = 30.0
    # The live stream reconnects this many times in a row without receiving an event before giving up.
    stream_reconnects: int = 8
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def wait(self, attempt: int) -> float:
        """The jittered wait before retry ``attempt`` (0-based)."""
        ceiling = min(self.max_backoff, self.backoff * 2**attempt)
        return self.rng.uniform(ceiling / 2, ceiling)

    def after_error(self, exc: Exception, attempt: int, *, idempotent: bool) -> float | None:
        """Seconds to wait before retrying after transport error ``exc``, or None to give up."""
        if attempt >= self.retries:
            return None
        if isinstance(exc, NEVER_SENT) or (idempotent and isinstance(exc, MAYBE_SENT)):
            return self.wait(attempt)
        return None

    def after_response(self, response: httpx.Response, attempt: int, *, idempotent: bool) -> float | None:
        """Seconds to wait before retrying after ``response``, or None when it is final (success or error)."""
        status = response.status_code
        if attempt >= self.retries or status < 429:
            return None
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if retry_after is not None and retry_after > self.max_retry_after:
            return None
        if status == 429:
            # Only a token-rate refusal carries Retry-After and is refused before anything happens; the
            # active-study limit has none and will not clear by waiting a few seconds.
            return retry_after
        if status in RETRY_ANY or (idempotent and status in RETRY_IDEMPOTENT):
            return max(self.wait(attempt), retry_after or 0.0)
        return None


NO_RETRIES = RetryPolicy(retries=0, stream_reconnects=0)
