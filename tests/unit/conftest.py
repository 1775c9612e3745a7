"""The fast tier: no Temporal dev server, no PostgreSQL, no API over HTTP (``make test-fast``).

Workflows run on the time-skipping test server (``time_env``) with mocked activities; a
test asking for a slower fixture belongs in ``tests/operations`` or a sibling directory.
"""

from pathlib import Path

import pytest

UNIT = Path(__file__).parent
SLOW_FIXTURES = {"dev_env", "pg_admin_url", "pg_url", "repository"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # called with every collected item, not only this directory's
    for item in items:
        slow = SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if slow and item.path.is_relative_to(UNIT):
            raise pytest.UsageError(
                f"{item.nodeid} uses {sorted(slow)}: not a unit test, move it out of tests/unit"
            )
