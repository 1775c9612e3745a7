"""All I/O of the lifecycle operations, as Temporal activities grouped by external system.

Each module holds one class given its client in its constructor (database repository,
billing client, storage): the worker wires real clients, tests wire clients pointed at
local test servers.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from sqlalchemy.exc import IntegrityError
from temporalio.exceptions import ApplicationError

from lifecycle.domain.errors import ConfigError, LifecycleError, VersionConflict

P = ParamSpec("P")
R = TypeVar("R")


def domain_errors(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Turn domain errors into Temporal ``ApplicationError``s typed by the error's class name.

    Business errors (not found, wrong state, invalid input) are non-retryable: retrying cannot
    help. A :class:`VersionConflict` (a lost compare-and-set race) stays retryable.
    Non-transient failures are non-retryable at once too (issue 12, defect 7): a database
    integrity error (``IntegrityError``: a foreign key or unique constraint the same statement
    would break again) and an unusable configuration such as a malformed data map
    (``ConfigError``). Everything else (network, a busy or restarting database) is retried
    with the workflow's retry policy.
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
        except IntegrityError as exc:
            raise ApplicationError(
                f"integrity error (not retried): {exc.orig or exc}",
                type="IntegrityError",
                non_retryable=True,
            ) from exc
        except ConfigError as exc:
            raise ApplicationError(
                f"configuration error (not retried): {exc}", type="ConfigError", non_retryable=True
            ) from exc

    return wrapper
