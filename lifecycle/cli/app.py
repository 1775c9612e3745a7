"""``tenantctl``: the root app; every feature adds its own sub-app (one module each)."""

from __future__ import annotations

import typer

from lifecycle.cli import (
    certificates,
    datamap,
    db,
    deletion,
    dev,
    events,
    exports,
    health,
    onboarding,
    operations,
    plan_changes,
    plan_migrations,
    reactivation,
    reconciliation,
    simulate,
    suspension,
    tenants,
    tokens,
)

app = typer.Typer(help="Tenant Lifecycle control plane.", no_args_is_help=True)
for feature in (onboarding, plan_changes, suspension, reactivation, deletion):
    tenants.app.add_typer(feature.app)
app.add_typer(tenants.app, name="tenants")
app.add_typer(tenants.status_app)
app.add_typer(db.app, name="db")
app.add_typer(datamap.app, name="datamap")
app.add_typer(certificates.app, name="certificate")
app.add_typer(exports.app)
app.add_typer(exports.exports_app, name="exports")
app.add_typer(operations.app, name="operations")
app.add_typer(operations.plans_app)
app.add_typer(dev.app)
app.add_typer(health.app)
app.add_typer(tokens.app, name="tokens")
app.add_typer(reconciliation.app)
app.add_typer(simulate.app)
app.add_typer(plan_migrations.app, name="bulk")
app.add_typer(events.app, name="events")
