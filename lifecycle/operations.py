"""Operation kinds, deterministic workflow ids and the search attributes that make
workflows filterable in the Temporal Web UI (``TenantId``, ``LifecycleOperation``)."""

from __future__ import annotations

from enum import StrEnum

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes


class OperationKind(StrEnum):
    ONBOARD = "onboard"
    UPGRADE = "upgrade"
    DOWNGRADE = "downgrade"
    EXPORT = "export"
    DELETION = "deletion"
    SUSPEND = "suspend"
    REACTIVATE = "reactivate"
    PAYMENT_FAILURE = "payment-failure"


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


def search_attributes(tenant_id: str, kind: OperationKind | str) -> TypedSearchAttributes:
    """The typed search attributes every lifecycle workflow is started with."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(TENANT_ID, tenant_id),
            SearchAttributePair(LIFECYCLE_OPERATION, OperationKind(kind).value),
        ]
    )
