"""The data map file: validation with clear errors naming the entry (no database opened)."""

from pathlib import Path

import pytest

from lifecycle.domain.errors import ConfigError
from lifecycle.storage.datamap import load_datamap, parse_datamap
from tests.support.datamaps import GOOD


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (
            ('database = "app"\nname = "projects"', 'database = "crm"\nname = "projects"'),
            "tables[0] (projects): unknown database 'crm' (declared: app)",
        ),
        (("{tenant_key}/", "all/"), "storage[0]"),
        (
            ('parent = { table = "projects"', 'parent = { table = "notes"'),
            "parent cycle notes -> notes",
        ),
        (
            (
                'tenant_column = "org_id"',
                'tenant_column = "org_id"\nparent = { table = "notes", '
                'column = "id", references = "project_id" }',
            ),
            "exactly one of tenant_column or parent",
        ),
        (('[[storage]]\nurl = "file://', '[[storage]]\nurl = "ftp://'), "file:// or s3://"),
    ],
)
def test_invalid_map_names_the_entry(edit: tuple[str, str], needle: str) -> None:
    env = {"APP_DATABASE_URL": "sqlite+aiosqlite:///x.db", "APP_FILES": "/tmp"}
    with pytest.raises(ConfigError) as err:
        parse_datamap(GOOD.replace(*edit), "map.toml", env)
    assert "data map map.toml" in str(err.value) and needle in str(err.value)


def test_missing_variable_and_file(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match="databases.app.url: environment variable APP_DATABASE_URL"
    ):
        parse_datamap(GOOD, "map.toml", {})
    with pytest.raises(ConfigError, match="not found"):
        load_datamap(tmp_path / "missing.toml")
    dm = parse_datamap(
        GOOD.replace("${APP_DATABASE_URL}", "${APP_DB:-sqlite+aiosqlite:///d.db}"),
        "m.toml",
        {"APP_FILES": "/srv"},
    )
    assert dm.databases["app"].url == "sqlite+aiosqlite:///d.db"
    assert dm.storage[0].url == "file:///srv/{tenant_key}/"
