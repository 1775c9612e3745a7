"""Control-plane tables on SQLite and on a real PostgreSQL: compare-and-set and audit log."""

import asyncio
from typing import Any

import pytest

from lifecycle.domain.billing import BillingResult
from lifecycle.domain.errors import StateConflict, TenantNotFound, VersionConflict
from lifecycle.domain.onboarding import CreateTenantInput, OnboardRequest
from lifecycle.domain.plan_changes import StepEventInput
from lifecycle.domain.states import TenantState as S
from lifecycle.domain.tenants import OperationUpdate, TransitionInput
from lifecycle.persistence.engine import Sessions
from lifecycle.persistence.events import EventRepository
from lifecycle.persistence.tenants import TenantRepository

LIMITS = {"users": 10, "storage_gb": 10, "projects": 5, "api_calls_per_day": 10000}


async def _create(repo: TenantRepository, tenant_id: str = "acme") -> None:
    await repo.create_tenant(
        CreateTenantInput(
            request=OnboardRequest(
                tenant_id=tenant_id, name="Acme", email="a@acme.example", plan="starter"
            ),
            limits=LIMITS,
            billing=BillingResult(skipped=True),
            workflow_id=f"tenant-{tenant_id}-onboard",
            actor="test",
        )
    )


def _change(wf: str, to: S = S.UPGRADING, src: S = S.ACTIVE) -> TransitionInput:
    return TransitionInput(
        tenant_id="acme", from_states=[src], to_state=to, operation="upgrade", workflow_id=wf
    )


async def test_create_is_idempotent_per_workflow_and_conflicts_otherwise(
    repository: TenantRepository,
) -> None:
    await _create(repository)
    await _create(repository)  # same onboarding workflow retried: same row, no second event
    tenant = await repository.get("acme")
    assert tenant.state is S.ACTIVE and tenant.version == 1
    assert tenant.entitlements == LIMITS and tenant.data_key == "acme"
    assert len(await repository.events("acme")) == 1
    with pytest.raises(StateConflict, match="already exists"):
        await repository.create_tenant(
            CreateTenantInput(
                request=OnboardRequest(
                    tenant_id="acme", name="X", email="x@x.example", plan="free"
                ),
                limits=LIMITS,
                billing=BillingResult(skipped=True),
                workflow_id="another-workflow",
                actor="test",
            )
        )


async def test_transition_writes_state_version_and_one_audit_row(
    repository: TenantRepository,
) -> None:
    await _create(repository)
    tenant = await repository.transition(
        _change("wf-1").model_copy(update={"changes": {"plan": "professional"}, "reason": "why"})
    )
    assert (tenant.state, tenant.version, tenant.plan) == (S.UPGRADING, 2, "professional")
    events = await repository.events("acme")
    assert [(e.from_state, e.to_state, e.workflow_id) for e in events[1:]] == [
        ("ACTIVE", "UPGRADING", "wf-1")
    ]
    assert events[1].detail == {"reason": "why"} and events[1].at.tzinfo is not None
    # the same workflow retrying its committed step is a no-op, not a conflict
    again = await repository.transition(_change("wf-1"))
    assert again.version == 2 and len(await repository.events("acme")) == 2


async def test_a_transition_records_the_operation_step_in_its_transaction(
    repository: TenantRepository,
) -> None:
    """A plan change's lock and commit (patch ``folded-steps``) record the operation's step
    with the transition, in the row of the calling run; a refused transition records
    nothing."""
    await _create(repository)
    lock = OperationUpdate(
        workflow_id="wf-1", tenant_id="acme", kind="upgrade", status="running", step="lock"
    )
    tenant = await repository.transition(_change("wf-1").model_copy(update={"record": lock}), "r1")
    assert tenant.state is S.UPGRADING and tenant.entitlements == LIMITS
    op = await repository.operation("wf-1", "r1")
    assert op and (op.status, op.step, op.finished_at) == ("running", "lock", None)
    done = lock.model_copy(
        update={"status": "completed", "step": "completed", "result": {"plan": "professional"}}
    )
    commit = _change("wf-1", S.ACTIVE, S.UPGRADING).model_copy(
        update={"record": done, "changes": {"plan": "professional"}}
    )
    tenant = await repository.transition(commit, "r1")
    assert (tenant.state, tenant.plan, tenant.version) == (S.ACTIVE, "professional", 3)
    op = await repository.operation("wf-1", "r1")
    assert op and (op.status, op.step, op.result) == ("completed", "completed", done.result)
    assert op.finished_at is not None and op.duration_seconds is not None
    refused = _change("wf-2", S.UPGRADING, S.SUSPENDED).model_copy(
        update={"record": lock.model_copy(update={"workflow_id": "wf-2"})}
    )
    with pytest.raises(StateConflict, match="is ACTIVE"):
        await repository.transition(refused, "r2")
    assert await repository.operation("wf-2") is None
    assert [e.to_state for e in await repository.events("acme")] == [
        "ACTIVE",
        "UPGRADING",
        "ACTIVE",
    ]


async def test_wrong_state_names_the_current_state(repository: TenantRepository) -> None:
    await _create(repository)
    await repository.transition(_change("wf-1"))
    with pytest.raises(StateConflict, match="is UPGRADING"):
        await repository.transition(_change("wf-2", S.EXPORTING))
    with pytest.raises(TenantNotFound):
        await repository.get("nobody")


async def test_twenty_concurrent_compare_and_sets_exactly_one_wins(
    repository: TenantRepository,
) -> None:
    await _create(repository)
    results = await asyncio.gather(
        *(repository.transition(_change(f"wf-{i}")) for i in range(20)),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, Exception)]
    assert len(winners) == 1
    assert all(isinstance(e, StateConflict | VersionConflict) for e in losers), losers
    tenant = await repository.get("acme")
    assert tenant.state is S.UPGRADING and tenant.version == 2
    changes = [e for e in await repository.events("acme") if e.to_state == "UPGRADING"]
    assert len(changes) == 1


async def test_a_lost_compare_and_set_writes_nothing_of_its_operation(
    repository: TenantRepository,
) -> None:
    """Twenty workflows commit the same tenant's plan change at once, each recording its
    operation's end with it: one wins. The losers leave no audit row, no outbound event and
    no operation row (on PostgreSQL all of them are one statement, conditional on the
    compare-and-set's row), and the winner's event takes the next sequence number."""
    await _create(repository)
    await repository.transition(_change("wf-lock"))
    events = EventRepository(repository.sessions)
    before = [e.sequence for e in await events.events("acme")]

    def commit(i: int) -> TransitionInput:
        done = OperationUpdate(
            workflow_id=f"wf-{i}", tenant_id="acme", kind="upgrade", status="completed"
        )
        return _change(f"wf-{i}", S.ACTIVE, S.UPGRADING).model_copy(
            update={"record": done, "changes": {"plan": f"plan-{i}"}}
        )

    results = await asyncio.gather(
        *(repository.transition(commit(i), f"run-{i}") for i in range(20)),
        return_exceptions=True,
    )
    won = [i for i, r in enumerate(results) if not isinstance(r, Exception)]
    assert len(won) == 1, results
    lost = [r for i, r in enumerate(results) if i != won[0]]
    assert all(isinstance(r, StateConflict | VersionConflict) for r in lost), lost
    tenant = await repository.get("acme")
    assert (tenant.state, tenant.plan, tenant.version) == (S.ACTIVE, f"plan-{won[0]}", 3)
    commits = [e for e in await repository.events("acme") if e.from_state == "UPGRADING"]
    assert [e.workflow_id for e in commits] == [f"wf-{won[0]}"]
    outbox = await events.events("acme")
    assert [(e.type, e.sequence) for e in outbox[len(before) :]] == [
        ("tenant.plan_changed", before[-1] + 1)
    ]
    assert outbox[-1].data["plan"] == f"plan-{won[0]}"
    assert outbox[-1].data["workflow_id"] == f"wf-{won[0]}"
    ops = [await repository.operation(f"wf-{i}") for i in range(20)]
    assert [(i, op.status) for i, op in enumerate(ops) if op] == [(won[0], "completed")]


async def test_a_transitions_record_keeps_the_rules_of_operation_records(
    repository: TenantRepository,
) -> None:
    """The record a transition makes follows :meth:`record_operation`'s rules in every path:
    a legacy running row (run id '') is adopted, an ended row is not reopened by a late
    step, and an end sets the duration once."""
    await _create(repository)
    legacy = OperationUpdate(
        workflow_id="wf-1", tenant_id="acme", kind="upgrade", status="running", step="started"
    )
    await repository.record_operation(legacy, "")
    lock = legacy.model_copy(update={"step": "lock"})
    await repository.transition(_change("wf-1").model_copy(update={"record": lock}), "r1")
    runs = await repository.operation_runs("wf-1")
    assert [(r.run_id, r.status, r.step) for r in runs] == [("r1", "running", "lock")]

    ended = legacy.model_copy(update={"status": "failed", "step": "failed", "error": "boom"})
    await repository.record_operation(ended, "r1")
    first = await repository.operation("wf-1", "r1")
    assert first and first.duration_seconds is not None
    late = _change("wf-1", S.ACTIVE, S.UPGRADING).model_copy(
        update={"record": legacy.model_copy(update={"step": "commit"})}
    )
    await repository.transition(late, "r1")
    op = await repository.operation("wf-1", "r1")
    assert op and (op.status, op.step, op.error) == ("failed", "failed", "boom")
    assert (op.finished_at, op.duration_seconds) == (first.finished_at, first.duration_seconds)


async def test_a_plan_changes_statements_are_compiled_once(
    repository: TenantRepository,
) -> None:
    """A plan change's control-plane steps (read, lock, step record, provisioning, commit)
    run for a second tenant from SQLAlchemy's compiled-statement cache: not one statement
    compiled afresh. Found in the upgrade profile: the provisioning statement had no cache
    key (its limits were a VALUES clause) and was compiled on every call, 5 ms each."""
    from sqlalchemy import event
    from sqlalchemy.engine.default import DefaultExecutionContext
    from sqlalchemy.engine.interfaces import CacheStats
    from sqlalchemy.sql import cache_key

    async def plan_change(tenant_id: str) -> None:
        wf = f"tenant-{tenant_id}-upgrade"
        step = OperationUpdate(
            workflow_id=wf, tenant_id=tenant_id, kind="upgrade", status="running", step="lock"
        )
        await repository.get(tenant_id)
        lock = TransitionInput(
            tenant_id=tenant_id,
            from_states=[S.ACTIVE],
            to_state=S.UPGRADING,
            operation="upgrade",
            workflow_id=wf,
            record=step,
        )
        await repository.transition(lock, "r1")
        await repository.record_operation(step.model_copy(update={"step": "billing"}), "r1")
        provision = StepEventInput(
            tenant_id=tenant_id, operation="upgrade", workflow_id=wf, key="k"
        )
        await repository.replace_entitlements(tenant_id, {**LIMITS, "users": 50}, provision)
        done = step.model_copy(update={"status": "completed", "step": "completed"})
        commit = lock.model_copy(
            update={
                "from_states": [S.UPGRADING],
                "to_state": S.ACTIVE,
                "record": done.model_copy(update={"result": {"plan": "professional"}}),
                "changes": {"plan": "professional"},
            }
        )
        await repository.transition(commit, "r1")

    await _create(repository, "acme")
    await plan_change("acme")
    await _create(repository, "globex")
    compiled: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if isinstance(context, DefaultExecutionContext) and context.compiled is not None:
            if context.cache_hit is not CacheStats.CACHE_HIT:
                compiled.append(f"{context.cache_hit.name}: {statement[:80]}")

    engine = repository.sessions.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    # on PostgreSQL every step is one statement built once (SQLite's transactions add reads
    # of their own): none of them generates its cache key again
    keyed: list[str] = []
    generate = cache_key.HasCacheKey._generate_cache_key

    def counted(self: Any) -> Any:
        keyed.append(type(self).__name__)
        return generate(self)

    cache_key.HasCacheKey._generate_cache_key = counted  # type: ignore[method-assign]
    try:
        await plan_change("globex")
    finally:
        cache_key.HasCacheKey._generate_cache_key = generate  # type: ignore[method-assign]
        event.remove(engine, "before_cursor_execute", count)
    assert (await repository.get("globex")).plan == "professional"
    assert compiled == []
    if repository.sessions.autocommits:
        assert keyed == []


async def test_reads_do_not_wait_for_an_open_write_transaction(
    repository: TenantRepository,
) -> None:
    """A worker's write transaction holds the (SQLite) write lock; an API read meanwhile
    answers from the last committed state instead of queueing behind it."""
    from sqlalchemy import update

    from lifecycle.persistence.tables import Tenant

    await _create(repository)
    async with repository.sessions.begin() as session:
        await session.execute(update(Tenant).where(Tenant.id == "acme").values(name="Renamed"))
        # the write lock is held until this block ends; a read that waited for it would
        # hit the 10 s guard (SQLite's busy timeout is 30 s) instead of returning
        seen = await asyncio.wait_for(repository.get("acme"), timeout=10)
        assert seen.name == "Acme"
        assert await asyncio.wait_for(repository.exists("acme"), timeout=10)
    assert (await repository.get("acme")).name == "Renamed"


async def test_list_filters_and_paginates(repository: TenantRepository) -> None:
    for name in ("a-one", "b-two", "c-three"):
        await _create(repository, name)
    await repository.transition(
        TransitionInput(
            tenant_id="b-two",
            from_states=[S.ACTIVE],
            to_state=S.SUSPENDED,
            operation="suspend",
            workflow_id="wf-s",
        )
    )
    page, total = await repository.list(limit=2)
    assert total == 3 and [t.tenant_id for t in page] == ["a-one", "b-two"]
    suspended, n = await repository.list(state="SUSPENDED")
    assert n == 1 and suspended[0].tenant_id == "b-two"
    assert await repository.count_by_state() == {"ACTIVE": 2, "SUSPENDED": 1}


async def test_concurrent_migrations_of_a_new_sqlite_file_both_succeed(tmp_path) -> None:
    """``tenantctl dev`` starts the API and the worker at once, and both migrate the new
    control-plane file: each migration must wait for the other's write lock (BEGIN IMMEDIATE),
    not fail with "database is locked" when its deferred transaction tries to write."""
    from lifecycle.persistence.engine import create_engine, migrate

    url = f"sqlite+aiosqlite:///{tmp_path / 'cp.db'}"
    engines = [create_engine(url) for _ in range(3)]
    try:
        await asyncio.gather(*(migrate(engine) for engine in engines))
        repo = TenantRepository(Sessions(engines[0]))
        await _create(repo)
        assert (await repo.get("acme")).state is S.ACTIVE
    finally:
        for engine in engines:
            await engine.dispose()
