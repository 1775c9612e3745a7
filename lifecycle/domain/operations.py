"""Operation kinds, deterministic workflow ids and the search attributes that make
workflows filterable in the Temporal Web UI (``TenantId``, ``LifecycleOperation``)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes


class OperationKind(StrEnum):
    ONBOARD = "onboard"
    UPGRADE = "upgrade"
    DOWNGRADE = "downgrade"
    EXPORT = "export"
    DELETION = "deletion"
    SUSPEND = "suspend"
    PAUSE = "pause"
    TRIAL = "trial"
    REACTIVATE = "reactivate"
    PAYMENT_FAILURE = "payment-failure"
    RECONCILIATION = "reconciliation"
    EVENT = "event"


TENANT_ID = SearchAttributeKey.for_keyword("TenantId")
LIFECYCLE_OPERATION = SearchAttributeKey.for_keyword("LifecycleOperation")
#: Names and types to register on a Temporal server (``--search-attribute`` form).
SEARCH_ATTRIBUTES = {"TenantId": "Keyword", "LifecycleOperation": "Keyword"}


def workflow_id(tenant_id: str, kind: OperationKind | str, suffix: str | None = None) -> str:
    """Deterministic workflow id ``tenant-<id>-<operation>[-<suffix>]``.

    The id without suffix is what the CLI, the Web UI and the API use to find a tenant's
    operation (e.g. ``temporal workflow signal --workflow-id tenant-acme-deletion``).
    """
    base = f"tenant-{tenant_id}-{OperationKind(kind).value}"
    return f"{base}-{suffix}" if suffix else base


def parse_workflow_id(wid: str) -> tuple[str, str] | None:
    """``(tenant_id, operation)`` of a lifecycle workflow id, or None for any other id.

    For logs and metrics only: an id like ``tenant-a-upgrade-b-export-1`` is ambiguous, and
    the tenant is then taken to be the shortest prefix.
    """
    if not wid.startswith("tenant-"):
        return None
    rest = wid[len("tenant-") :]
    kinds = sorted(OperationKind, key=lambda k: -len(k.value))
    for kind in kinds:  # no suffix: the id ends with the operation
        if rest.endswith(f"-{kind.value}") and len(rest) > len(kind.value) + 1:
            return rest[: -len(kind.value) - 1], kind.value
    for kind in kinds:  # with a suffix (e.g. an export id): the first operation marker
        marker = f"-{kind.value}"
        index = rest.find(marker)
        while index > 0:
            end = index + len(marker)
            if end == len(rest) or rest[end] == "-":
                return rest[:index], kind.value
            index = rest.find(marker, index + 1)
    return None


def search_attributes(tenant_id: str, kind: OperationKind | str) -> TypedSearchAttributes:
    """The typed search attributes every lifecycle workflow is started with."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(TENANT_ID, tenant_id),
            SearchAttributePair(LIFECYCLE_OPERATION, OperationKind(kind).value),
        ]
    )


class OperationStarted(BaseModel):
    """A workflow started (or found already started for the same request): the 202 answer
    of every mutation."""

    workflow_id: str
    run_id: str | None
    tenant_id: str
    operation: str
    status: str = "queued"
