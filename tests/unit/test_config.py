"""Configuration and the plans file fail at startup with the variable, file and field named."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from lifecycle.config import Settings
from lifecycle.domain.errors import ConfigError, InvalidInput
from lifecycle.domain.plans import load_plans, usage_violations


@pytest.mark.parametrize("days", [29, 91, 0])
def test_retention_outside_30_90_is_rejected(days: int) -> None:
    with pytest.raises(ValidationError) as err:
        Settings(_env_file=None, soft_delete_retention_days=days)
    assert "soft_delete_retention_days" in str(err.value)


def test_retention_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOFT_DELETE_RETENTION_DAYS", "45")
    assert Settings(_env_file=None).soft_delete_retention_days == 45
    monkeypatch.setenv("SOFT_DELETE_RETENTION_DAYS", "120")
    with pytest.raises(ValidationError, match="soft_delete_retention_days"):
        Settings(_env_file=None)


def test_redacted_hides_every_secret() -> None:
    s = Settings(
        _env_file=None,
        stripe_api_key="sk_live_secret",
        api_token="tok",
        database_url="postgresql+asyncpg://u:hunter2@db/x",
    )
    text = str(s.redacted())
    for secret in ("sk_live_secret", "tok'", "hunter2"):
        assert secret not in text
    assert s.redacted()["stripe_api_key"] == "***"


def test_dev_secret_generated_once(tmp_path: Path) -> None:
    a = Settings(_env_file=None, data_dir=tmp_path).secret("api_token")
    b = Settings(_env_file=None, data_dir=tmp_path).secret("api_token")
    assert a == b and len(a) >= 32
    assert (tmp_path / "api_token").stat().st_mode & 0o077 == 0


def test_default_plans_hierarchy() -> None:
    plans = load_plans()
    assert plans.names() == ["free", "starter", "professional", "enterprise"]
    assert plans.require_upgrade("starter", "professional").name == "professional"
    with pytest.raises(InvalidInput, match="'professional' to 'starter'"):
        plans.require_upgrade("professional", "starter")
    with pytest.raises(InvalidInput, match="unknown plan 'gold'"):
        plans.get("gold")


def test_usage_violations_name_each_resource() -> None:
    limits = load_plans().get("starter").limits
    found = usage_violations({"users": 50, "storage_gb": 40, "projects": 1}, limits)
    assert [str(v) for v in found] == ["users 50 > 10", "storage_gb 40 > 10"]
    assert usage_violations({"users": 10**9}, load_plans().get("enterprise").limits) == []


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (
            "[[plans]]\nname='free'\nprice_id='p'\nlimits={users=1,storage_gb=1,projects=1}",
            "plans.0.limits.api_calls_per_day",
        ),
        (
            "[[plans]]\nname='free'\nprice_id='p'\ncolour='red'\n"
            "limits={users=1,storage_gb=1,projects=1,api_calls_per_day=1}",
            "plans.0.colour",
        ),
        ("not toml ][", "not valid TOML"),
        (
            "[[plans]]\nname='a'\nprice_id='p'\nlimits={users=1,storage_gb=1,projects=1,"
            "api_calls_per_day=1}\n[[plans]]\nname='a'\nprice_id='q'\nlimits={users=1,"
            "storage_gb=1,projects=1,api_calls_per_day=1}",
            "duplicate plan name(s): a",
        ),
    ],
)
def test_malformed_plans_file(tmp_path: Path, content: str, needle: str) -> None:
    path = tmp_path / "plans.toml"
    path.write_text(content)
    with pytest.raises(ConfigError) as err:
        load_plans(path)
    assert str(path) in str(err.value) and needle in str(err.value)


def test_default_control_plane_file_keeps_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """Existing embedded stacks keep their data: the default SQLite file is
    ``DATA_DIR/lifecycle.db`` (a module rename once changed it by accident)."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = Settings(data_dir=Path("/srv/tl"))
    assert settings.db_url == "sqlite+aiosqlite:////srv/tl/lifecycle.db"


def test_event_subscribers_the_urls_take_every_event_the_provisioning_webhook_its_types() -> None:
    s = Settings(
        _env_file=None,
        event_webhook_urls="https://a.example/ev, https://b.example/ev",
        event_webhook_secret="ev-key",
        provisioning_webhook_url="https://app.example/provision",
        provisioning_webhook_secret="prov-key",
    )
    a, b, hook = s.event_subscribers()
    assert (a.url, a.secret, a.types) == ("https://a.example/ev", "ev-key", None)
    assert (hook.url, hook.secret) == ("https://app.example/provision", "prov-key")
    assert hook.subscribes("tenant.plan_changed") and hook.subscribes("tenant.suspended")
    assert not hook.subscribes("tenant.dunning_step") and b.subscribes("tenant.dunning_step")
    assert "prov-key" not in repr(hook)
    # a webhook listed among the event URLs already gets every event, once
    listed = Settings(
        _env_file=None,
        event_webhook_urls="https://app.example/provision",
        provisioning_webhook_url="https://app.example/provision",
        provisioning_webhook_secret="prov-key",
    )
    (only,) = listed.event_subscribers()
    assert (only.types, only.secret) == (None, "prov-key")  # EVENT_WEBHOOK_SECRET's default
    unsigned = Settings(_env_file=None, provisioning_webhook_url="https://app.example/p")
    with pytest.raises(ConfigError, match="PROVISIONING_WEBHOOK_SECRET is not"):
        unsigned.event_subscribers()
    assert Settings(_env_file=None).event_subscribers() == []
