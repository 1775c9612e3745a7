"""Root conftest, kept thin: the fixtures and helpers live in ``tests/support``.

Layout (mirrors the code): ``unit/`` is the fast tier (no Temporal server, no PostgreSQL;
workflows run on the time-skipping test server with mocked activities) run by
``make test-fast``; ``operations/``, ``api/``, ``cli/``, ``persistence/``, ``storage/`` and
``dev/`` run against real servers. ``make test`` runs everything.
"""

import pytest

# assertions inside the helpers report their operands like those in test modules
pytest.register_assert_rewrite("tests.support")

pytest_plugins = ["tests.support.fixtures", "tests.support.plan_fixtures"]
