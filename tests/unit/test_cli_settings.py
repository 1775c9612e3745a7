"""Client commands find the embedded stack's data dir from any folder below it, and never
create an API token of their own."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from lifecycle.cli.app import app
from lifecycle.cli.common import api_token, load_settings


@pytest.fixture(autouse=True)
def _no_stack_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("DATA_DIR", "API_TOKEN"):
        monkeypatch.delenv(var, raising=False)


def test_a_subfolder_uses_the_stack_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".data").mkdir()
    (tmp_path / ".data" / "api_token").write_text("the-stack-token\n", encoding="utf-8")
    deep = tmp_path / "src" / "pkg"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    settings = load_settings()
    assert settings.data_dir == tmp_path / ".data"
    assert api_token(settings) == "the-stack-token"
    assert not (deep / ".data").exists()


def test_no_stack_no_token_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["tenants", "list", "--api", "http://127.0.0.1:9"])
    assert result.exit_code == 2
    assert "no API token" in result.output and "API_TOKEN" in result.output
    assert not (tmp_path / ".data").exists()  # nothing minted


def test_api_token_from_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("API_TOKEN", "from-env")
    assert api_token(load_settings()) == "from-env"
