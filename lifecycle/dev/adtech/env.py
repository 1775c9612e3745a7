"""Where the sample application keeps its data: ``APP_DATABASE_URL`` and ``APP_STORAGE_URL``,
the variables its data map (``datamap.toml``) reads, with embedded defaults under a data dir."""

from __future__ import annotations

import os
from pathlib import Path


def app_urls(data_dir: Path = Path(".data")) -> dict[str, str]:
    """``{"APP_DATABASE_URL": ..., "APP_STORAGE_URL": ...}``: the environment's values, else
    ``sqlite+aiosqlite:///<data_dir>/app.db`` and ``file://<data_dir>/app-storage/`` (absolute).

    Export them (``os.environ.update(app_urls(...))``) before loading the data map.
    """
    root = data_dir.resolve()
    return {
        "APP_DATABASE_URL": os.environ.get("APP_DATABASE_URL")
        or f"sqlite+aiosqlite:///{root / 'app.db'}",
        "APP_STORAGE_URL": os.environ.get("APP_STORAGE_URL")
        or f"{(root / 'app-storage').as_uri()}/",
    }
