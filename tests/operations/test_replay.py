"""Replay one saved real history of every workflow with the current code: a change that
would break running executions (non-deterministic) fails here, not in production.

``tests/histories/*.json`` are histories of the current code; each subdirectory keeps the
histories recorded before a ``workflow.patched`` change (``before-<patch id>``), standing for
the executions that were running when it shipped.
"""

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker import WORKFLOWS, workflow_runner

HISTORIES = Path(__file__).resolve().parents[1] / "histories"  # tests/histories


def test_every_workflow_has_a_saved_history() -> None:
    saved = {p.stem for p in HISTORIES.glob("*.json")}
    missing = sorted({w.__name__ for w in WORKFLOWS} - saved)
    assert not missing, (
        f"record histories with `python -m tests.support.record_histories {missing[0]}`"
    )


@pytest.mark.parametrize(
    "path",
    sorted(HISTORIES.rglob("*.json")),
    ids=lambda p: str(p.relative_to(HISTORIES).with_suffix("")),
)
async def test_replay(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text(encoding="utf-8"))
    replayer = Replayer(
        workflows=WORKFLOWS,
        data_converter=pydantic_data_converter,
        workflow_runner=workflow_runner(),
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
