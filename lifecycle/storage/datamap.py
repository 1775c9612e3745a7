"""The data map: where each tenant's data lives in the SaaS application's own stores.

An operator declares it once in TOML (``DATA_MAP_PATH``)::

    [databases.app]
    url = "${APP_DATABASE_URL}"            # SQLAlchemy async URL; ${VAR} from the environment

    [[tables]]
    database = "app"
    name = "campaigns"
    tenant_column = "company_id"           # rows where this column equals the tenant's data key

    [[tables]]
    database = "app"
    name = "ad_variants"                   # no tenant column: reached through its parent
    parent = { table = "ads", column = "ad_id", references = "id" }

    [[storage]]
    url = "file:///srv/app/uploads/{tenant_key}/"   # or s3://bucket/prefix/{tenant_key}/

    [[cache]]                              # Redis keys of the tenant (GDPR Art. 17 covers caches)
    url = "${APP_REDIS_URL}"               # redis://host:port/db
    patterns = ["app:{tenant_key}:*"]      # SCAN MATCH patterns; the key is glob-escaped
    export = false                         # true: exported as JSON Lines (key, type, value, ttl)

    tenant_columns = ["company_id"]        # optional: names that mark a tenant table

    [[ignore]]                             # a table discovery would flag, with the reason
    database = "app"
    name = "company_stats"
    reason = "aggregates only, no personal data"

Discovery (``lifecycle.storage.stores``) reflects every table of every database and flags
as *unmapped* a table with a tenant column (``tenant_columns``, default: the tenant columns
the map uses) or a foreign key into a mapped table, that is neither mapped nor ignored.

The same map drives the export (GDPR Art. 15/20) and the purge (Art. 17), so both always
cover the same stores. :func:`load_datamap` checks the file's own consistency; checks against
the live databases (unknown table or column) are in ``lifecycle.storage.stores``.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lifecycle.domain.errors import ConfigError

TENANT_KEY = "{tenant_key}"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseEntry(_Entry):
    """One database of the application, by SQLAlchemy async URL."""

    url: str = Field(min_length=1)


class ParentRef(_Entry):
    """How a table without a tenant column reaches its tenant: ``column`` of this table
    equals ``references`` of the parent ``table``'s rows of the tenant."""

    table: str
    column: str
    references: str


class TableEntry(_Entry):
    """A table holding tenant data: by ``tenant_column`` or through ``parent``."""

    database: str
    name: str = Field(min_length=1)
    tenant_column: str | None = None
    parent: ParentRef | None = None

    @model_validator(mode="after")
    def _one_way_to_the_tenant(self) -> TableEntry:
        if (self.tenant_column is None) == (self.parent is None):
            raise ValueError("give exactly one of tenant_column or parent")
        return self


class StorageEntry(_Entry):
    """An object-storage prefix per tenant: ``file://...{tenant_key}/`` or ``s3://...``."""

    url: str
    endpoint_url: str | None = None  # S3-compatible server; default S3_ENDPOINT_URL


class CacheEntry(_Entry):
    """A Redis database holding per-tenant keys: ``patterns`` (``SCAN MATCH`` globs, each with
    ``{tenant_key}``); purged with SCAN + UNLINK; exported only when ``export`` is true."""

    url: str = Field(min_length=1)
    patterns: list[str] = Field(min_length=1)
    export: bool = False


class IgnoreEntry(_Entry):
    """A table discovery would flag as unmapped, knowingly left out, with the reason (it is
    named with the reason in every deletion certificate)."""

    database: str
    name: str = Field(min_length=1)
    reason: str = Field(min_length=1)


class DataMap(_Entry):
    """The validated data map; ``source`` is the file it came from (for messages)."""

    databases: dict[str, DatabaseEntry] = Field(default_factory=dict)
    tables: list[TableEntry] = Field(default_factory=list)
    storage: list[StorageEntry] = Field(default_factory=list)
    cache: list[CacheEntry] = Field(default_factory=list)
    tenant_columns: list[str] | None = None
    ignore: list[IgnoreEntry] = Field(default_factory=list)
    source: str = "<memory>"

    def tenant_column_names(self) -> set[str]:
        """Column names that mark a table as holding tenant data: ``tenant_columns`` when
        given, else every ``tenant_column`` of the mapped tables."""
        if self.tenant_columns is not None:
            return set(self.tenant_columns)
        return {t.tenant_column for t in self.tables if t.tenant_column}

    def ignored(self, database: str, name: str) -> IgnoreEntry | None:
        """The ``ignore`` entry of a table, or None."""
        return next((i for i in self.ignore if (i.database, i.name) == (database, name)), None)

    def table(self, name: str, database: str | None = None) -> TableEntry:
        for entry in self.tables:
            if entry.name == name and (database is None or entry.database == database):
                return entry
        raise KeyError(name)


def coverage(datamap: DataMap, checked: list[str]) -> list[dict[str, str]]:
    """What a deletion certificate says it checked: each store name of ``checked`` (counts'
    keys) with its kind, then every ignored table with its reason.

    Kinds: ``mapped table``, ``storage``, ``exports`` (the control plane's archives),
    ``cache``, ``unmapped table`` (found by discovery: counted, never purged), ``ignored table``.
    """
    mapped = {f"{t.database}.{t.name}" for t in datamap.tables}
    out: list[dict[str, str]] = []
    for name in sorted(checked):
        if name in mapped:
            kind = "mapped table"
        elif name.startswith("storage["):
            kind = "storage"
        elif name.startswith("cache["):
            kind = "cache"
        elif name == "exports":
            kind = "exports"
        else:
            kind = "unmapped table"
        out.append({"store": name, "kind": kind})
    for ign in datamap.ignore:
        out.append(
            {"store": f"{ign.database}.{ign.name}", "kind": "ignored table", "reason": ign.reason}
        )
    return out


def expand_env(text: str, where: str, environ: dict[str, str] | None = None) -> str:
    """Replace ``${VAR}`` (or ``${VAR:-default}``) from the environment; raise ConfigError
    naming the variable and ``where`` when it is unset and has no default."""
    env = os.environ if environ is None else environ

    def repl(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(f"{where}: environment variable {name} is not set")

    return _VAR.sub(repl, text)


def _check_consistency(dm: DataMap) -> None:
    src = dm.source
    seen: set[tuple[str, str]] = set()
    for i, t in enumerate(dm.tables):
        where = f"data map {src}: tables[{i}] ({t.name})"
        if t.database not in dm.databases:
            known = ", ".join(sorted(dm.databases)) or "none"
            raise ConfigError(f"{where}: unknown database '{t.database}' (declared: {known})")
        if (t.database, t.name) in seen:
            raise ConfigError(f"{where}: table listed twice")
        seen.add((t.database, t.name))
    for i, t in enumerate(dm.tables):
        if t.parent is None:
            continue
        where = f"data map {src}: tables[{i}] ({t.name})"
        try:
            dm.table(t.parent.table, t.database)
        except KeyError:
            raise ConfigError(
                f"{where}: parent table '{t.parent.table}' is not in the data map"
            ) from None
        path, node = [t.name], t
        while node.parent is not None:
            node = dm.table(node.parent.table, t.database)
            if node.name in path:
                cycle = " -> ".join([*path, node.name])
                raise ConfigError(f"{where}: parent cycle {cycle}")
            path.append(node.name)
    for i, ign in enumerate(dm.ignore):
        where = f"data map {src}: ignore[{i}] ({ign.name})"
        if ign.database not in dm.databases:
            raise ConfigError(f"{where}: unknown database '{ign.database}'")
        if (ign.database, ign.name) in seen:
            raise ConfigError(f"{where}: the table is mapped; it cannot be ignored too")
    for i, s in enumerate(dm.storage):
        where = f"data map {src}: storage[{i}] ({s.url})"
        if TENANT_KEY not in s.url:
            raise ConfigError(f"{where}: the URL has no {TENANT_KEY} placeholder")
        if not s.url.startswith(("file://", "s3://")):
            raise ConfigError(f"{where}: the URL must start with file:// or s3://")
    for i, c in enumerate(dm.cache):
        where = f"data map {src}: cache[{i}]"
        if not c.url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(f"{where}: the URL must start with redis://, rediss:// or unix://")
        for pattern in c.patterns:
            if TENANT_KEY not in pattern:
                raise ConfigError(f"{where}: pattern '{pattern}' has no {TENANT_KEY} placeholder")


def parse_datamap(
    text: str, source: str = "<memory>", environ: dict[str, str] | None = None
) -> DataMap:
    """Parse and validate data-map TOML; raise ConfigError naming the file and the entry."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"data map {source}: not valid TOML: {exc}") from exc
    for name, db in (raw.get("databases") or {}).items():
        if isinstance(db, dict) and isinstance(db.get("url"), str):
            db["url"] = expand_env(db["url"], f"data map {source}: databases.{name}.url", environ)
    for i, ca in enumerate(raw.get("cache") or []):
        if isinstance(ca, dict) and isinstance(ca.get("url"), str):
            ca["url"] = expand_env(ca["url"], f"data map {source}: cache[{i}].url", environ)
    for i, st in enumerate(raw.get("storage") or []):
        if isinstance(st, dict):
            for key in ("url", "endpoint_url"):
                if isinstance(st.get(key), str):
                    st[key] = expand_env(st[key], f"data map {source}: storage[{i}].{key}", environ)
    try:
        dm = DataMap.model_validate({**raw, "source": source})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"data map {source}: {problems}") from exc
    _check_consistency(dm)
    return dm


def load_datamap(path: str | Path, environ: dict[str, str] | None = None) -> DataMap:
    """Load the data map file at ``path`` (see :func:`parse_datamap`)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"data map {file}: not found") from exc
    try:
        return parse_datamap(text, str(file), environ)
    except ValueError as exc:  # TOML syntax (tomllib.TOMLDecodeError) or the schema (pydantic)
        raise ConfigError(f"data map {file}: malformed: {exc}") from exc
