"""Plan catalogue: the hierarchy free < starter < professional < enterprise, per-plan limits
and billing price ids, loaded from an operator-editable TOML file (``PLANS_PATH``).

A limit of ``-1`` means unlimited. ``storage_gb`` is in gigabytes; the other limits are counts
(``api_calls_per_day`` per UTC day).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lifecycle.domain.base import DomainModel
from lifecycle.domain.dunning import DunningStep, check_ladder, default_ladder
from lifecycle.domain.errors import ConfigError, InvalidInput

DEFAULT_PLANS_PATH = Path(__file__).with_name("plans.toml")
RESOURCES = ("users", "storage_gb", "projects", "api_calls_per_day")
UNLIMITED = -1
#: How a plan change applies (the plans file's ``[changes.<from>]`` tables): now, at the
#: billing period's end, or never.
ChangeRule = Literal["immediate", "end_of_period", "not_allowed"]


class PlanLimits(BaseModel):
    """Entitlement limits of a plan; -1 is unlimited."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    users: int = Field(ge=-1)
    storage_gb: int = Field(ge=-1)
    projects: int = Field(ge=-1)
    api_calls_per_day: int = Field(ge=-1)

    def as_dict(self) -> dict[str, int]:
        return self.model_dump()


TrialEndBehavior = Literal["downgrade", "suspend", "dunning"]


class Plan(BaseModel):
    """One plan: its name, Stripe price id, list price (cents per month) and limits.

    ``dunning``: the plan's dunning ladder (:mod:`lifecycle.domain.dunning`; None: the
    default built from the settings); ``trial_end_behavior``: what a trial that ends without
    a payment method does (downgrade to the lowest plan, suspend, or enter dunning).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    price_id: str = Field(min_length=1)
    monthly_price_cents: int = Field(ge=0, default=0)
    limits: PlanLimits
    dunning: list[DunningStep] | None = None
    trial_end_behavior: TrialEndBehavior = "downgrade"

    @field_validator("dunning")
    @classmethod
    def _ladder(cls, steps: list[DunningStep] | None) -> list[DunningStep] | None:
        return None if steps is None else check_ladder(steps)


class UsageViolation(BaseModel):
    """One resource whose current usage exceeds a plan's limit."""

    resource: str
    usage: int
    limit: int

    def __str__(self) -> str:
        return f"{self.resource} {self.usage} > {self.limit}"


class PlanCatalog(BaseModel):
    """The ordered plan hierarchy, lowest first."""

    model_config = ConfigDict(frozen=True)

    plans: list[Plan] = Field(min_length=1)
    #: Plan-change rules: ``changes[from][to]``; a pair not listed takes :meth:`rule`'s default.
    changes: dict[str, dict[str, ChangeRule]] = Field(default_factory=dict)

    def rule(self, current: str, target: str) -> ChangeRule:
        """How a change from plan ``current`` to ``target`` applies: the plans file's
        ``[changes.<current>] <target> = ...``, by default ``immediate`` for an upgrade and
        ``end_of_period`` for a downgrade. Raises InvalidInput for an unknown plan."""
        self.get(current), self.get(target)
        default: ChangeRule = (
            "immediate" if self.rank(target) > self.rank(current) else "end_of_period"
        )
        return self.changes.get(current, {}).get(target, default)

    def names(self) -> list[str]:
        return [p.name for p in self.plans]

    def get(self, name: str) -> Plan:
        """Return the plan called ``name``; raise :class:`InvalidInput` naming the known plans."""
        for plan in self.plans:
            if plan.name == name:
                return plan
        raise InvalidInput(f"unknown plan '{name}'; known plans: {', '.join(self.names())}")

    def rank(self, name: str) -> int:
        """Position of plan ``name`` in the hierarchy (0 = lowest)."""
        return self.names().index(self.get(name).name)

    def dunning_ladder(self, name: str, grace_days: int, auto_downgrade: bool) -> list[DunningStep]:
        """Plan ``name``'s dunning ladder, or :func:`default_ladder` of the settings
        (PAYMENT_FAILURE_GRACE_DAYS, ENABLE_AUTO_DOWNGRADE) when it declares none.

        A ``downgrade`` step without ``to_plan`` gets the lowest plan below ``name`` that the
        change rules allow (``[changes]``: not ``not_allowed``); when they allow none, the
        step suspends instead. An explicit ``to_plan`` the rules forbid is refused at load
        (:func:`load_plans`)."""
        ladder = self.get(name).dunning
        steps = list(ladder) if ladder is not None else default_ladder(grace_days, auto_downgrade)
        below = [p.name for p in self.plans if self.rank(p.name) < self.rank(name)]
        allowed = [p for p in below if self.rule(name, p) != "not_allowed"]
        resolved = []
        for step in steps:
            if step.kind == "downgrade" and step.to_plan is None and below:
                if allowed:
                    step = step.model_copy(update={"to_plan": allowed[0]})
                else:
                    step = step.model_copy(update={"kind": "suspend"})
            resolved.append(step)
        return resolved

    def require_upgrade(self, current: str, target: str) -> Plan:
        """Return the target plan if it is strictly above ``current``, else raise InvalidInput."""
        plan = self.get(target)
        if self.rank(target) <= self.rank(current):
            raise InvalidInput(
                f"cannot upgrade from '{current}' to '{target}': the target must be above the "
                f"current plan in {' < '.join(self.names())}"
            )
        return plan

    def require_downgrade(self, current: str, target: str) -> Plan:
        """Return the target plan if it is strictly below ``current``, else raise InvalidInput."""
        plan = self.get(target)
        if self.rank(target) >= self.rank(current):
            raise InvalidInput(
                f"cannot downgrade from '{current}' to '{target}': the target must be below the "
                f"current plan in {' < '.join(self.names())}"
            )
        return plan


def usage_violations(
    usage: dict[str, int], limits: PlanLimits | dict[str, int]
) -> list[UsageViolation]:
    """List each resource whose ``usage`` exceeds ``limits`` (a plan's, or a tenant's
    entitlements as ``{resource: limit}``); unlimited never does."""
    out = []
    items = limits.as_dict() if isinstance(limits, PlanLimits) else limits
    for resource, limit in items.items():
        used = int(usage.get(resource, 0))
        if limit != UNLIMITED and used > limit:
            out.append(UsageViolation(resource=resource, usage=used, limit=limit))
    return out


def load_plans(path: str | Path | None = None) -> PlanCatalog:
    """Load and validate the plans file (TOML, ``[[plans]]`` entries lowest first).

    Raises :class:`ConfigError` naming the file and the offending field when the file is
    missing, not TOML, or does not validate (unknown field, missing limit, duplicate name, a
    change rule naming an unknown plan or making an upgrade ``end_of_period``).
    """
    file = Path(path) if path else DEFAULT_PLANS_PATH
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"plans file {file}: not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"plans file {file}: not valid TOML: {exc}") from exc
    try:
        catalog = PlanCatalog.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"plans file {file}: {problems}") from exc
    names = catalog.names()
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"plans file {file}: duplicate plan name(s): {', '.join(duplicates)}")
    for current, targets in catalog.changes.items():
        for target, rule in targets.items():
            where = f"plans file {file}: changes.{current}.{target}"
            if current not in names or target not in names:
                raise ConfigError(f"{where}: unknown plan; known plans: {', '.join(names)}")
            if current == target:
                raise ConfigError(f"{where}: a plan cannot change to itself")
            if rule == "end_of_period" and names.index(target) > names.index(current):
                raise ConfigError(
                    f"{where}: end_of_period upgrades are not supported (upgrades apply now "
                    "with proration, or are not_allowed)"
                )
    for plan in catalog.plans:
        for step in plan.dunning or []:
            if step.to_plan is not None and step.to_plan not in names:
                raise ConfigError(
                    f"plans file {file}: plans.{plan.name}.dunning: unknown to_plan "
                    f"'{step.to_plan}'; known plans: {', '.join(names)}"
                )
            if step.to_plan is not None and catalog.rule(plan.name, step.to_plan) == (
                "not_allowed"
            ):
                raise ConfigError(
                    f"plans file {file}: plans.{plan.name}.dunning: downgrade to "
                    f"'{step.to_plan}' but the rule [changes.{plan.name}] {step.to_plan} is "
                    "not_allowed"
                )
    return catalog


class ResolvedPlan(DomainModel):
    """A plan's name, entitlement limits and billing price id, read from the plans file.

    ``below``: the plans ranked under it (moving from one of them here is an upgrade) and
    ``upgrade_proration`` Stripe's proration of such a move (PRORATION_BEHAVIOR); both default
    empty/``none`` in results recorded before they existed (issue 12, defect 4).
    """

    name: str
    limits: dict[str, int]
    price_id: str
    below: list[str] = Field(default_factory=list)
    upgrade_proration: str = "none"

    def proration_from(self, current: str) -> str:
        """Stripe's ``proration_behavior`` of moving a subscription from plan ``current`` to
        this one: the upgrade's for a higher plan, ``none`` otherwise (the new price applies
        from the next invoice)."""
        return self.upgrade_proration if current in self.below else "none"
