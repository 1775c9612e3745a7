"""Who may call the API: named bearer tokens with roles.

Tokens come from API_TOKENS_FILE (TOML, one ``[[tokens]]`` table per token with ``name``,
``role`` and ``sha256``, the hex SHA-256 of the token: the file holds no plain secret) and from
API_TOKEN, the single ``admin`` token named ``api`` of the embedded default. A presented token
is hashed and compared in constant time with every known hash.

Roles (``ROLES``): ``viewer`` reads; ``operator`` runs lifecycle operations; ``dpo`` places and
releases legal holds and reads deletion certificates; ``admin`` may do everything. A route
names the role it needs; a token whose role does not grant it gets a 403 naming that role.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lifecycle.domain.errors import ConfigError

Role = Literal["viewer", "operator", "dpo", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "dpo", "admin")
#: What each role may do: the roles whose routes it may call.
GRANTS: dict[Role, frozenset[Role]] = {
    "viewer": frozenset({"viewer"}),
    "operator": frozenset({"viewer", "operator"}),
    "dpo": frozenset({"viewer", "dpo"}),
    "admin": frozenset(ROLES),
}
#: Name of the API_TOKEN's principal (the audit log's actor for it).
DEFAULT_TOKEN_NAME = "api"
TOKEN_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_NAME_RE = re.compile(TOKEN_NAME_PATTERN)
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Principal:
    """The caller behind a valid token: its name (the audit actor) and its role."""

    name: str
    role: Role

    def may(self, needed: Role) -> bool:
        """Whether this principal's role grants ``needed``."""
        return needed in GRANTS[self.role]


@dataclass(frozen=True)
class TokenEntry:
    name: str
    role: Role
    sha256: bytes


def token_hash(token: str) -> str:
    """Hex SHA-256 of ``token`` (UTF-8), as API_TOKENS_FILE stores it."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class TokenRegistry:
    """The known tokens; :meth:`authenticate` maps a presented token to its principal."""

    def __init__(self, entries: list[TokenEntry]) -> None:
        self.entries = entries

    @classmethod
    def load(cls, api_token: str | None, tokens_file: Path | None) -> TokenRegistry:
        """API_TOKEN (admin, named ``api``) plus the tokens of ``tokens_file``.

        Raises ConfigError naming the file and the entry when the file is unreadable, a name
        is invalid or repeated, a role unknown or a hash not 64 hex digits.
        """
        entries: list[TokenEntry] = []
        if api_token:
            entries.append(
                TokenEntry(DEFAULT_TOKEN_NAME, "admin", bytes.fromhex(token_hash(api_token)))
            )
        if tokens_file is not None:
            entries.extend(read_tokens_file(tokens_file, taken={e.name for e in entries}))
        return cls(entries)

    def authenticate(self, token: str) -> Principal | None:
        """The principal of ``token``, or None. Every entry is compared (constant time per
        entry), so the time taken does not tell which entry matched."""
        presented = bytes.fromhex(token_hash(token))
        found: TokenEntry | None = None
        for entry in self.entries:
            if hmac.compare_digest(entry.sha256, presented):
                found = entry
        return None if found is None else Principal(found.name, found.role)


def read_tokens_file(path: Path, taken: set[str] | None = None) -> list[TokenEntry]:
    """The entries of an API_TOKENS_FILE (a missing file has none); raises ConfigError."""
    if not path.exists():
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"API_TOKENS_FILE {path}: {exc}") from exc
    seen = set(taken or ())
    entries = []
    for index, item in enumerate(data.get("tokens", [])):
        where = f"API_TOKENS_FILE {path}, tokens[{index}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: not a table")
        name, role, digest = item.get("name"), item.get("role"), item.get("sha256")
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
            raise ConfigError(f"{where}: name {name!r} does not match {TOKEN_NAME_PATTERN}")
        if name in seen:
            raise ConfigError(f"{where}: name '{name}' is used twice")
        if role not in ROLES:
            raise ConfigError(f"{where}: role {role!r} is not one of {', '.join(ROLES)}")
        if not isinstance(digest, str) or not _SHA256_RE.fullmatch(digest):
            raise ConfigError(f"{where}: sha256 must be 64 lowercase hex digits")
        seen.add(name)
        entries.append(TokenEntry(name, role, bytes.fromhex(digest)))
    return entries


def create_token(path: Path, name: str, role: str) -> str:
    """Generate a token for ``name`` with ``role``, append its hash to ``path`` (created with
    mode 0600) and return the token: the only time it is shown.

    Raises ConfigError for an invalid name or role, a name already in the file, or a file
    that cannot be read.
    """
    if not _NAME_RE.fullmatch(name):
        raise ConfigError(f"token name {name!r} does not match {TOKEN_NAME_PATTERN}")
    if role not in ROLES:
        raise ConfigError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if name == DEFAULT_TOKEN_NAME:
        raise ConfigError(f"'{DEFAULT_TOKEN_NAME}' is the name of API_TOKEN; choose another")
    if any(e.name == name for e in read_tokens_file(path)):
        raise ConfigError(f"API_TOKENS_FILE {path} already has a token named '{name}'")
    token = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.touch(mode=0o600)
    with path.open("a", encoding="utf-8") as out:
        out.write(
            f'\n[[tokens]]\nname = "{name}"\nrole = "{role}"\nsha256 = "{token_hash(token)}"\n'
        )
    return token
