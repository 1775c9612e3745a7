"""Where the sample application keeps its data: ``APP_DATABASE_URL``, ``APP_STORAGE_URL`` and,
optionally, ``APP_REDIS_URL`` (its cache), the variables its data map reads, with embedded
defaults under a data dir."""

from __future__ import annotations

import os
from pathlib import Path

from lifecycle.dev.adtech import CACHE_MAP_PATH, DATAMAP_PATH


def app_urls(data_dir: Path = Path(".data")) -> dict[str, str]:
    """``{"APP_DATABASE_URL": ..., "APP_STORAGE_URL": ...}``: the environment's values, else
    ``sqlite+aiosqlite:///<data_dir>/app.db`` and ``file://<data_dir>/app-storage/`` (absolute);
    plus ``APP_REDIS_URL`` when the environment sets it (the application then caches in Redis).

    Export them (``os.environ.update(app_urls(...))``) before loading the data map.
    """
    root = data_dir.resolve()
    urls = {
        "APP_DATABASE_URL": os.environ.get("APP_DATABASE_URL")
        or f"sqlite+aiosqlite:///{root / 'app.db'}",
        "APP_STORAGE_URL": os.environ.get("APP_STORAGE_URL")
        or f"{(root / 'app-storage').as_uri()}/",
    }
    if os.environ.get("APP_REDIS_URL"):
        urls["APP_REDIS_URL"] = os.environ["APP_REDIS_URL"]
    return urls


def sample_datamap(data_dir: Path = Path(".data")) -> Path:
    """The data map of the sample application as configured: ``datamap.toml`` itself, or,
    when ``APP_REDIS_URL`` is set, ``<data_dir>/datamap.toml`` written as ``datamap.toml``
    followed by the cache store of ``cache.toml`` (rewritten on every call)."""
    if not os.environ.get("APP_REDIS_URL"):
        return DATAMAP_PATH
    path = data_dir.resolve() / "datamap.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = DATAMAP_PATH.read_text(encoding="utf-8") + "\n" + CACHE_MAP_PATH.read_text("utf-8")
    path.write_text(text, encoding="utf-8")
    return path
