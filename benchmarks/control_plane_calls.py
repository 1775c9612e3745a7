"""The control-plane calls of one upgrade on PostgreSQL, without Temporal: the client's read,
the workflow's read, the lock, two step records, the provisioning step and the commit, as
``TenantRepository`` makes them, against the same statements sent by asyncpg alone.

    .venv/bin/python -m benchmarks.control_plane_calls [--tenants 300] [--rounds 3]

Creates a scratch database ``tl_bench_<random>``, migrates it and onboards ``--tenants``
tenants (not timed). Each round then runs the calls of one plan change for every tenant, one
after the other (a plan change up and back down the plan ladder alternately), and measures:

- product: CPU time of this process and wall time per plan change, and the driver calls
  (round trips: each asyncpg ``fetch``/``fetchrow``/``execute``) per plan change; the
  client's read on an engine that pings each checkout (the API's), the rest on one that
  does not (the worker's, ``control_plane_engine(retried=True)``);
- floor: the statements and parameters of one product plan change, captured at the driver,
  sent again through asyncpg alone (prepared, as SQLAlchemy's asyncpg dialect sends them)
  the same number of times: the cost of the round trips without SQLAlchemy or the product
  (the ping included; a replayed compare-and-set finds its row changed and writes nothing,
  which costs the client the same).

Prints both per round, and the ratio floor / product of CPU per plan change (1.0: the product
adds nothing to the driver). Drops the database at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from benchmarks.harness import PG_ADMIN, load_average, scratch_pg_database
from lifecycle.domain.billing import BillingResult
from lifecycle.domain.onboarding import CreateTenantInput, OnboardRequest
from lifecycle.domain.plan_changes import StepEventInput
from lifecycle.domain.states import TenantState
from lifecycle.domain.tenants import OperationUpdate, TransitionInput
from lifecycle.persistence.engine import Sessions, create_engine, migrate
from lifecycle.persistence.tenants import TenantRepository

#: The plans a round moves every tenant to, alternately, and their limits.
PLANS = {
    "professional": {"users": 50, "storage_gb": 100, "projects": 20, "api_calls_per_day": 10**5},
    "starter": {"users": 10, "storage_gb": 10, "projects": 5, "api_calls_per_day": 10**4},
}


async def plan_change(
    client: TenantRepository, repository: TenantRepository, tenant_id: str, plan: str, n: int
) -> None:
    """The control-plane calls of upgrade number ``n`` of ``tenant_id`` to ``plan``, in the
    order ``UpgradeWorkflow`` makes them: the client's check on ``client`` (an engine that
    pings each checkout, as the API's), the workflow's steps on ``repository`` (the worker's
    engine, which does not)."""
    workflow_id, run_id = f"tenant-{tenant_id}-upgrade-{n}", f"run-{n}"
    step = OperationUpdate(
        workflow_id=workflow_id, tenant_id=tenant_id, kind="upgrade", status="running"
    )
    before = await client.get(tenant_id)
    await repository.get(tenant_id)  # the workflow's read_tenant
    lock = TransitionInput(
        tenant_id=tenant_id,
        from_states=[TenantState.ACTIVE],
        to_state=TenantState.UPGRADING,
        operation="upgrade",
        workflow_id=workflow_id,
        changes={"pending_plan_change": None},
        detail={"from_plan": before.plan, "to_plan": plan},
        record=step.model_copy(update={"step": "lock"}),
    )
    await repository.transition(lock, run_id)
    await repository.record_operation(step.model_copy(update={"step": "provision"}), run_id)
    event = StepEventInput(
        tenant_id=tenant_id,
        operation="upgrade",
        workflow_id=workflow_id,
        key=f"{workflow_id}:provision",
        detail={"step": "provision-entitlements", "plan": plan},
    )
    await repository.replace_entitlements(tenant_id, PLANS[plan], event)
    await repository.record_operation(step.model_copy(update={"step": "billing"}), run_id)
    done = step.model_copy(
        update={"status": "completed", "step": "completed", "result": {"plan": plan}}
    )
    commit = lock.model_copy(
        update={
            "from_states": [TenantState.UPGRADING],
            "to_state": TenantState.ACTIVE,
            "changes": {"plan": plan},
            "record": done,
        }
    )
    await repository.transition(commit, run_id)


class DriverSpy:
    """Counts asyncpg's round trips (and, while ``capture`` is set, keeps each statement's
    query and arguments) by wrapping its connection and prepared statement."""

    def __init__(self) -> None:
        self.calls = 0
        self.capture: list[tuple[str, tuple[Any, ...]]] | None = None
        self._undo: list[Callable[[], None]] = []

    def __enter__(self) -> DriverSpy:
        spy = self
        for cls, name in (
            (asyncpg.Connection, "execute"),
            (asyncpg.Connection, "fetchrow"),
            (asyncpg.prepared_stmt.PreparedStatement, "fetch"),
        ):
            method = getattr(cls, name)

            async def counted(self: Any, *args: Any, _method: Any = method, **kw: Any) -> Any:
                spy.calls += 1
                if spy.capture is not None:
                    prepared = isinstance(self, asyncpg.prepared_stmt.PreparedStatement)
                    spy.capture.append((self._query, args) if prepared else (args[0], args[1:]))
                return await _method(self, *args, **kw)

            setattr(cls, name, counted)
            self._undo.append(lambda cls=cls, name=name, method=method: setattr(cls, name, method))
        return self

    def __exit__(self, *_: object) -> None:
        for undo in self._undo:
            undo()


async def timed(work: Callable[[], Awaitable[None]]) -> tuple[float, float]:
    """CPU seconds of this process and wall seconds of ``work``."""
    cpu, wall = time.process_time(), time.perf_counter()
    await work()
    return time.process_time() - cpu, time.perf_counter() - wall


async def main(args: argparse.Namespace) -> None:
    print(f"load average at the start: {load_average()}")
    async with scratch_pg_database(args.pg_admin_url) as url:
        engine = create_engine(url, pool_size=2, max_overflow=0, pre_ping=False)
        client_engine = create_engine(url, pool_size=2, max_overflow=0)
        await migrate(engine)
        repository = TenantRepository(Sessions(engine))
        client = TenantRepository(Sessions(client_engine))
        tenants = [f"calls-{i:05d}" for i in range(args.tenants)]
        for tenant_id in tenants:
            request = OnboardRequest(
                tenant_id=tenant_id, name=tenant_id, email=f"{tenant_id}@example.com"
            )
            await repository.create_tenant(
                CreateTenantInput(
                    request=request,
                    limits=PLANS["starter"],
                    billing=BillingResult(skipped=True),
                    workflow_id=f"tenant-{tenant_id}-onboard",
                    actor="bench",
                )
            )
        raw = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        product_cpu = floor_cpu = 0.0
        with DriverSpy() as spy:
            await plan_change(client, repository, tenants[0], "professional", -1)  # warm-up
            for r in range(args.rounds):
                plan = list(PLANS)[r % 2]
                spy.capture = []  # the first plan change's statements, for the floor
                await plan_change(client, repository, tenants[0], plan, r)
                statements, spy.capture = spy.capture, None
                calls = spy.calls

                async def product(plan: str = plan, r: int = r) -> None:
                    for tenant_id in tenants[1:]:
                        await plan_change(client, repository, tenant_id, plan, r)

                cpu, wall = await timed(product)
                per_change = (spy.calls - calls) / (len(tenants) - 1)

                async def floor(statements: list[tuple[str, tuple[Any, ...]]] = statements) -> None:
                    prepared = [(await raw.prepare(q), a) for q, a in statements]
                    for _ in tenants[1:]:
                        for statement, arguments in prepared:
                            await statement.fetch(*arguments)

                floor_cpu_r, floor_wall = await timed(floor)
                n = len(tenants) - 1
                product_cpu += cpu
                floor_cpu += floor_cpu_r
                print(
                    f"round {r + 1} (to {plan}): product {cpu / n * 1e3:.2f} ms CPU, "
                    f"{wall / n * 1e3:.2f} ms wall, {per_change:.1f} driver calls per plan "
                    f"change; floor ({len(statements)} statements by asyncpg alone) "
                    f"{floor_cpu_r / n * 1e3:.2f} ms CPU, {floor_wall / n * 1e3:.2f} ms wall"
                )
        await raw.close()
        await engine.dispose()
        await client_engine.dispose()
    print(f"ratio floor / product, CPU per plan change: {floor_cpu / product_cpu:.2f}")
    print(f"load average at the end: {load_average()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pg-admin-url", default=PG_ADMIN)
    asyncio.run(main(parser.parse_args()))
