"""How the API is served: uvicorn with bounded waits for slow and idle clients.

- API_HEADER_TIMEOUT_SECONDS: a connection that has not sent a complete request head within
  this time after it opened (or after its previous response) is closed. uvicorn has no such
  setting, so :class:`HeaderTimeoutH11` adds it to its h11 protocol.
- API_KEEP_ALIVE_SECONDS: uvicorn's ``timeout_keep_alive``, idle kept-alive connections.
- Request heads are bounded by h11 (``h11_max_incomplete_event_size``, 16 KiB), bodies by
  MAX_REQUEST_BYTES (:mod:`lifecycle.api.guard`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from lifecycle.config import Settings

#: Largest request head (request line and headers) in bytes.
MAX_HEAD_BYTES = 16 * 1024


class HeaderTimeoutH11(H11Protocol):
    """uvicorn's h11 protocol, closing connections whose request head is too slow."""

    header_timeout: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer: asyncio.TimerHandle | None = None
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        started = self.cycle is not None and not self.cycle.response_complete
        if started and self._head_timer is not None:
            self._head_timer.cancel()  # the head is complete: the request runs
            self._head_timer = None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request's head gets the same bound

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_too_slow)

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self.cycle is None or self.cycle.response_complete:
            self.transport.close()


def uvicorn_config(app: Any, settings: Settings, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration for ``app`` on API_HOST:API_PORT with the bounds above;
    ``options`` override uvicorn's own (e.g. ``port``, ``log_level``)."""
    protocol = type(
        "BoundedH11", (HeaderTimeoutH11,), {"header_timeout": settings.api_header_timeout_seconds}
    )
    values: dict[str, Any] = {
        "host": settings.api_host,
        "port": settings.api_port,
        "http": protocol,
        "timeout_keep_alive": settings.api_keep_alive_seconds,
        "h11_max_incomplete_event_size": MAX_HEAD_BYTES,
        "log_config": None,
    }
    values.update(options)
    return uvicorn.Config(app, **values)
