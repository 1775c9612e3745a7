"""The console's session and CSRF tokens.

1. Sign-in: the API token is checked against the API's :class:`TokenRegistry`, then kept in
   the ``console_session`` cookie encrypted and authenticated (Fernet, key derived from
   SIGNING_SECRET), so the cookie does not reveal the token; it expires after
   ``SESSION_SECONDS``. Every request decrypts it and authenticates the token again, so a
   token removed from API_TOKENS_FILE ends its sessions at the next restart.
2. The cookie is HttpOnly and SameSite=Strict, and Secure when the request came over TLS.
3. CSRF (signed double submit): ``console_csrf`` holds a random value; every form carries its
   HMAC-SHA256 under SIGNING_SECRET, and every POST is refused (403) unless the two match.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken
from starlette.requests import Request
from starlette.responses import Response

from lifecycle.api.auth import Principal, TokenRegistry

SESSION_COOKIE = "console_session"
CSRF_COOKIE = "console_csrf"
#: Lifetime of a console session (seconds): a working day.
SESSION_SECONDS = 12 * 3600


class ConsoleKeys:
    """The session cipher and the CSRF key, both derived from SIGNING_SECRET."""

    def __init__(self, signing_secret: str) -> None:
        secret = signing_secret.encode()
        session_key = hashlib.sha256(b"console-session\0" + secret).digest()
        self.fernet = Fernet(base64.urlsafe_b64encode(session_key))
        self.csrf_key = hashlib.sha256(b"console-csrf\0" + secret).digest()

    def seal(self, token: str) -> str:
        """The session cookie's value for API token ``token``."""
        return self.fernet.encrypt(token.encode()).decode()

    def principal(self, registry: TokenRegistry, cookie: str | None) -> Principal | None:
        """The principal of a session cookie; None when absent, forged, expired or its token
        is no longer known."""
        if not cookie:
            return None
        try:
            token = self.fernet.decrypt(cookie.encode(), ttl=SESSION_SECONDS).decode()
        except (InvalidToken, UnicodeDecodeError):
            return None
        return registry.authenticate(token)

    def csrf_token(self, nonce: str) -> str:
        """The form token of CSRF cookie value ``nonce``."""
        return hmac.new(self.csrf_key, nonce.encode(), hashlib.sha256).hexdigest()

    def csrf_valid(self, nonce: str | None, token: str | None) -> bool:
        if not nonce or not token:
            return False
        return hmac.compare_digest(self.csrf_token(nonce), token)


def csrf_nonce(request: Request) -> tuple[str, bool]:
    """The request's CSRF cookie value, and whether it is new (to be set on the response)."""
    nonce = request.cookies.get(CSRF_COOKIE)
    if nonce and len(nonce) <= 64:
        return nonce, False
    return secrets.token_urlsafe(24), True


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    """Set a console cookie: HttpOnly, SameSite=Strict, path /console, Secure over TLS."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
