"""Tenant Lifecycle: the domain, importable from workflows (states, plans, models, errors).

Modules that do I/O (``persistence``, ``storage``, ``client``, ``api``, ``cli``) are imported
explicitly by activities, the API and the CLI; workflow modules import only
``lifecycle.domain``.

The specification's function-style calls are attributes of the package, loaded on first
use (``lifecycle.client.functions``) so that importing ``lifecycle.domain`` (workflow code)
never loads the client::

    from lifecycle import upgrade_tenant, export_tenant_data, delete_tenant
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lifecycle.client.functions import (
        delete_tenant,
        downgrade_tenant,
        export_tenant_data,
        reactivate_tenant,
        upgrade_tenant,
    )

__all__ = [
    "delete_tenant",
    "downgrade_tenant",
    "export_tenant_data",
    "reactivate_tenant",
    "upgrade_tenant",
]


def __getattr__(name: str) -> Any:
    """The function-style call ``name``, imported on first use."""
    if name in __all__:
        from lifecycle.client import functions

        return getattr(functions, name)
    raise AttributeError(f"module 'lifecycle' has no attribute {name!r}")
