"""Every command's ``--help``, walked through the whole ``tenantctl`` tree: it renders, and
it shows no reStructuredText or Markdown markup (backticks, ``:func:`` roles) to the reader."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from lifecycle.cli.app import app

runner = CliRunner()
MARKUP = ("`", ":func:", ":class:", ":mod:", ":meth:")


def command_paths(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The path of ``command`` and of every command below it (a group has ``commands``)."""
    found = [path]
    for name, sub in getattr(command, "commands", {}).items():
        found += command_paths(sub, (*path, name))
    return found


PATHS = command_paths(typer.main.get_command(app))


def test_the_walk_finds_the_nested_commands() -> None:
    assert ("tenants", "upgrade") in PATHS and ("exports", "list") in PATHS
    assert len(PATHS) > 25


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "tenantctl")
def test_help_renders_without_rst_markup(path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    shown = [m for m in MARKUP if m in result.output]
    assert not shown, f"tenantctl {' '.join(path)} --help shows {shown}:\n{result.output}"
