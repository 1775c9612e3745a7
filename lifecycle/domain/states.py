"""The tenant state machine (docs/architecture.md, "The state machine").

Every state change of a tenant goes through :func:`check_transition`; the repository applies
it as a compare-and-set on the tenant row, so the table below is the only source of truth.
"""

from __future__ import annotations

from enum import StrEnum

from lifecycle.domain.errors import InvalidTransition


class TenantState(StrEnum):
    """The eight lifecycle states of a tenant."""

    ACTIVE = "ACTIVE"
    UPGRADING = "UPGRADING"
    DOWNGRADING = "DOWNGRADING"
    SUSPENDED = "SUSPENDED"
    EXPORTING = "EXPORTING"
    DELETING = "DELETING"
    DELETED = "DELETED"
    REACTIVATING = "REACTIVATING"


S = TenantState

#: Allowed next states, exactly as specified. DELETED has no outgoing edge in the table:
#: only the reactivation path (within retention) leaves it, see ``REACTIVATION_FROM``.
TRANSITIONS: dict[TenantState, frozenset[TenantState]] = {
    S.ACTIVE: frozenset({S.UPGRADING, S.DOWNGRADING, S.SUSPENDED, S.EXPORTING, S.DELETING}),
    S.UPGRADING: frozenset({S.ACTIVE, S.SUSPENDED}),
    S.DOWNGRADING: frozenset({S.ACTIVE, S.SUSPENDED}),
    S.SUSPENDED: frozenset({S.REACTIVATING, S.DELETING}),
    S.EXPORTING: frozenset({S.ACTIVE}),
    S.DELETING: frozenset({S.DELETED}),
    S.DELETED: frozenset(),
    S.REACTIVATING: frozenset({S.ACTIVE, S.SUSPENDED}),
}

#: The one edge outside the table: a soft-deleted tenant may be reactivated by the
#: reactivation workflow while its retention window is open.
REACTIVATION_FROM = frozenset({S.SUSPENDED, S.DELETED})


def check_transition(
    from_state: TenantState | str, to_state: TenantState | str, *, reactivation: bool = False
) -> None:
    """Raise :class:`InvalidTransition` unless ``from_state -> to_state`` is allowed.

    ``reactivation=True`` additionally admits DELETED -> REACTIVATING, which only the
    reactivation path may take (docs/architecture.md: "reactivation workflow only, within
    retention").
    """
    src, dst = TenantState(from_state), TenantState(to_state)
    allowed = TRANSITIONS[src]
    if dst in allowed:
        return
    if reactivation and dst is S.REACTIVATING and src in REACTIVATION_FROM:
        return
    raise InvalidTransition(src.value, dst.value, sorted(a.value for a in allowed))
