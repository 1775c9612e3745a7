"""A rate limit shared by every worker through the control-plane database (SQLite on the
embedded default, PostgreSQL in production): the generic cell rate algorithm (GCRA).

One row per limit holds ``next_at``, the earliest time (unix seconds) at which the next call
may go out. :meth:`RateLimiter.reserve` moves it on by ``1 / rate`` in one atomic ``UPDATE ...
RETURNING`` and tells the caller how long to wait for its slot, so any number of workers
together make at most ``rate`` calls a second, evenly spaced, without polling. The database
orders the reservations (a row lock on PostgreSQL, the write lock on SQLite); the clock is
each worker's own, so workers on several hosts need synchronised clocks (NTP), as Stripe's
own per-second limit assumes anyway.
"""

from __future__ import annotations

import time

from sqlalchemy import case, update
from sqlalchemy.exc import IntegrityError

from lifecycle.persistence.engine import Sessions
from lifecycle.persistence.tables import RateLimit

#: The name of the billing writes' limit (BILLING_RATE_LIMIT).
BILLING_WRITES = "billing-writes"


class RateLimiter:
    """At most ``rate`` calls a second under ``name``, across every process sharing the
    database of ``sessions``."""

    def __init__(self, sessions: Sessions, name: str, rate: float) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be > 0 calls/s, got {rate}")
        self.sessions, self.name, self.interval = sessions, name, 1.0 / rate

    async def reserve(self) -> float:
        """Reserve the next slot; returns the seconds to wait before making the call (0 when
        the limit has room now)."""
        now = time.time()
        later = case((RateLimit.next_at > now, RateLimit.next_at), else_=now) + self.interval
        statement = (
            update(RateLimit)
            .where(RateLimit.name == self.name)
            .values(next_at=later)
            .returning(RateLimit.next_at)
        )
        for _ in range(2):  # the first call under a name may race another's insert
            try:
                async with self.sessions.begin() as session:
                    next_at = (await session.execute(statement)).scalar_one_or_none()
                    if next_at is None:
                        next_at = now + self.interval
                        session.add(RateLimit(name=self.name, next_at=next_at))
                break
            except IntegrityError:
                continue
        else:  # pragma: no cover - two inserts lost in a row cannot happen: the row exists
            raise RuntimeError(f"rate limit {self.name!r} could not be reserved")
        return max(0.0, float(next_at) - self.interval - now)
