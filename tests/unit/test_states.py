"""The state machine, pinned exactly to the state table of docs/architecture.md: every
allowed and forbidden pair."""

import itertools

import pytest

from lifecycle.domain.errors import InvalidTransition
from lifecycle.domain.states import TenantState, check_transition

S = TenantState
EXPECTED = {
    S.ACTIVE: {S.UPGRADING, S.DOWNGRADING, S.SUSPENDED, S.EXPORTING, S.DELETING},
    S.UPGRADING: {S.ACTIVE, S.SUSPENDED},
    S.DOWNGRADING: {S.ACTIVE, S.SUSPENDED},
    S.SUSPENDED: {S.REACTIVATING, S.DELETING},
    S.EXPORTING: {S.ACTIVE},
    S.DELETING: {S.DELETED},
    S.DELETED: set(),
    S.REACTIVATING: {S.ACTIVE, S.SUSPENDED},
}


def test_eight_states() -> None:
    assert {s.value for s in S} == {
        "ACTIVE",
        "UPGRADING",
        "DOWNGRADING",
        "SUSPENDED",
        "EXPORTING",
        "DELETING",
        "DELETED",
        "REACTIVATING",
    }


@pytest.mark.parametrize(("src", "dst"), list(itertools.product(S, S)))
def test_every_pair(src: TenantState, dst: TenantState) -> None:
    if dst in EXPECTED[src]:
        check_transition(src, dst)
    else:
        with pytest.raises(InvalidTransition) as err:
            check_transition(src, dst)
        message = str(err.value)
        assert f"{src.value} -> {dst.value}" in message
        for allowed in EXPECTED[src]:
            assert allowed.value in message
        if not EXPECTED[src]:
            assert "none" in message


def test_reactivation_edge_only_for_reactivation() -> None:
    with pytest.raises(InvalidTransition):
        check_transition(S.DELETED, S.REACTIVATING)
    check_transition(S.DELETED, S.REACTIVATING, reactivation=True)
    with pytest.raises(InvalidTransition):
        check_transition(S.DELETED, S.ACTIVE, reactivation=True)
