"""The tree passes ruff (lint, import order) as configured in pyproject.toml."""

import subprocess
from pathlib import Path

from lifecycle.dev.devserver import installed_binary

ROOT = Path(__file__).resolve().parents[2]


def test_ruff_check() -> None:
    result = subprocess.run(
        [installed_binary("ruff", "ruff"), "check", str(ROOT)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout
