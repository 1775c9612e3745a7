"""Provisioning of the SaaS application: the entitlements it enforces for a tenant.

The application reads a tenant's limits from the ``entitlements`` table. When
PROVISIONING_WEBHOOK_URL is set, the new limits are also POSTed to it as JSON, signed with
HMAC-SHA256 over the exact body bytes (key PROVISIONING_WEBHOOK_SECRET):

    X-Lifecycle-Signature: sha256=<hex HMAC-SHA256(secret, body)>
    X-Lifecycle-Timestamp: <unix seconds, also "sent_at" in the body>
    Idempotency-Key: <workflow run and saga step; the same for every retry>

A receiver verifies the signature with ``hmac.compare_digest``, rejects stale timestamps and
treats a repeated Idempotency-Key as already applied.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx
from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import domain_errors
from lifecycle.domain.errors import ConfigError
from lifecycle.domain.plan_changes import ProvisionResult, StepEventInput
from lifecycle.faults import fault_point
from lifecycle.persistence.tenants import TenantRepository

SIGNATURE_HEADER = "X-Lifecycle-Signature"
TIMESTAMP_HEADER = "X-Lifecycle-Timestamp"


class ProvisionInput(BaseModel):
    """Make ``limits`` (resource -> limit, -1 unlimited) the tenant's entitlements on
    ``plan``; ``event`` is the audit row written with them (once per ``event.key``)."""

    tenant_id: str
    plan: str
    limits: dict[str, int]
    event: StepEventInput


def sign(body: bytes, secret: str) -> str:
    """The signature header value for ``body``: ``sha256=<hex HMAC-SHA256(secret, body)>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class ProvisioningActivities:
    """Writes entitlements where the application reads them and notifies it by webhook.

    ``webhook_url`` None: table only. Raises ConfigError when a URL is given without secret.
    """

    def __init__(
        self,
        repository: TenantRepository,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        timeout_seconds: float = 10.0,
    ) -> None:
        if webhook_url and not webhook_secret:
            raise ConfigError(
                "PROVISIONING_WEBHOOK_URL is set but PROVISIONING_WEBHOOK_SECRET is not: "
                "provisioning webhooks must be signed"
            )
        self.repository = repository
        self.webhook_url, self.webhook_secret = webhook_url, webhook_secret
        self.timeout_seconds = timeout_seconds

    @activity.defn
    @domain_errors
    async def provision_entitlements(self, data: ProvisionInput) -> ProvisionResult:
        """Replace the tenant's entitlements with ``data.limits`` (idempotent), then POST them
        to the webhook when configured; returns them with the webhook's status (if any).

        A webhook answering 5xx, 408, 429 or not at all is retried (``ProvisioningUnavailable``);
        other 4xx are final (``ProvisioningRejected``).
        """
        await self.repository.replace_entitlements(data.tenant_id, data.limits, data.event)
        status = await self._notify(data) if self.webhook_url else None
        fault_point("provisioning.after_provision")
        return ProvisionResult(entitlements=data.limits, webhook_status=status)

    async def _notify(self, data: ProvisionInput) -> int:
        assert self.webhook_url and self.webhook_secret
        sent_at = int(time.time())
        body = json.dumps(
            {
                "tenant_id": data.tenant_id,
                "plan": data.plan,
                "entitlements": data.limits,
                "operation": data.event.operation,
                "workflow_id": data.event.workflow_id,
                "sent_at": sent_at,
            },
            sort_keys=True,
        ).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(body, self.webhook_secret),
            TIMESTAMP_HEADER: str(sent_at),
            "Idempotency-Key": data.event.key,
        }
        async with httpx.AsyncClient(timeout=self.timeout_seconds) as http:
            response = await http.post(self.webhook_url, content=body, headers=headers)
        if response.is_success:
            return response.status_code
        message = f"provisioning webhook answered {response.status_code}: {response.text[:200]}"
        retryable = response.status_code >= 500 or response.status_code in (408, 429)
        raise ApplicationError(
            message,
            type="ProvisioningUnavailable" if retryable else "ProvisioningRejected",
            non_retryable=not retryable,
        )
