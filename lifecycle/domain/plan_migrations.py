"""Bulk plan migrations: every tenant on one plan moved to another plan (or another price of
the same plan) by one durable fan-out workflow. Pure: importable from workflow code.

Rules: the target is resolved from the plan catalogue before anything starts (``to_plan``
above ``from_plan``: upgrades; below: downgrades; ``to_price_id``: the same plan on another
price, changed now). A tenant that cannot move (not ACTIVE, usage over the target's limits,
card declined, ...) is listed with its cause and never retried by the migration.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from lifecycle.domain.base import DomainModel
from lifecycle.domain.errors import InvalidInput, LifecycleError
from lifecycle.domain.plan_changes import Effective, ProrationBehavior
from lifecycle.domain.text import Printable

#: Largest explicit tenant list a migration's filter takes.
MAX_FILTER_IDS = 10_000
MigrationKind = Literal["upgrade", "downgrade"]
MigrationStatus = Literal["running", "paused", "cancelling", "cancelled", "completed"]


class MigrationFilter(DomainModel):
    """Which tenants of ``from_plan`` to move (all of them when empty): ids starting with
    ``tenant_id_prefix`` and/or the listed ``tenant_ids``."""

    tenant_id_prefix: Printable | None = Field(default=None, max_length=63)
    tenant_ids: list[Printable] | None = Field(default=None, max_length=MAX_FILTER_IDS)


class PlanMigrationRequest(DomainModel):
    """Body of ``POST /bulk/plan-migrations``: exactly one of ``to_plan`` and ``to_price_id``.

    ``effective``: ``immediately`` (default) or, for a migration to a lower plan only,
    ``period_end`` (each tenant's downgrade waits for its period's end; the migration counts
    it done once scheduled).
    """

    from_plan: Printable = Field(max_length=64)
    to_plan: Printable | None = Field(default=None, max_length=64)
    to_price_id: Printable | None = Field(default=None, max_length=255)
    filter: MigrationFilter = Field(default_factory=MigrationFilter)
    effective: Effective = "immediately"
    concurrency: int = Field(default=50, ge=1, le=500)

    @model_validator(mode="after")
    def _one_target(self) -> PlanMigrationRequest:
        if (self.to_plan is None) == (self.to_price_id is None):
            raise ValueError("give exactly one of to_plan and to_price_id")
        return self


class PlanMigrationInput(DomainModel):
    """Input of ``PlanMigrationWorkflow`` (resolved from the catalogue by the client), with
    the state a continue-as-new carries over (``cursor`` = last tenant id handled, counts).
    ``continue_as_new_after``: children a run starts before it continues as new (about 4
    history events each)."""

    migration_id: str
    kind: MigrationKind
    from_plan: str
    to_plan: str
    limits: dict[str, int]
    price_id: str
    previous_price_id: str
    effective: Effective = "immediately"
    proration_behavior: ProrationBehavior = "create_prorations"
    filter: MigrationFilter = Field(default_factory=MigrationFilter)
    concurrency: int = 50
    actor: str = "api"
    continue_as_new_after: int = 1000
    started_at: str = ""
    total: int | None = None
    cursor: str | None = None
    done: int = 0
    failed: int = 0
    paused: bool = False
    cancel_requested_by: str | None = None


class MigrationTenant(BaseModel):
    """A tenant the migration handles next: its state and, for a downgrade, the resources
    over the target's limits (then it is listed as failed, not moved)."""

    tenant_id: str
    state: str
    over_limit: str | None = None


class MigrationBatchQuery(DomainModel):
    """The next ``limit`` tenants of ``from_plan`` matching ``filter`` with ids after
    ``after`` (keyset order); ``limits``: the target's, checked against usage when given."""

    from_plan: str
    filter: MigrationFilter
    after: str | None = None
    limit: int = 100
    limits: dict[str, int] | None = None


class MigrationBatch(BaseModel):
    """One page of tenants, in id order; empty at the end."""

    tenants: list[MigrationTenant]


class MigrationFailure(BaseModel):
    """A tenant the migration did not move: ``cause`` is the error type (``CardDeclined``,
    ``UsageExceedsLimits``, ``StateConflict``, ...), ``message`` what it said."""

    tenant_id: str
    cause: str
    message: str


class MigrationFailuresInput(DomainModel):
    """Failures of ``migration_id`` to record (idempotent per tenant)."""

    migration_id: str
    failures: list[MigrationFailure]


class MigrationControl(DomainModel):
    """Argument of the ``pause``, ``resume`` and ``cancel`` updates: who asks."""

    actor: str = "api"


class PlanMigrationProgress(BaseModel):
    """A migration's progress: tenants ``done`` (moved, or scheduled at period end),
    ``failed`` (listed in ``failures`` when read through the client), ``in_flight`` and
    ``remaining`` (not handled yet; ``null`` until counted)."""

    migration_id: str
    workflow_id: str
    status: MigrationStatus
    from_plan: str
    to_plan: str
    price_id: str
    effective: Effective
    total: int | None
    done: int
    failed: int
    in_flight: int
    remaining: int | None
    started_at: str
    cancelled_by: str | None = None
    failures: list[MigrationFailure] = Field(default_factory=list)


class PlanMigrationStarted(BaseModel):
    """The 202 answer of ``POST /bulk/plan-migrations``: the migration's id and workflow,
    and what it moves (``kind``: the child workflows it starts)."""

    migration_id: str
    workflow_id: str
    run_id: str | None
    kind: MigrationKind
    from_plan: str
    to_plan: str
    price_id: str
    effective: Effective
    status: str = "queued"


class MigrationNotFound(LifecycleError):
    """No bulk plan migration with this id."""

    status = 404
    title = "Plan migration not found"

    def __init__(self, migration_id: str) -> None:
        super().__init__(f"plan migration '{migration_id}' does not exist")


def migration_workflow_id(migration_id: str) -> str:
    """``plan-migration-<id>``: the workflow id of a bulk plan migration."""
    return f"plan-migration-{migration_id}"


def migration_kind(from_rank: int, to_rank: int, to_price_id: str | None) -> MigrationKind:
    """Upgrade above, downgrade below; another price of the same plan moves now (an
    "upgrade" child: the saga without the usage check). Raises InvalidInput for the same
    plan without ``to_price_id``."""
    if to_rank > from_rank or (to_price_id is not None and to_rank == from_rank):
        return "upgrade"
    if to_rank < from_rank:
        return "downgrade"
    raise InvalidInput("from_plan and to_plan are the same plan: give to_price_id to reprice it")
