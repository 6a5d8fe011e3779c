"""A server-sent-events decoder (the WHATWG ``text/event-stream`` rules), fed one line at a time.

Thirty lines do not justify a dependency (httpx-sse): the clients read lines with httpx's
``iter_lines()``/``aiter_lines()`` and hand each to :meth:`SSEDecoder.feed`, which returns a message
when a blank line ends one. Comments (``: ping``, the service's keep-alives) are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SSEMessage:
    """One dispatched message. ``id`` is the stream's last event id at dispatch (ids persist across messages)."""

    event: str
    data: str
    id: str | None
    retry: int | None


class SSEDecoder:
    """Accumulates fields until a blank line; ``feed`` returns the finished message or None."""

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._last_id: str | None = None
        self._retry: int | None = None

    def feed(self, line: str) -> SSEMessage | None:
        line = line.rstrip("\r\n")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._last_id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)
        return None  # unknown fields are ignored, as the standard says

    def _dispatch(self) -> SSEMessage | None:
        if not self._data:  # a message without data is not dispatched (but its id is kept)
            self._event = ""
            return None
        message = SSEMessage(self._event or "message", "\n".join(self._data), self._last_id, self._retry)
        self._event, self._data = "", []
        return message
