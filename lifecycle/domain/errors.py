"""Domain errors. Each maps to one HTTP status in the API (see ``lifecycle.api.problems``)
and to one Temporal ``ApplicationError`` type in activities (the class name)."""

from __future__ import annotations


class LifecycleError(Exception):
    """Base class of every domain error; ``status`` is the HTTP status the API answers."""

    status = 500
    title = "Lifecycle error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(LifecycleError):
    """Input that can never succeed (bad slug, unknown plan, out-of-range value)."""

    status = 422
    title = "Invalid input"


class TenantNotFound(LifecycleError):
    """No tenant with this id."""

    status = 404
    title = "Tenant not found"

    def __init__(self, tenant_id: str) -> None:
        super().__init__(f"tenant '{tenant_id}' does not exist")
        self.tenant_id = tenant_id


class StateConflict(LifecycleError):
    """The tenant is not in a state that allows the operation (names the current state)."""

    status = 409
    title = "Conflict with the tenant's state"


class InvalidTransition(StateConflict):
    """A transition outside the state machine's table."""

    def __init__(self, from_state: str, to_state: str, allowed: list[str]) -> None:
        allowed_text = ", ".join(allowed) if allowed else "none"
        super().__init__(
            f"transition {from_state} -> {to_state} is not allowed; "
            f"from {from_state} the allowed next states are: {allowed_text}"
        )
        self.from_state, self.to_state, self.allowed = from_state, to_state, allowed


class VersionConflict(StateConflict):
    """The compare-and-set on the tenant row lost a race: someone else changed it first."""


class DataKeyConflict(StateConflict):
    """Another live tenant holds the same data key: onboarding it, or exporting or purging
    either of them, would reach the other's data (names the holder)."""

    def __init__(self, data_key: str, holder: str) -> None:
        super().__init__(f"data key '{data_key}' is held by tenant '{holder}'")
        self.data_key, self.holder = data_key, holder


class ConfigError(Exception):
    """Configuration, plans file or data map that cannot be used; raised at startup."""
