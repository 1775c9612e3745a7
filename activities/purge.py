"""Purge activities (GDPR Art. 17): count, delete and verify a tenant's data in every store of
the data map, and its export archives.

Every step is idempotent and resumable: a retried step simply deletes what is left. Without a
data map (no DATA_MAP_PATH) the tenant's only data is the control plane's and its exports.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.exc import IntegrityError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import domain_errors
from lifecycle.config import Settings
from lifecycle.domain.deletion import EXPORTS_STORE, PurgeStoreInput, PurgeTarget
from lifecycle.faults import fault_point
from lifecycle.storage.cache import cache_store_name
from lifecycle.storage.datamap import DataMap, load_datamap
from lifecycle.storage.exports import ExportStorage, s3_options
from lifecycle.storage.objectstore import clear
from lifecycle.storage.stores import TenantStores, storage_store_name, table_store_name

#: The counts that must be zero after a purge (``bytes`` follows ``files``).
REMAINDER = ("rows", "files", "keys")


class PurgeActivities:
    """Counting, deleting and verifying a tenant's data; ``settings`` gives the data map
    (DATA_MAP_PATH), the purge batch size (PURGE_BATCH_ROWS) and the export storage."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.exports = ExportStorage.from_settings(settings)

    def datamap(self) -> DataMap:
        """The data map, read at each step so an operator's fix applies to a retried purge."""
        if self.settings.data_map_path is None:
            return DataMap()
        return load_datamap(self.settings.data_map_path)

    @asynccontextmanager
    async def stores(self) -> AsyncIterator[TenantStores]:
        stores = await TenantStores.open(self.datamap(), s3_options(self.settings))
        try:
            yield stores
        finally:
            await stores.close()

    async def _counts(self, target: PurgeTarget) -> dict[str, dict[str, int]]:
        async with self.stores() as stores:
            await stores.discover()
            counts = await stores.counts(target.data_key)
        counts[EXPORTS_STORE] = await self.exports.tenant_usage(target.tenant_id)
        return counts

    @activity.defn
    @domain_errors
    async def count_tenant_data(self, target: PurgeTarget) -> dict[str, dict[str, int]]:
        """Per store, the tenant's ``{"rows": n}`` (tables, ``database.table``, including the
        unmapped tables discovery finds) or ``{"files": n, "bytes": b}`` (``storage[i]`` and
        ``exports``)."""
        return await self._counts(target)

    @activity.defn
    @domain_errors
    async def list_purge_stores(self, target: PurgeTarget) -> list[str]:
        """Store names in purge order, one after the other: :meth:`list_purge_levels`
        flattened (executions started before the ``parallel-purge`` patch call this)."""
        return [store for level in await self.list_purge_levels(target) for store in level]

    @activity.defn
    @domain_errors
    async def list_purge_levels(self, _: PurgeTarget) -> list[list[str]]:
        """Store names in purge levels, each level purged at once after the one before it:
        the tables by :meth:`TenantStores.deletion_levels` (children before parents, no two
        tables of a level referencing each other), then every storage prefix, then every
        cache (last: the application may refill a cache from rows until they are gone).
        Empty levels are left out."""
        async with self.stores() as stores:
            tables = [[table_store_name(e) for e in level] for level in stores.deletion_levels()]
            storage = [storage_store_name(i) for i in range(len(stores.datamap.storage))]
            caches = [cache_store_name(i) for i in range(len(stores.caches))]
        return [level for level in [*tables, storage, caches] if level]

    @activity.defn
    @domain_errors
    async def purge_store(self, data: PurgeStoreInput) -> int:
        """Delete the tenant's rows of one table in batches of PURGE_BATCH_ROWS (each batch
        one short transaction), its objects under one storage prefix, or its keys of one
        cache (SCAN + UNLINK, PURGE_BATCH_ROWS keys per UNLINK); heartbeat the total.

        Resumable: a retry continues from what is left. Returns the count deleted by all
        attempts together (rows or objects).
        """
        details = activity.info().heartbeat_details
        deleted = int(details[0]) if details else 0
        async with self.stores() as stores:
            if data.store.startswith("cache["):
                index = int(data.store.removeprefix("cache[").removesuffix("]"))
                return deleted + await stores.caches[index].purge(
                    data.data_key,
                    self.settings.purge_batch_rows,
                    lambda total: activity.heartbeat(deleted + total),
                )
            if data.store.startswith("storage["):
                index = int(data.store.removeprefix("storage[").removesuffix("]"))
                return deleted + await clear(
                    stores.storage(index, data.data_key), activity.heartbeat
                )
            entry = next(e for e in stores.datamap.tables if table_store_name(e) == data.store)

            def after_batch(total: int) -> None:
                activity.heartbeat(deleted + total)
                fault_point(f"purge.batch:{data.store}")

            try:
                rows, _longest = await stores.purge_rows(
                    entry, data.data_key, self.settings.purge_batch_rows, after_batch
                )
            except IntegrityError as exc:
                # a row outside the data map still references the tenant's rows: retrying
                # cannot help, the operator must map (or clear) the referencing table
                await stores.discover()
                blockers = ", ".join(f"{u.store} ({u.why})" for u in stores.referencing(entry))
                raise ApplicationError(
                    f"purge of {data.store} for tenant '{data.tenant_id}' is blocked by a "
                    f"foreign key from outside the data map"
                    + (f": {blockers}" if blockers else "")
                    + f" ({exc.orig})",
                    type="PurgeBlocked",
                    non_retryable=True,
                ) from exc
        return deleted + rows

    @activity.defn
    @domain_errors
    async def purge_exports(self, target: PurgeTarget) -> int:
        """Delete the tenant's export archives and staging; return how many were deleted."""
        return await self.exports.delete_tenant_exports(target.tenant_id, activity.heartbeat)

    @activity.defn
    @domain_errors
    async def verify_purge(self, target: PurgeTarget) -> dict[str, dict[str, int]]:
        """Re-count every store, the unmapped tables included; raise ``PurgeIncomplete``
        naming each store where anything of the tenant remains, else return the counts (all
        zero). Retryable (e.g. an S3 listing lagging) unless rows remain in an unmapped
        table, which the purge never touches: then it fails at once, and no certificate is
        issued (GDPR Art. 17: erasure must be complete before it is attested)."""
        async with self.stores() as stores:
            unmapped = {u.store for u in await stores.discover()}
            counts = await stores.counts(target.data_key)
        counts[EXPORTS_STORE] = await self.exports.tenant_usage(target.tenant_id)
        left = {name: c for name, c in counts.items() if any(c.get(k) for k in REMAINDER)}
        if left:
            text = ", ".join(
                f"{name} {c}" + (" (not in the data map)" if name in unmapped else "")
                for name, c in sorted(left.items())
            )
            raise ApplicationError(
                f"purge incomplete for tenant '{target.tenant_id}': {text} remain",
                left,
                type="PurgeIncomplete",
                non_retryable=bool(unmapped & set(left)),
            )
        return counts
