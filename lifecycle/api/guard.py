"""The API's front door, before any body is read: size limit, then authentication.

1. A body announced larger than MAX_REQUEST_BYTES (``Content-Length``) is a 413 at once,
   unread; a streamed body that grows past it is cut off with a 413 as soon as it does. A
   body that stalls longer than API_HEADER_TIMEOUT_SECONDS between two parts is a 408.
2. Every route but the public ones (``PUBLIC``) and the console's (``CONSOLE``) needs a valid
   bearer token: without one the answer is a 401 before the body is parsed. The principal is
   kept in the request's state for the routes' role checks (``lifecycle.api.deps``).
3. ``/console`` paths authenticate with the console's session cookie instead
   (:mod:`lifecycle.console.session`): every console page checks it itself, and a bearer
   token gives no access there. The API's routes never read that cookie, so a browser's
   session cannot call the API (no CSRF on the API). The body limit holds for both.
"""

from __future__ import annotations

import asyncio
import re

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lifecycle.api.auth import Principal, TokenRegistry
from lifecycle.api.problems import ProblemError, problem

#: Routes without a bearer token: health and metrics (network-restricted), the docs and their
#: static assets, Stripe's webhook (its signature authenticates it) and archive downloads
#: (their link signature does), and the public keys of deletion certificates (anyone verifies).
PUBLIC = re.compile(
    r"^/(?:health|metrics|openapi\.json|docs(?:/.*)?|redoc|static-offline-docs/.*|webhooks/stripe"
    r"|exports/[^/]+/download|certificates/keys)$"
)

#: The console's pages and assets: authenticated by their session cookie, not a bearer token.
CONSOLE = re.compile(r"^/console(?:/.*)?$")


class BodyTooLarge(HTTPException):
    """A request body past MAX_REQUEST_BYTES (413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body exceeds MAX_REQUEST_BYTES ({limit} bytes)")


class BodyTooSlow(HTTPException):
    """A request body that stalled past API_HEADER_TIMEOUT_SECONDS (408)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            408,
            f"the request body stalled for more than {seconds:g} s (API_HEADER_TIMEOUT_SECONDS)",
        )


def authenticate(registry: TokenRegistry, authorization: str | None) -> Principal:
    """The principal of an ``Authorization: Bearer <token>`` header; raises ProblemError 401."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ProblemError(401, "missing bearer token: send 'Authorization: Bearer <token>'")
    principal = registry.authenticate(token.strip())
    if principal is None:
        raise ProblemError(401, "invalid bearer token")
    return principal


class Guard:
    """ASGI middleware: the body limit and authentication described in the module."""

    def __init__(self, app: ASGIApp, max_body: int, body_timeout: float) -> None:
        self.app, self.max_body, self.body_timeout = app, max_body, body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            self._check_length(headers.get("content-length"))
            path = scope["path"]
            if not PUBLIC.match(path) and not CONSOLE.match(path):
                registry = getattr(scope["app"].state, "tokens", None)
                if not isinstance(registry, TokenRegistry):
                    raise ProblemError(503, "the API is starting: no tokens loaded yet")
                principal = authenticate(registry, headers.get("authorization"))
                scope.setdefault("state", {})["principal"] = principal
        except ProblemError as exc:
            response = problem(exc.status, exc.detail, instance=scope["path"], **exc.ext)
            await response(scope, receive, send)
            return
        await self.app(scope, self._bounded(receive), send)

    def _check_length(self, value: str | None) -> None:
        if value is None:
            return
        if not value.isdigit():
            raise ProblemError(400, f"Content-Length {value!r} is not a number of bytes")
        if int(value) > self.max_body:
            raise ProblemError(
                413, f"the request body exceeds MAX_REQUEST_BYTES ({self.max_body} bytes)"
            )

    def _bounded(self, receive: Receive) -> Receive:
        """``receive`` that raises BodyTooLarge once more than ``max_body`` bytes came in, and
        BodyTooSlow when a part of the body takes longer than ``body_timeout``."""
        seen, done = 0, False

        async def bounded() -> Message:
            nonlocal seen, done
            if done:  # after the body, receive() waits for the disconnect: no bound
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.body_timeout)
            except TimeoutError:
                raise BodyTooSlow(self.body_timeout) from None
            if message["type"] == "http.request":
                done = not message.get("more_body", False)
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise BodyTooLarge(self.max_body)
            return message

        return bounded
