"""Activities of a workflow execution read from its history: what the Web UI's timeline
shows, for tests and benchmarks that check which steps ran and which overlapped."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from temporalio.client import WorkflowHandle


@dataclass
class ActivitySpan:
    """One scheduled activity: its type, its Web UI summary (the type when it has none), and
    the event times (seconds since the epoch, UTC) of its scheduling, its last start and its
    completion (None until they happen), and the history's event ids of its scheduling and
    completion (the order in which the workflow saw them)."""

    name: str
    summary: str
    scheduled: float
    scheduled_event: int
    started: float | None = None
    completed: float | None = None
    completed_event: int | None = None


async def activity_spans(
    handle: WorkflowHandle[Any, Any],
) -> tuple[float, list[ActivitySpan]]:
    """The execution's first event time and its activities in the order they were scheduled."""
    began: float | None = None
    spans: dict[int, ActivitySpan] = {}
    async for event in handle.fetch_history_events():
        at = event.event_time.ToMicroseconds() / 1e6
        began = at if began is None else began
        if event.HasField("activity_task_scheduled_event_attributes"):
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            summary = event.user_metadata.summary.data.decode().strip('"') or name
            spans[event.event_id] = ActivitySpan(name, summary, at, event.event_id)
        elif event.HasField("activity_task_started_event_attributes"):
            spans[event.activity_task_started_event_attributes.scheduled_event_id].started = at
        elif event.HasField("activity_task_completed_event_attributes"):
            key = event.activity_task_completed_event_attributes.scheduled_event_id
            spans[key].completed, spans[key].completed_event = at, event.event_id
    return began or 0.0, list(spans.values())
