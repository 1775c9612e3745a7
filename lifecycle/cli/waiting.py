"""``--wait`` of the mutating commands: follow an operation through the API with a Rich
spinner (a progress bar when the operation counts its work) until it ends, and exit by its
outcome.

Exit codes: 0 succeeded; 1 failed, cancelled, terminated or compensated (a saga that put the
tenant back); 3 still running after ``--timeout`` seconds (the operation goes on).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import httpx
import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from lifecycle.cli.common import checked, console

#: Exit code of an operation that failed, was cancelled or compensated.
EXIT_FAILED = 1
#: Exit code of ``--wait`` when ``--timeout`` passed before the operation ended.
EXIT_TIMEOUT = 3
#: Seconds between two polls of the API.
POLL_SECONDS = 0.5
#: Outcomes of a completed workflow that mean the requested change did not happen.
UNDONE_OUTCOMES = ("compensated", "cancelled")

Wait = Annotated[
    bool,
    typer.Option(
        "--wait",
        help="Follow the operation until it ends; exit 0 succeeded, 1 failed or cancelled, "
        "3 on --timeout",
    ),
]
Timeout = Annotated[
    float,
    typer.Option(
        "--timeout",
        min=1,
        help="With --wait: give up after this many seconds (exit 3; the operation goes on)",
    ),
]


State = Literal["running", "succeeded", "failed"]


@dataclass
class Snapshot:
    """One poll of an operation: ``state``, what the spinner shows, the work done of the
    total when counted, the API's view, and the error of a failure."""

    state: State
    description: str
    view: dict[str, Any]
    done: int | None = None
    total: int | None = None
    error: str | None = None


def follow(read: Callable[[], Snapshot], what: str, where: str, timeout: float) -> Snapshot:
    """Poll ``read`` every POLL_SECONDS with a spinner until it is no longer running and
    return that snapshot. Exits EXIT_TIMEOUT after ``timeout`` seconds, saying that ``what``
    goes on and ``where`` to follow it."""
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    deadline = time.monotonic() + timeout
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(what, total=None)
        while True:
            snap = read()
            bar.update(
                task,
                description=f"{what}: {snap.description}",
                total=snap.total,
                completed=snap.done or 0,
            )
            if snap.state != "running":
                return snap
            if time.monotonic() >= deadline:
                bar.stop()
                console.print(
                    f"[yellow]timeout:[/yellow] {what} is still {snap.description} after "
                    f"{timeout:g}s; it goes on ({where})"
                )
                raise typer.Exit(EXIT_TIMEOUT)
            time.sleep(POLL_SECONDS)


def ended(snap: Snapshot, what: str) -> dict[str, Any]:
    """The view of a successful snapshot; for a failed one, print why and exit EXIT_FAILED."""
    if snap.state == "failed":
        console.print(f"[red]{what} {snap.description}:[/red] {snap.error or ''}".rstrip())
        raise typer.Exit(EXIT_FAILED)
    return snap.view


def operation_snapshot(
    op: dict[str, Any],
    settled: Callable[[dict[str, Any]], bool] | None = None,
    undone: tuple[str, ...] = UNDONE_OUTCOMES,
) -> Snapshot:
    """The snapshot of ``GET /operations/{id}``'s answer ``op``. A running operation counts as
    succeeded once ``settled(progress)`` holds (e.g. a soft delete whose retention timer
    started); a completed one whose result's ``outcome`` is compensated or cancelled, as
    failed (``undone``: the outcomes that count as failed)."""
    status = op["status"]
    result = op.get("result") or {}
    if status == "running":
        progress = result.get("progress") or {}
        if settled is not None and settled(progress):
            return Snapshot("succeeded", progress.get("phase") or op.get("step") or status, op)
        return Snapshot("running", op.get("step") or status, op)
    if status == "completed":
        outcome = result.get("outcome")
        if outcome in undone:
            error = result.get("failure") or result.get("reason") or ""
            return Snapshot("failed", str(outcome), op, error=str(error))
        return Snapshot("succeeded", str(outcome or status), op)
    return Snapshot("failed", status, op, error=op.get("error"))


def wait_operation(
    http: httpx.Client,
    workflow_id: str,
    timeout: float,
    settled: Callable[[dict[str, Any]], bool] | None = None,
    undone: tuple[str, ...] = UNDONE_OUTCOMES,
) -> dict[str, Any]:
    """Follow operation ``workflow_id`` (``GET /operations/{id}``) until it ends or is
    ``settled`` (see :func:`operation_snapshot`); prints the outcome and returns the view, or
    exits EXIT_FAILED / EXIT_TIMEOUT."""
    snap = follow(
        lambda: operation_snapshot(
            checked(http.get(f"/operations/{workflow_id}")), settled, undone
        ),
        workflow_id,
        f"tenantctl operations show {workflow_id}",
        timeout,
    )
    view = ended(snap, workflow_id)
    console.print(f"{workflow_id}: [green]{snap.description}[/green]")
    return view
