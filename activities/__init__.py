"""All I/O of the lifecycle operations, as Temporal activities grouped by external system.

Each module holds one class given its client in its constructor (database repository,
billing client, storage): the worker wires real clients, tests wire clients pointed at
local test servers.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from temporalio.exceptions import ApplicationError

from lifecycle.domain.errors import LifecycleError, VersionConflict

P = ParamSpec("P")
R = TypeVar("R")


def domain_errors(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Turn domain errors into Temporal ``ApplicationError``s typed by the error's class name.

    Business errors (not found, wrong state, invalid input) are non-retryable: retrying cannot
    help. A :class:`VersionConflict` (a lost compare-and-set race) stays retryable.
    """

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except LifecycleError as exc:
            raise ApplicationError(
                exc.detail,
                {"status": exc.status},
                type=type(exc).__name__,
                non_retryable=not isinstance(exc, VersionConflict),
            ) from exc

    return wrapper
