"""``/console``: the tenant console's pages, kept out of the OpenAPI document.

Every page but the sign-in needs the session cookie (:mod:`lifecycle.console.session`); the
API's guard lets ``/console`` paths through without a bearer token for that reason. Reads
and actions go through :class:`LifecycleClient`; an action is a GET of its confirmation page
(what will happen, the form) and a POST that runs it with the signed-in token's name as the
audit actor. A POST needs the CSRF token (403) and the role of the action (403), whatever the
page showed.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from temporalio.service import RPCError

from lifecycle.api.auth import Principal, Role, TokenRegistry
from lifecycle.client.lifecycle import LifecycleClient
from lifecycle.console.chart import day_chart
from lifecycle.console.session import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    SESSION_SECONDS,
    ConsoleKeys,
    csrf_nonce,
    set_cookie,
)
from lifecycle.domain.certificate import Verification, key_id, load_public_key, verify
from lifecycle.domain.deletion import (
    CertificateNotFound,
    CertificateView,
    DeleteRequest,
    LegalHoldRequest,
    PurgeNowRequest,
)
from lifecycle.domain.errors import ConfigError, LifecycleError
from lifecycle.domain.reactivation import ReactivateRequest
from lifecycle.domain.states import TenantState
from lifecycle.domain.suspension import SuspendRequest
from lifecycle.domain.tenants import OperationView, TenantView, validate_tenant_id

router = APIRouter(prefix="/console", include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
PAGE_SIZE = 25
#: Days the overview's chart covers (UTC days, today included).
CHART_DAYS = 14
#: Purges the overview lists: those due within this many days.
PURGE_HORIZON_DAYS = 7
#: Largest form body the console reads (bytes); the guard's MAX_REQUEST_BYTES bounds it too.
MAX_FORM_BYTES = 16 * 1024


#: Timeline icons by the first matching part of an audit row's operation name (the operation
#: is written next to it, so the icon is decoration: aria-hidden).
EVENT_ICONS = (
    ("onboard", "✚"),
    ("upgrade", "▲"),
    ("downgrade", "▼"),
    ("suspen", "‖"),
    ("reactivat", "▶"),
    ("legal-hold", "§"),
    ("purge", "⌫"),
    ("retention", "◷"),
    ("delet", "✖"),
    ("export", "⇩"),
    ("payment", "$"),
    ("invoice", "$"),
    ("billing", "$"),
)


def event_icon(operation: str) -> str:
    """The timeline icon of an audit row's ``operation`` (a dot when none matches)."""
    return next((icon for part, icon in EVENT_ICONS if part in operation), "•")


templates.env.filters["icon"] = event_icon


class Refused(Exception):
    """A console request refused with ``status`` and a message shown on the page."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


@dataclass(frozen=True)
class Action:
    """An action of the tenant page: the role it needs, the states it is offered in and what
    its confirmation says will happen."""

    title: str
    role: Role
    states: frozenset[TenantState]
    explains: str


_ACTIVE = frozenset({TenantState.ACTIVE})
ACTIONS: dict[str, Action] = {
    "upgrade": Action(
        "Upgrade",
        "operator",
        _ACTIVE,
        "Provisions the higher plan's entitlements, then changes the Stripe subscription "
        "(prorated now). A failed step is compensated and the tenant stays on its plan.",
    ),
    "downgrade": Action(
        "Downgrade",
        "operator",
        _ACTIVE,
        "Refused while usage exceeds a limit of the target plan. At period end it stays "
        "pending until the billing period ends; immediately it applies now.",
    ),
    "cancel-downgrade": Action(
        "Cancel the pending downgrade",
        "operator",
        _ACTIVE,
        "The tenant keeps its current plan and entitlements; the downgrade waiting for the end "
        "of the billing period is dropped.",
    ),
    "suspend": Action(
        "Suspend",
        "operator",
        _ACTIVE,
        "Revokes the tenant's access and pauses billing; its data is kept. Reactivate undoes it.",
    ),
    "reactivate": Action(
        "Reactivate",
        "operator",
        frozenset({TenantState.SUSPENDED, TenantState.DELETED}),
        "Restores access and billing. A soft-deleted tenant can be reactivated only within "
        "its retention period, before the purge starts.",
    ),
    "export": Action(
        "Export",
        "operator",
        _ACTIVE,
        "Writes an archive of all the tenant's data (GDPR Art. 15/20); the tenant is "
        "EXPORTING meanwhile. The download link appears under Exports when it completes.",
    ),
    "delete": Action(
        "Soft delete",
        "operator",
        frozenset({TenantState.ACTIVE, TenantState.SUSPENDED}),
        "Revokes access and stops billing at once; the data is kept for the retention period "
        "(30 to 90 days), then purged for good and a deletion certificate is signed.",
    ),
    "legal-hold": Action(
        "Place legal hold",
        "dpo",
        frozenset(TenantState),
        "While a legal hold stands, no purge runs, even past the retention period.",
    ),
    "release-hold": Action(
        "Release legal hold",
        "dpo",
        frozenset(TenantState),
        "A purge whose time has passed proceeds once the hold is released.",
    ),
    "purge": Action(
        "Purge now",
        "dpo",
        frozenset({TenantState.DELETED}),
        "Erases every store of the tenant NOW, waiving the rest of its retention on a written "
        "request (GDPR Art. 17(1)). This cannot be undone. Type the tenant id to confirm.",
    ),
}


def offered(tenant: TenantView, principal: Principal) -> list[str]:
    """The actions the tenant page shows ``principal`` for ``tenant``'s state."""
    names = []
    for name, action in ACTIONS.items():
        if not principal.may(action.role) or tenant.state not in action.states:
            continue
        if tenant.purged_at is not None:
            continue
        if tenant.legal_hold and name in ("legal-hold", "purge"):
            continue  # no purge while a legal hold stands (the client refuses it too)
        if name == "release-hold" and not tenant.legal_hold:
            continue
        pending = (tenant.pending_plan_change or {}).get("operation") == "downgrade"
        if name == "downgrade" and pending or name == "cancel-downgrade" and not pending:
            continue  # one downgrade at a time: while one waits, it can only be cancelled
        names.append(name)
    return names


# -- plumbing -------------------------------------------------------------------------------


def _client(request: Request) -> LifecycleClient:
    return request.app.state.lifecycle


def _keys(request: Request) -> ConsoleKeys:
    keys = getattr(request.app.state, "console_keys", None)
    if keys is None:
        keys = ConsoleKeys(_client(request).settings.secret("signing_secret"))
        request.app.state.console_keys = keys
    return keys


def _principal(request: Request) -> Principal | None:
    registry = getattr(request.app.state, "tokens", None)
    if not isinstance(registry, TokenRegistry):
        return None
    return _keys(request).principal(registry, request.cookies.get(SESSION_COOKIE))


def _render(
    request: Request,
    name: str,
    context: dict[str, Any],
    status: int = 200,
    principal: Principal | None = None,
) -> Response:
    """Render template ``name`` with the CSRF token of the request's CSRF cookie (set when
    new) and the no-store, no-framing headers every console page carries."""
    nonce, new = csrf_nonce(request)
    response = templates.TemplateResponse(
        request,
        name,
        {"csrf": _keys(request).csrf_token(nonce), "principal": principal, **context},
        status_code=status,
    )
    if new:
        set_cookie(request, response, CSRF_COOKIE, nonce, SESSION_SECONDS)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"
    )
    return response


async def _form(request: Request) -> dict[str, str]:
    """The POSTed form (application/x-www-form-urlencoded) after its CSRF check; raises
    Refused 415 for another body, 413 past MAX_FORM_BYTES, 403 without a valid CSRF token."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise Refused(415, "the console accepts only its own forms")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise Refused(413, "form too large")
    form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    if not _keys(request).csrf_valid(request.cookies.get(CSRF_COOKIE), form.get("csrf")):
        raise Refused(403, "the form's CSRF token is missing or invalid: reload the page")
    return form


def _signed_in(request: Request) -> Principal:
    principal = _principal(request)
    if principal is None:
        raise Refused(401, "sign in with an API token")
    return principal


def _refusal(request: Request, exc: Refused, principal: Principal | None) -> Response:
    if exc.status == 401 and request.method == "GET":
        return RedirectResponse("/console/sign-in", status_code=303)
    return _render(request, "error.html", {"error": exc.detail}, exc.status, principal)


# -- sign-in --------------------------------------------------------------------------------


@router.get("")
async def home(request: Request) -> Response:
    target = "/console/tenants" if _principal(request) else "/console/sign-in"
    return RedirectResponse(target, status_code=303)


@router.get("/sign-in")
async def sign_in_page(request: Request) -> Response:
    return _render(request, "sign_in.html", {})


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    try:
        form = await _form(request)
    except Refused as exc:
        return _refusal(request, exc, None)
    registry = getattr(request.app.state, "tokens", None)
    token = form.get("token", "").strip()
    if not isinstance(registry, TokenRegistry) or not token or not registry.authenticate(token):
        return _render(request, "sign_in.html", {"error": "unknown token"}, 401)
    response = RedirectResponse("/console/tenants", status_code=303)
    set_cookie(request, response, SESSION_COOKIE, _keys(request).seal(token), SESSION_SECONDS)
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    try:
        await _form(request)
    except Refused as exc:
        return _refusal(request, exc, _principal(request))
    response = RedirectResponse("/console/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/console")
    return response


# -- pages ----------------------------------------------------------------------------------


@router.get("/tenants")
async def tenants_page(request: Request) -> Response:
    try:
        principal = _signed_in(request)
    except Refused as exc:
        return _refusal(request, exc, None)
    lc = _client(request)
    params = request.query_params
    search = params.get("q", "").strip()[:100]
    state = params.get("state") or None
    plan = params.get("plan") or None
    states = [s.value for s in TenantState]
    plans = lc.settings.plans.names()
    if state not in (None, *states) or plan not in (None, *plans):
        return _render(request, "error.html", {"error": "unknown state or plan"}, 422, principal)
    page = int(params["page"]) if params.get("page", "").isdigit() else 1
    page = max(1, min(page, 100_000))
    items, total = await lc.list_tenants(
        state=state,
        plan=plan,
        search=search or None,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    pages = max(1, math.ceil(total / PAGE_SIZE))

    def link(**changes: Any) -> str:
        query = {"q": search, "state": state or "", "plan": plan or "", "page": page} | changes
        return "/console/tenants?" + urlencode({k: v for k, v in query.items() if v})

    return _render(
        request,
        "tenants.html",
        {
            "items": items,
            "total": total,
            "page": page,
            "pages": pages,
            "search": search,
            "state": state,
            "plan": plan,
            "states": states,
            "plans": plans,
            "counts": await lc.tenant_counts(),
            "link": link,
        },
        principal=principal,
    )


@router.get("/overview")
async def overview_page(request: Request) -> Response:
    """Tenants by state, operations per day by outcome (an SVG chart), the purges due within
    PURGE_HORIZON_DAYS and the latest failed operations with their cause."""
    try:
        principal = _signed_in(request)
    except Refused as exc:
        return _refusal(request, exc, None)
    lc = _client(request)
    now = datetime.now(UTC)
    counts = await lc.tenant_counts()
    due = await lc.purges_due(PURGE_HORIZON_DAYS)
    return _render(
        request,
        "overview.html",
        {
            "states": [s.value for s in TenantState],
            "counts": counts,
            "chart": day_chart(await lc.operations_by_day(CHART_DAYS), now.date(), CHART_DAYS),
            "chart_days": CHART_DAYS,
            "due": [(t, _days_left(t.purge_scheduled_at, now)) for t in due],
            "horizon": PURGE_HORIZON_DAYS,
            "failed": await lc.failed_operations(20),
            "ui": _temporal_ui(lc),
        },
        principal=principal,
    )


def _days_left(at: datetime | None, now: datetime) -> int | None:
    """Whole days from ``now`` until ``at``, rounded up, never below 0; None without ``at``."""
    if at is None:
        return None
    return max(0, math.ceil((at - now).total_seconds() / 86400))


@router.get("/tenants/{tenant_id}")
async def tenant_page(request: Request, tenant_id: str) -> Response:
    try:
        principal = _signed_in(request)
        tenant = await _tenant(request, tenant_id)
    except Refused as exc:
        return _refusal(request, exc, _principal(request))
    lc = _client(request)
    events = await lc.events(tenant_id, limit=1000)
    recorded, _ = await lc.tenant_operations(tenant_id, limit=20)
    operations = [await _live(lc, op) for op in recorded]
    exports = await lc.exports.list_exports(tenant_id)
    now = datetime.now(UTC)
    days_left = None if tenant.purged_at else _days_left(tenant.purge_scheduled_at, now)
    # suspension and deletion revoke the entitlements: usage is not "over" a revoked limit
    revoked = tenant.state in REVOKED_STATES
    bars = [
        {
            "resource": resource,
            "usage": tenant.usage.get(resource, 0),
            "limit": limit,
            "percent": _percent(tenant.usage.get(resource, 0), limit),
            "over": not revoked and limit >= 0 and tenant.usage.get(resource, 0) > limit,
        }
        for resource, limit in sorted(tenant.entitlements.items())
    ]
    plans = lc.settings.plans.names()
    current = plans.index(tenant.plan) if tenant.plan in plans else -1
    return _render(
        request,
        "tenant.html",
        {
            "tenant": tenant,
            "events": list(reversed(events)),
            "operations": operations,
            "refresh": refresh_ms(tenant, operations),
            "exports": exports,
            "days_left": days_left,
            "retention_percent": _retention_percent(tenant, now),
            "bars": bars,
            "revoked": revoked,
            "actions": {name: ACTIONS[name] for name in offered(tenant, principal)},
            "higher": plans[current + 1 :] if current >= 0 else [],
            "lower": plans[:current] if current > 0 else [],
            "ui": _temporal_ui(lc),
            "certificate": await _certificate(lc, tenant) if principal.may("dpo") else None,
            "notice": request.query_params.get("notice", "")[:300],
        },
        principal=principal,
    )


async def _certificate(
    lc: LifecycleClient, tenant: TenantView
) -> tuple[CertificateView, Verification] | None:
    """A purged tenant's deletion certificate and its verification under the control plane's
    public keys (current and retired), as ``tenantctl certificate verify`` does; None before
    the purge."""
    if tenant.purged_at is None:
        return None
    try:
        certificate = await lc.deletion.deletion_certificate(tenant.tenant_id)
    except CertificateNotFound:
        return None
    try:
        keys = [load_public_key(k.public_key) for k in lc.deletion.certificate_keys().keys]
    except ConfigError as exc:  # a bad CERTIFICATE_RETIRED_KEYS file: say so, not a 500
        return certificate, Verification(certificate.algorithm, None, [str(exc)])
    found = verify(certificate.model_dump(mode="json"), {key_id(k): k for k in keys})
    return certificate, found


@router.get("/tenants/{tenant_id}/certificate")
async def certificate_download(request: Request, tenant_id: str) -> Response:
    """The tenant's deletion certificate as a JSON attachment (what
    ``tenantctl certificate verify FILE`` checks offline); role ``dpo``, as in the API."""
    try:
        principal = _signed_in(request)
        if not principal.may("dpo"):
            raise Refused(
                403,
                f"the certificate needs role 'dpo'; '{principal.name}' has role '{principal.role}'",
            )
        await _tenant(request, tenant_id)
        certificate = await _client(request).deletion.deletion_certificate(tenant_id)
    except Refused as exc:
        return _refusal(request, exc, _principal(request))
    except LifecycleError as exc:
        return _refusal(request, Refused(exc.status, exc.detail), _principal(request))
    return JSONResponse(
        certificate.model_dump(mode="json"),
        headers={
            "Content-Disposition": f'attachment; filename="{tenant_id}-deletion-certificate.json"',
            "Cache-Control": "no-store",
        },
    )


#: States whose entitlements are revoked (access suspended or the tenant deleted).
REVOKED_STATES = frozenset({TenantState.SUSPENDED, TenantState.DELETING, TenantState.DELETED})
#: How often the tenant page re-reads itself (ms): while an operation works, and while one
#: only waits (a retention timer, a downgrade pending until the period ends).
REFRESH_WORKING_MS, REFRESH_WAITING_MS = 3000, 60_000
#: Progress fields shown next to a running operation's step (the rest is in its Web UI page).
PROGRESS_FIELDS = ("phase", "chunks_done", "chunks_total", "purge_at", "effective_at", "to_plan")


async def _live(lc: LifecycleClient, op: OperationView) -> OperationView:
    """A recorded operation run; a running one as Temporal answers it now (its progress
    query), or as recorded when Temporal does not know it."""
    if op.status != "running":
        return op
    try:
        return await lc.operation(op.workflow_id) or op
    except RPCError:  # Temporal unreachable: the page still shows what was recorded
        return op


def progress_text(op: OperationView) -> str:
    """The PROGRESS_FIELDS of a running operation's live progress, as ``name value`` pairs."""
    progress = (op.result or {}).get("progress") or {}
    return ", ".join(
        f"{k.replace('_', ' ')} {_short(progress[k])}"
        for k in PROGRESS_FIELDS
        if progress.get(k) is not None
    )


def _short(value: object) -> str:
    """A progress value for the page: an ISO 8601 UTC time to the minute, anything else as is."""
    try:
        at = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        at = None
    return f"{at:%Y-%m-%d %H:%M} UTC" if at else str(value)


templates.env.filters["progress"] = progress_text


def refresh_ms(tenant: TenantView, operations: list[OperationView]) -> int | None:
    """The tenant page's refresh period: REFRESH_WORKING_MS while a running operation works,
    REFRESH_WAITING_MS while the running ones only wait, None when none runs."""
    running = [op for op in operations if op.status == "running"]
    if not running:
        return None
    waiting = {
        "deletion": tenant.state is TenantState.DELETED,
        "downgrade": bool(tenant.pending_plan_change),
    }
    if all(waiting.get(op.kind or "", False) for op in running):
        return REFRESH_WAITING_MS
    return REFRESH_WORKING_MS


def _retention_percent(tenant: TenantView, now: datetime) -> int | None:
    """How much of a soft-deleted tenant's retention has passed, as a bar width (0..100 in
    steps of 5); None when no purge is pending."""
    start, end = tenant.deletion_requested_at, tenant.purge_scheduled_at
    if start is None or end is None or tenant.purged_at is not None or end <= start:
        return None
    return _percent(
        max(0, round((now - start).total_seconds())), round((end - start).total_seconds())
    )


def _percent(usage: int, limit: int) -> int:
    """Width of a usage bar in steps of 5 (0..100: a CSS class, as the page's CSP admits no
    inline style); an unlimited (-1) limit shows empty, a zero limit full once used."""
    if limit <= 0:
        return 100 if usage > 0 and limit == 0 else 0
    return min(100, 5 * round(usage * 20 / limit))


def _temporal_ui(lc: LifecycleClient) -> str | None:
    """The base of workflow links in the Temporal Web UI: TEMPORAL_UI_URL, else the embedded
    dev server's UI; None for an external cluster without TEMPORAL_UI_URL."""
    settings = lc.settings
    base = settings.temporal_ui_url or (
        f"http://127.0.0.1:{settings.temporal_ui_port}" if settings.embedded else None
    )
    if base is None:
        return None
    return f"{base.rstrip('/')}/namespaces/{settings.temporal_namespace}/workflows/"


async def _tenant(request: Request, tenant_id: str) -> TenantView:
    try:
        validate_tenant_id(tenant_id)
        return await _client(request).get_tenant(tenant_id)
    except ValueError as exc:
        raise Refused(404, str(exc)) from None
    except LifecycleError as exc:
        raise Refused(exc.status, exc.detail) from None


# -- actions --------------------------------------------------------------------------------


@router.get("/tenants/{tenant_id}/actions/{name}")
async def confirm_page(request: Request, tenant_id: str, name: str) -> Response:
    principal = _principal(request)
    try:
        principal = _signed_in(request)
        action = _action(name, principal)
        tenant = await _tenant(request, tenant_id)
        context = await _confirmation(request, tenant, name)
    except Refused as exc:
        return _refusal(request, exc, principal)
    return _render(
        request,
        "confirm.html",
        {"tenant": tenant, "name": name, "action": action, **context},
        principal=principal,
    )


async def _confirmation(request: Request, tenant: TenantView, name: str) -> dict[str, Any]:
    """What the confirmation page shows besides the action's explanation: the target plan, its
    limits, the monthly prices (from the plans file), the upgrade's Stripe proration
    (PRORATION_BEHAVIOR), the plan-change preview (the plans file's rule and the prorated
    amount of Stripe's invoice preview, or why there is none) and, for a downgrade, the
    preview's usage, limits and violations."""
    lc = _client(request)
    to_plan = request.query_params.get("to_plan", "")
    context: dict[str, Any] = {"to_plan": to_plan, "retention_days": 30}
    plans = lc.settings.plans
    try:
        if name == "upgrade":
            target = plans.require_upgrade(tenant.plan, to_plan)
            context["limits"] = target.limits.model_dump()
            context["proration"] = lc.settings.proration_behavior
        elif name == "downgrade":
            context["preview"] = await lc.plan_changes.downgrade_preview(tenant.tenant_id, to_plan)
        if name in ("upgrade", "downgrade"):
            # the rule of the plans file and the amount from Stripe's invoice preview
            context["priced"] = await lc.plan_changes.plan_change_preview(tenant.tenant_id, to_plan)
            context["prices"] = [
                plans.get(p).monthly_price_cents / 100 for p in (tenant.plan, to_plan)
            ]
        elif name == "delete":
            context["retention_days"] = lc.settings.soft_delete_retention_days
    except LifecycleError as exc:
        raise Refused(exc.status, exc.detail) from None
    return context


def _action(name: str, principal: Principal) -> Action:
    action = ACTIONS.get(name)
    if action is None:
        raise Refused(404, f"no console action '{name}'")
    if not principal.may(action.role):
        raise Refused(
            403,
            f"'{action.title}' needs role '{action.role}' (or 'admin'); token "
            f"'{principal.name}' has role '{principal.role}'",
        )
    return action


@router.post("/tenants/{tenant_id}/actions/{name}")
async def run_action(request: Request, tenant_id: str, name: str) -> Response:
    principal = _principal(request)
    try:
        principal = _signed_in(request)
        form = await _form(request)
        action = _action(name, principal)
        tenant = await _tenant(request, tenant_id)
        notice = await _run(_client(request), tenant, name, form, principal.name)
    except Refused as exc:
        return _refusal(request, exc, principal)
    query = urlencode({"notice": f"{action.title}: {notice}"})
    return RedirectResponse(f"/console/tenants/{tenant.tenant_id}?{query}", status_code=303)


async def _run(
    lc: LifecycleClient, tenant: TenantView, name: str, form: dict[str, str], actor: str
) -> str:
    """Run action ``name`` through the client with ``actor`` as the audit actor; the notice
    shown afterwards. Raises Refused with the domain error's status and detail (or 422 for
    an invalid form)."""
    tid = tenant.tenant_id
    reason = form.get("reason", "").strip() or None
    runs: dict[str, Callable[[], Awaitable[Any]]] = {
        "upgrade": lambda: lc.plan_changes.upgrade_tenant(tid, form.get("to_plan", ""), actor),
        "downgrade": lambda: lc.plan_changes.downgrade_tenant(
            tid,
            form.get("to_plan", ""),
            "immediately" if form.get("effective") == "immediately" else "period_end",
            actor,
        ),
        "cancel-downgrade": lambda: lc.plan_changes.cancel_downgrade(tid, actor),
        "suspend": lambda: lc.suspension.suspend_tenant(
            tid, SuspendRequest(reason=reason or "suspended from the console"), actor
        ),
        "reactivate": lambda: lc.reactivation.reactivate_tenant(
            tid, ReactivateRequest(requested_by=actor), actor
        ),
        "export": lambda: lc.exports.export_tenant(tid, "full", actor),
        "delete": lambda: lc.deletion.delete_tenant(
            tid,
            DeleteRequest(
                requested_by=actor,
                reason=reason,
                retention_days=int(form["retention_days"])
                if form.get("retention_days", "").isdigit()
                else None,
            ),
            actor,
        ),
        "legal-hold": lambda: lc.deletion.set_legal_hold(
            tid, True, LegalHoldRequest(reason=reason, requested_by=actor), actor
        ),
        "release-hold": lambda: lc.deletion.set_legal_hold(tid, False, None, actor),
        "purge": lambda: lc.deletion.purge_now(
            tid,
            PurgeNowRequest(
                requested_by=actor, reason=reason or "", confirm=form.get("confirm", "")
            ),
            actor,
        ),
    }
    try:
        result = await runs[name]()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise Refused(422, problems) from None
    except LifecycleError as exc:
        raise Refused(exc.status, exc.detail) from None
    wid = result if isinstance(result, str) else getattr(result, "workflow_id", None)
    return f"accepted (workflow {wid})" if wid else "accepted"
