"""The data map bound to live connections: the tenant's rows and files in the SaaS
application's stores, counted, read page by page, and deleted in batches.

Export (GDPR Art. 15/20) and purge (Art. 17) both go through :class:`TenantStores`, so they
select exactly the same rows: ``tenant_column = data_key`` (compared in the column's own
type), or, for a table reached through its parent, ``column IN (parent's tenant rows)``.
"""

from __future__ import annotations

import graphlib
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    MetaData,
    Table,
    delete,
    false,
    func,
    literal,
    literal_column,
    select,
    text,
    tuple_,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import NoSuchTableError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import ColumnElement, Select
from sqlalchemy.sql.util import ClauseAdapter

from lifecycle.domain.errors import ConfigError
from lifecycle.persistence.engine import create_engine
from lifecycle.storage.cache import CacheStore, cache_store_name
from lifecycle.storage.datamap import TENANT_KEY, DataMap, StorageEntry, TableEntry
from lifecycle.storage.objectstore import ObjectStore, S3Options, open_store, usage


def _reflect(connection: Connection, name: str, metadata: MetaData) -> Table:
    """Reflect table ``name`` of ``connection``'s database into ``metadata``."""
    return Table(name, metadata, autoload_with=connection)


def _reflect_all(connection: Connection, metadata: MetaData) -> None:
    metadata.reflect(connection)


#: PostgreSQL: a digest of the current schema's tables, columns (type, nullability) and
#: constraints (primary and foreign keys included), with the tables' oids, so a table
#: dropped and created again under the same name has another fingerprint.
_PG_FINGERPRINT = text(
    """
    SELECT md5(coalesce(string_agg(x, ',' ORDER BY x), '')) FROM (
      SELECT concat_ws(':', c.oid, c.relname, c.relkind, a.attnum, a.attname, a.atttypid,
                       a.atttypmod, a.attnotnull) AS x
      FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
      UNION ALL
      SELECT concat_ws(':', con.conrelid, con.conname, con.contype, con.conkey::text,
                       con.confrelid, con.confkey::text)
      FROM pg_constraint con
      JOIN pg_namespace n ON n.oid = con.connamespace AND n.nspname = current_schema()
    ) s
    """
)
#: Reflected schemas by (database URL, schema fingerprint), most recently used last.
_SCHEMAS: OrderedDict[tuple[str, str], MetaData] = OrderedDict()
SCHEMA_CACHE_SIZE = 16


async def _fingerprint(conn: AsyncConnection) -> str | None:
    """A digest of the connection's database schema that changes with any table, column or
    key; None for a dialect without one (its schema is then reflected at every open)."""
    if conn.dialect.name == "sqlite":
        query = "SELECT group_concat(sql, ';') FROM sqlite_master"
        ddl = (await conn.exec_driver_sql(query)).scalar()
        return "sqlite:" + hashlib.sha256(str(ddl).encode()).hexdigest()
    if conn.dialect.name == "postgresql":
        return "postgresql:" + str((await conn.execute(_PG_FINGERPRINT)).scalar_one())
    return None


async def reflect_schema(url: str, conn: AsyncConnection) -> MetaData:
    """Every table of ``conn``'s database (its default schema), reflected once per process
    and schema: later calls cost one catalog query (:func:`_fingerprint`) and reuse the
    ``MetaData`` until a table, column or key changes.

    Why: every export, purge and count activity opens the stores afresh, and reflecting a
    database is SQLAlchemy work on the event loop's thread (about 6 ms of CPU per table on
    PostgreSQL here, 2026-12-03); dozens of activities at once delayed the worker's workflow
    tasks past their timeout (the topology test, issue 15). The returned ``MetaData`` is
    shared: read it, never add to it.
    """
    fingerprint = await _fingerprint(conn)
    key = (url, fingerprint or "")
    if fingerprint is not None and key in _SCHEMAS:
        _SCHEMAS.move_to_end(key)
        return _SCHEMAS[key]
    metadata = MetaData()
    await conn.run_sync(_reflect_all, metadata)
    if fingerprint is not None:
        _SCHEMAS[key] = metadata
        while len(_SCHEMAS) > SCHEMA_CACHE_SIZE:
            _SCHEMAS.popitem(last=False)
    return metadata


@dataclass(frozen=True)
class UnmappedTable:
    """A table discovery found outside the data map: ``column`` is its tenant column, or
    None when it is reached by a foreign key ``column_fk`` into the mapped table ``parent``
    (``references`` there)."""

    database: str
    name: str
    column: str | None = None
    fk_column: str | None = None
    parent: str | None = None
    references: str | None = None

    @property
    def store(self) -> str:
        return f"{self.database}.{self.name}"

    @property
    def why(self) -> str:
        """Why it counts as tenant data, for messages and certificates."""
        if self.column is not None:
            return f"tenant column '{self.column}'"
        return f"foreign key {self.fk_column} -> {self.parent}.{self.references}"


def _column_equals(column: Any, data_key: str) -> ColumnElement[bool]:
    """``column = data_key``, the key converted to the column's Python type (false when it
    does not convert, e.g. "acme" against an integer column)."""
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        python_type = str
    try:
        key: Any = python_type(data_key)
    except (TypeError, ValueError):
        return false()
    return column == key


#: A purge transaction's target duration: batch sizes follow it (locks held well under 250 ms).
BATCH_SECONDS = 0.1
FIRST_BATCH_ROWS = 100
#: Blocks (8 kB) of the first range of a sweep, and when a sweep pays (``purge_rows``).
SWEEP_FIRST_BLOCKS = 16
SWEEP_MIN_BLOCKS = 1024
SWEEP_SHARE = 0.1
#: Blocks read at random to plan a sweep (``TABLESAMPLE SYSTEM``), and the margin added on
#: each side of the sampled blocks holding the tenant's rows, in mean gaps between sampled
#: blocks: a run of the tenant's rows reaches past the margin unsampled with probability
#: about e**-SWEEP_MARGIN_GAPS (0.03%), and such rows are left to the index batches.
SWEEP_SAMPLE_BLOCKS = 256
SWEEP_MARGIN_GAPS = 8
#: How much larger an index batch may be than the one before: rows found through the index
#: cost about the same each, and a first batch's time is mostly its round trips, so the
#: estimate errs small. A sweep's ranges double at most (a range's share of the tenant's rows
#: varies from one to the next).
INDEX_BATCH_GROWTH = 8.0


#: Purges do not wait for their commits' WAL flush (PostgreSQL, a setting of every connection
#: to an application database, sent when it connects: the product writes there only to
#: purge): a batch lost in a database crash is deleted again by the retried step, and the
#: verification counts every store afterwards, so the wait per commit bought nothing but time.
NO_FLUSH_WAIT = {"synchronous_commit": "off"}
#: After a sweep the victims are found by an index scan of the tenant's index (set in the
#: batch's transaction). The planner's statistics still count the tenant's rows just deleted,
#: so for the batch's ``LIMIT`` it picked a sequential scan of the whole table (135 ms for
#: 735,000 impressions, 274,549 of them the tenant's and dead). An index scan visits each dead
#: entry's row and marks the entry dead in the index, so that what reads the index next skips
#: it: the parent table's foreign-key checks (the ads' purge after 914,982 impressions took
#: 241-295 ms against 506-617 ms after a bitmap scan, which leaves the entries) and the
#: verification's count (docs/benchmarks.md, 2026-12-04).
INDEX_SCAN = text(
    "SELECT set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true)"
)


def _next_size(size: int, elapsed: float, most: int, grow: float = 2.0) -> int:
    """The next batch's size: ``size`` scaled toward BATCH_SECONDS from the ``elapsed``
    seconds it took, at most ``grow`` times larger, at least quartered, within 1..``most``."""
    scale = min(grow, max(0.25, BATCH_SECONDS / max(elapsed, 1e-6)))
    return max(1, min(most, int(size * scale)))


def table_store_name(entry: TableEntry) -> str:
    """Name of a table store in counts, manifests and certificates: ``database.table``."""
    return f"{entry.database}.{entry.name}"


def storage_store_name(index: int) -> str:
    """Name of a storage store: ``storage[i]`` in data-map order."""
    return f"storage[{index}]"


class TenantStores:
    """Live access to every store of a data map. Open with :meth:`open`, then :meth:`close`."""

    def __init__(self, datamap: DataMap, s3: S3Options | None = None) -> None:
        self.datamap, self.s3 = datamap, s3 or S3Options()
        self.engines: dict[str, AsyncEngine] = {}
        self.tables: dict[tuple[str, str], Table] = {}
        #: filled by :meth:`discover`: unmapped tables and their reflected ``Table``
        self.unmapped: list[UnmappedTable] = []
        self._unmapped_tables: dict[tuple[str, str], Table] = {}
        self._schemas: dict[str, MetaData] = {}  # database name -> reflected schema
        #: one per ``[[cache]]`` entry, in data-map order
        self.caches = [
            CacheStore(entry, f"data map {datamap.source}: cache[{i}]")
            for i, entry in enumerate(datamap.cache)
        ]

    @classmethod
    async def open(cls, datamap: DataMap, s3: S3Options | None = None) -> TenantStores:
        """Connect to every database and check every table and column the map names.

        Raises ConfigError naming the data-map entry: unreachable database, unknown table,
        unknown column, or a table without a primary key (paging and batched deletes need it).
        """
        stores = cls(datamap, s3)
        try:
            await stores._reflect()
        except BaseException:
            await stores.close()
            raise
        return stores

    async def _reflect(self) -> None:
        src = self.datamap.source
        for name, db in self.datamap.databases.items():
            self.engines[name] = create_engine(db.url, server_settings=NO_FLUSH_WAIT)
        for i, entry in enumerate(self.datamap.tables):
            where = f"data map {src}: tables[{i}] ({entry.name})"
            try:
                schema = await self.schema(entry.database)
                table = schema.tables.get(entry.name)
                if table is None:  # not a table reflect() lists, e.g. a view
                    async with self.engines[entry.database].connect() as conn:
                        table = await conn.run_sync(_reflect, entry.name, MetaData())
            except NoSuchTableError:
                raise ConfigError(
                    f"{where}: unknown table '{entry.name}' in database '{entry.database}'"
                ) from None
            except (SQLAlchemyError, OSError) as exc:
                raise ConfigError(
                    f"{where}: cannot reach database '{entry.database}': {exc}"
                ) from exc
            self.tables[(entry.database, entry.name)] = table
            if not table.primary_key.columns:
                raise ConfigError(f"{where}: table has no primary key")
        for i, entry in enumerate(self.datamap.tables):
            where = f"data map {src}: tables[{i}] ({entry.name})"
            table = self.table(entry)
            needed = [entry.tenant_column] if entry.tenant_column else [entry.parent.column]  # type: ignore[union-attr]
            for column in needed:
                if column not in table.c:
                    raise ConfigError(f"{where}: unknown column '{column}' in '{entry.name}'")
            if entry.parent is not None:
                parent = self.table(self.datamap.table(entry.parent.table, entry.database))
                if entry.parent.references not in parent.c:
                    raise ConfigError(
                        f"{where}: unknown column '{entry.parent.references}' in parent "
                        f"'{entry.parent.table}'"
                    )

    async def schema(self, database: str) -> MetaData:
        """Every table of ``database`` (a data-map database name), reflected
        (:func:`reflect_schema`: cached while the schema is unchanged)."""
        if database not in self._schemas:
            async with self.engines[database].connect() as conn:
                self._schemas[database] = await reflect_schema(
                    self.datamap.databases[database].url, conn
                )
        return self._schemas[database]

    async def close(self) -> None:
        for engine in self.engines.values():
            await engine.dispose()
        for cache in self.caches:
            await cache.close()

    # -- tables ----------------------------------------------------------------------------

    def table(self, entry: TableEntry) -> Table:
        return self.tables[(entry.database, entry.name)]

    def primary_key(self, entry: TableEntry) -> list[Any]:
        """Primary-key columns of the table, in declared order (the keyset for paging)."""
        return list(self.table(entry).primary_key.columns)

    def tenant_filter(self, entry: TableEntry, data_key: str) -> ColumnElement[bool]:
        """WHERE clause selecting the tenant's rows of ``entry``."""
        table = self.table(entry)
        if entry.tenant_column is not None:
            return _column_equals(table.c[entry.tenant_column], data_key)
        ref = entry.parent
        assert ref is not None
        parent_entry = self.datamap.table(ref.table, entry.database)
        parent = self.table(parent_entry)
        parent_keys = select(parent.c[ref.references]).where(
            self.tenant_filter(parent_entry, data_key)
        )
        return table.c[ref.column].in_(parent_keys)

    def rows_query(self, entry: TableEntry, data_key: str) -> Select[Any]:
        return select(self.table(entry)).where(self.tenant_filter(entry, data_key))

    async def count_rows(self, entry: TableEntry, data_key: str) -> int:
        """Number of the tenant's rows in ``entry``."""
        query = (
            select(func.count())
            .select_from(self.table(entry))
            .where(self.tenant_filter(entry, data_key))
        )
        async with self.engines[entry.database].connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    def _key_range(
        self,
        entry: TableEntry,
        query: Select[Any],
        after: Sequence[Any] | None,
        until: Sequence[Any] | None = None,
    ) -> Select[Any]:
        """``query`` limited to primary keys > ``after`` and <= ``until`` (None: unbounded)."""
        pk = self.primary_key(entry)

        def key(values: Sequence[Any]) -> Any:  # a row value where the key has 2+ columns
            return tuple_(*values) if len(pk) > 1 else values[0]

        if after is not None:
            query = query.where(key(pk) > key(after))
        if until is not None:
            query = query.where(key(pk) <= key(until))
        return query

    async def fetch_page(
        self,
        entry: TableEntry,
        data_key: str,
        after: Sequence[Any] | None,
        limit: int,
        until: Sequence[Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` of the tenant's rows with primary key > ``after`` (and <=
        ``until`` when given), in key order (keyset pagination: stable and index-backed
        whatever the table's size)."""
        query = self.rows_query(entry, data_key).order_by(*self.primary_key(entry)).limit(limit)
        async with self.engines[entry.database].connect() as conn:
            result = await conn.execute(self._key_range(entry, query, after, until))
            # plain tuples zipped with the column names: 40% less CPU than result.mappings()
            keys = [str(key) for key in result.keys()]
            return [dict(zip(keys, row, strict=True)) for row in result]

    async def split_keys(
        self,
        entry: TableEntry,
        data_key: str,
        every: int,
        progress: Callable[[int], object] | None = None,
    ) -> list[list[Any]]:
        """The primary keys of the tenant's rows number ``every``, ``2 * every``, ... in key
        order, short of the last row: the inclusive upper bounds of key ranges of ``every``
        rows each (the last range runs to the end). One index-ordered query per bound, each
        skipping ``every`` keys from the previous one, so the whole walk reads each key once;
        ``progress`` is called with the bounds found so far after each query (a heartbeat).
        Raises ValueError when ``every`` < 1."""
        if every < 1:
            raise ValueError(f"every must be >= 1 row, got {every}")
        pk = self.primary_key(entry)
        query = (
            select(*pk)
            .where(self.tenant_filter(entry, data_key))
            .order_by(*pk)
            .offset(every - 1)
            .limit(2)  # the bound and whether a row follows it
        )
        bounds: list[list[Any]] = []
        async with self.engines[entry.database].connect() as conn:
            while True:
                after = bounds[-1] if bounds else None
                found = (await conn.execute(self._key_range(entry, query, after))).all()
                if len(found) < 2:  # the rest fits in one range
                    return bounds
                bounds.append(list(found[0]))
                if progress is not None:
                    progress(len(bounds))

    def deletion_levels(self) -> list[list[TableEntry]]:
        """Mapped tables in levels, children before parents (data-map parents and foreign
        keys): no table of a level references another of the same level, so a level's tables
        may be purged at once, each level after the one before it.

        Raises ConfigError when the tables reference each other in a cycle."""
        sorter: graphlib.TopologicalSorter[tuple[str, str]] = graphlib.TopologicalSorter()
        mapped = {(e.database, e.name) for e in self.datamap.tables}
        for entry in self.datamap.tables:
            node = (entry.database, entry.name)
            sorter.add(node)
            if entry.parent is not None:
                sorter.add((entry.database, entry.parent.table), node)
            for fk in self.table(entry).foreign_keys:
                target = (entry.database, fk.column.table.name)
                if target in mapped and target != node:
                    sorter.add(target, node)  # the referencing table goes first
        try:
            sorter.prepare()
        except graphlib.CycleError as exc:
            raise ConfigError(
                f"data map {self.datamap.source}: tables reference each other in a cycle "
                f"{exc.args[1]}; the purge cannot order them"
            ) from exc
        levels = []
        while sorter.is_active():
            ready = sorted(sorter.get_ready())  # sorted: the same levels on every worker
            levels.append([self.datamap.table(name, db) for db, name in ready])
            sorter.done(*ready)
        return levels

    def deletion_order(self) -> list[TableEntry]:
        """Mapped tables, children before parents: :meth:`deletion_levels` one after the
        other."""
        return [entry for level in self.deletion_levels() for entry in level]

    async def delete_batch(
        self, entry: TableEntry, data_key: str, batch_size: int, after_sweep: bool = False
    ) -> tuple[int, bool]:
        """Delete at most ``batch_size`` of the tenant's rows of ``entry`` in one short
        transaction. Returns ``(rows deleted, last)``: ``last`` when the batch found fewer
        than ``batch_size`` rows and deleted every one, so none of the tenant's rows were
        left at its snapshot.

        PostgreSQL deletes by row address: ``victims`` (``SELECT ctid ... LIMIT n``, an index
        scan), then ``DELETE ... WHERE ctid = ANY(ARRAY(victims))`` (a TID scan), which stays
        index-driven whatever the batch size; the one statement returns how many it found
        and how many it deleted. A row moved by a concurrent update between the two scans
        is not deleted, so the batch is not the last and the next one deletes it.
        ``after_sweep``: the victims are found first, by a read-only index scan whatever the
        statistics say (:data:`INDEX_SCAN`), then deleted in a transaction of their own
        (:meth:`_delete_batch`). Other databases delete by primary
        key (``pk IN (SELECT pk ... LIMIT n)``); on SQLite, whose statement runs alone under
        the database's write lock, a batch short of ``batch_size`` is the last; elsewhere
        the last batch is one that deletes nothing.
        """
        async with self.engines[entry.database].connect() as conn:
            n, last, _ = await self._delete_batch(
                conn, entry, data_key, batch_size, after_sweep, after_sweep
            )
        return n, last

    async def _delete_batch(
        self,
        conn: AsyncConnection,
        entry: TableEntry,
        data_key: str,
        batch_size: int,
        after_sweep: bool,
        find_first: bool,
        by_key: bool = False,
    ) -> tuple[int, bool, float]:
        """:meth:`delete_batch` on ``conn``; returns ``(rows deleted, last, seconds holding
        row locks)``. Each statement is a transaction of its own (alone on a connection in
        autocommit mode, which ``after_sweep`` must not be).

        ``after_sweep`` (PostgreSQL): the victims are found by an index scan
        (:data:`INDEX_SCAN`); ``find_first`` finds them in a read-only transaction, which
        takes no row lock however long it walks past the entries of the rows the sweep
        deleted, then deletes the rows found by their addresses in a short one. Every
        delete checks the tenant filter again: an address freed and reused meanwhile, or
        the same address in another partition of a partitioned table, holds another row.
        ``by_key`` (or another database than
        PostgreSQL): by primary key (``pk IN (SELECT pk ... LIMIT n)``), which follows a row
        updated meanwhile to its new version; the last such batch deletes nothing (on
        SQLite, a batch short of ``batch_size`` is the last)."""
        table, pk = self.table(entry), self.primary_key(entry)
        tenant_rows = self.tenant_filter(entry, data_key)
        ctid: ColumnElement[Any] = literal_column("ctid")
        by_address = conn.dialect.name == "postgresql" and not by_key
        if by_address and find_first:
            finder = select(ctid).select_from(table).where(tenant_rows).limit(batch_size)
            async with conn.begin():
                if after_sweep:
                    await conn.execute(INDEX_SCAN)
                found = [tuple(row[0]) for row in await conn.execute(finder)]
            if not found:
                return 0, True, 0.0
            at_found = text("ctid = ANY(CAST(:found AS tid[]))").bindparams(found=found)
            started = time.monotonic()
            async with conn.begin():
                n = (await conn.execute(delete(table).where(at_found, tenant_rows))).rowcount
            return n, len(found) < batch_size and n == len(found), time.monotonic() - started
        started = time.monotonic()
        if by_address:
            victims = (
                select(ctid.label("address"))
                .select_from(table)
                .where(tenant_rows)
                .limit(batch_size)
                .cte("victims")
            )
            addresses = func.array(select(victims.c.address).scalar_subquery())
            removal = delete(table).where(ctid == func.any(addresses), tenant_rows)
            deleted = removal.returning(literal(1)).cte("deleted")
            counted = select(
                select(func.count()).select_from(victims).scalar_subquery(),
                select(func.count()).select_from(deleted).scalar_subquery(),
            )
            async with conn.begin():
                if after_sweep:
                    await conn.execute(INDEX_SCAN)
                victims_found, n = (await conn.execute(counted)).one()
            last = victims_found < batch_size and n == victims_found
            return n, last, time.monotonic() - started
        keys = select(*pk).where(tenant_rows).limit(batch_size)
        target = tuple_(*pk) if len(pk) > 1 else pk[0]
        async with conn.begin():
            n = int((await conn.execute(delete(table).where(target.in_(keys)))).rowcount or 0)
        last = n == 0 or (conn.dialect.name == "sqlite" and n < batch_size)
        return n, last, time.monotonic() - started

    async def purge_rows(
        self,
        entry: TableEntry,
        data_key: str,
        batch_rows: int,
        on_batch: Callable[[int], object] | None = None,
    ) -> tuple[int, float]:
        """Delete all the tenant's rows of ``entry`` in short transactions on one
        connection, calling ``on_batch(deleted_so_far)`` after each (heartbeat, fault point).
        Returns ``(rows deleted, longest batch in seconds)``: the longest time any batch held
        its row locks.

        Each batch's size follows the time the previous one took, toward BATCH_SECONDS
        (at least quartered; a range of blocks at most doubled, an index batch at most
        INDEX_BATCH_GROWTH times larger). On PostgreSQL, a tenant holding at least
        SWEEP_SHARE of a table of SWEEP_MIN_BLOCKS blocks or more is first swept by ranges
        of blocks over the part of the table holding its rows (:meth:`_sweep_ranges`,
        :meth:`_delete_blocks`: one pass over them in all, instead of an index scan per
        batch that walks again past the entries of the rows already deleted;
        docs/benchmarks.md). Then batches of at most ``batch_rows`` (PURGE_BATCH_ROWS) rows
        found through the tenant's index delete whatever is left, until one finds none
        left (:meth:`delete_batch`). After a sweep the first of them is sized by the sweep's
        fastest rate, and they find their rows before deleting them. Once a batch deletes
        fewer rows than it found (a row updated all along has moved, or the application's
        trigger or rule keeps it), the batches delete by primary key, which follows an
        updated row, until one deletes nothing: rows a trigger keeps stay, and the
        verification names them.
        """
        deleted, longest = 0, 0.0
        size = min(batch_rows, FIRST_BATCH_ROWS)
        async with self.engines[entry.database].connect() as conn:
            ranges = await self._sweep_ranges(conn, entry, data_key)
            if conn.dialect.name == "postgresql":  # a statement per transaction: 1 round trip
                await conn.execution_options(isolation_level="AUTOCOMMIT")
            step = SWEEP_FIRST_BLOCKS
            for start, stop in ranges:
                while start < stop:
                    end = min(stop, start + step)
                    started = time.monotonic()
                    n = await self._delete_blocks(conn, entry, data_key, start, end)
                    elapsed = time.monotonic() - started
                    if n:  # the first index batch: as many rows as this range's rate gives
                        rate = int(n * BATCH_SECONDS / max(elapsed, 1e-6))
                        size = max(size, min(batch_rows, rate))
                    deleted, longest = self._reported(deleted + n, n, longest, elapsed, on_batch)
                    start, step = end, _next_size(step, elapsed, stop)
            if ranges:  # the index scan's settings (INDEX_SCAN) last one transaction
                await conn.execution_options(isolation_level=conn.default_isolation_level)
            by_key = False
            while True:
                n, last, elapsed = await self._delete_batch(
                    conn, entry, data_key, size, bool(ranges), bool(ranges), by_key
                )
                deleted, longest = self._reported(deleted + n, n, longest, elapsed, on_batch)
                if last:
                    return deleted, longest
                # rows found but not deleted (moved by an update, kept by a trigger): by key
                by_key = by_key or n < size
                size = _next_size(size, elapsed, batch_rows, INDEX_BATCH_GROWTH)

    @staticmethod
    def _reported(
        deleted: int,
        n: int,
        longest: float,
        elapsed: float,
        on_batch: Callable[[int], object] | None,
    ) -> tuple[int, float]:
        """After a batch of ``n`` rows that took ``elapsed`` seconds: report ``deleted`` so
        far when the batch deleted any, and return ``(deleted, longest batch seconds)``."""
        if n and on_batch is not None:
            on_batch(deleted)
        return deleted, max(longest, elapsed)

    async def _sweep_ranges(
        self, conn: AsyncConnection, entry: TableEntry, data_key: str
    ) -> list[tuple[int, int]]:
        """The ranges of blocks ``(start, stop)`` to sweep, in order, when a sweep by block
        ranges pays, else ``[]``. PostgreSQL only, on a table of at least SWEEP_MIN_BLOCKS:
        about SWEEP_SAMPLE_BLOCKS of its blocks are read at random (``TABLESAMPLE SYSTEM``,
        one statement); the sweep pays when the tenant holds at least SWEEP_SHARE of the
        sampled rows. It covers the sampled blocks holding them, then a margin of
        SWEEP_MARGIN_GAPS mean gaps between sampled blocks before them (swept last, with
        ranges sized by then for the tenant's rows); the margin after them is the first
        range's end. The sample costs a few milliseconds where the exact first and last rows
        cost a scan of the tenant's rows (64 ms for 274,549 impressions; docs/benchmarks.md);
        rows outside the ranges are deleted by the index batches that follow any sweep."""
        if conn.dialect.name != "postgresql":
            return []
        table = self.table(entry)
        name = conn.dialect.identifier_preparer.format_table(table)
        size = text(
            "SELECT pg_relation_size(CAST(:name AS regclass)) / current_setting('block_size')::int"
        ).bindparams(name=name)
        blocks = int((await conn.execute(size)).scalar_one())
        if blocks < SWEEP_MIN_BLOCKS:
            await conn.rollback()
            return []
        ctid: ColumnElement[Any] = literal_column("ctid")
        sample = table.tablesample(func.system(100.0 * SWEEP_SAMPLE_BLOCKS / blocks))
        tenant_rows = ClauseAdapter(sample).traverse(self.tenant_filter(entry, data_key))
        sampled = select(
            func.count(),
            func.count().filter(tenant_rows),
            func.min(ctid).filter(tenant_rows),
            func.max(ctid).filter(tenant_rows),
        ).select_from(sample)
        rows, tenants, first, last = (await conn.execute(sampled)).one()
        await conn.rollback()
        if not tenants or tenants < SWEEP_SHARE * rows:
            return []
        margin = SWEEP_MARGIN_GAPS * blocks // SWEEP_SAMPLE_BLOCKS
        first, end = int(first[0]), int(last[0]) + 1  # asyncpg reads a tid as (block, offset)
        return [(first, min(blocks, end + margin)), (max(0, first - margin), first)]

    async def _delete_blocks(
        self, conn: AsyncConnection, entry: TableEntry, data_key: str, start: int, end: int
    ) -> int:
        """Delete the tenant's rows stored in blocks ``start`` to ``end - 1`` in a
        transaction of its own on ``conn`` (PostgreSQL: a TID range scan of those blocks, one
        prepared statement; one round trip on a connection in autocommit mode)."""
        blocks = text("ctid >= CAST(:start AS tid) AND ctid < CAST(:end AS tid)").bindparams(
            start=(start, 0), end=(end, 0)
        )
        statement = delete(self.table(entry)).where(blocks, self.tenant_filter(entry, data_key))
        async with conn.begin():
            return int((await conn.execute(statement)).rowcount or 0)

    # -- discovery -------------------------------------------------------------------------

    async def discover(self) -> list[UnmappedTable]:
        """Reflect every table of every database of the map and return the unmapped ones
        (also kept in ``self.unmapped``, and counted by :meth:`counts` from then on).

        A table is unmapped when it has a column named as one of
        :meth:`DataMap.tenant_column_names`, or a foreign key into a mapped table, and is
        neither mapped nor under ``ignore``. Raises ConfigError when a database is
        unreachable.
        """
        names = self.datamap.tenant_column_names()
        mapped = set(self.tables)
        found: list[UnmappedTable] = []
        for database in self.engines:
            try:
                metadata = await self.schema(database)
            except (SQLAlchemyError, OSError) as exc:
                raise ConfigError(
                    f"data map {self.datamap.source}: cannot reach database '{database}': {exc}"
                ) from exc
            for table in metadata.sorted_tables:
                key = (database, table.name)
                if key in mapped or self.datamap.ignored(database, table.name) is not None:
                    continue
                column = next((c.name for c in table.columns if c.name in names), None)
                item: UnmappedTable | None = None
                if column is not None:
                    item = UnmappedTable(database, table.name, column=column)
                else:
                    for fk in table.foreign_keys:
                        if (database, fk.column.table.name) in mapped:
                            item = UnmappedTable(
                                database,
                                table.name,
                                fk_column=fk.parent.name,
                                parent=fk.column.table.name,
                                references=fk.column.name,
                            )
                            break
                if item is not None:
                    found.append(item)
                    self._unmapped_tables[key] = table
        self.unmapped = found
        return found

    async def count_unmapped(self, item: UnmappedTable, data_key: str) -> int:
        """The tenant's rows in an unmapped table: by its tenant column, or through its
        foreign key into the parent's rows of the tenant."""
        table = self._unmapped_tables[(item.database, item.name)]
        if item.column is not None:
            where = _column_equals(table.c[item.column], data_key)
        else:
            parent_entry = self.datamap.table(str(item.parent), item.database)
            parent = self.table(parent_entry)
            where = table.c[str(item.fk_column)].in_(
                select(parent.c[str(item.references)]).where(
                    self.tenant_filter(parent_entry, data_key)
                )
            )
        query = select(func.count()).select_from(table).where(where)
        async with self.engines[item.database].connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    def referencing(self, entry: TableEntry) -> list[UnmappedTable]:
        """Unmapped tables with a foreign key into ``entry`` (they can block its purge)."""
        return [
            u
            for u in self.unmapped
            if u.database == entry.database
            and any(
                fk.column.table.name == entry.name
                for fk in self._unmapped_tables[(u.database, u.name)].foreign_keys
            )
        ]

    # -- storage ---------------------------------------------------------------------------

    def storage(self, index: int, data_key: str) -> ObjectStore:
        """The tenant's prefix of storage entry ``index`` (``{tenant_key}`` replaced)."""
        return self._open_storage(
            index, self.datamap.storage[index].url.replace(TENANT_KEY, data_key)
        )

    def _open_storage(self, index: int, url: str) -> ObjectStore:
        entry: StorageEntry = self.datamap.storage[index]
        options = self.s3
        if entry.endpoint_url:
            options = S3Options(
                entry.endpoint_url,
                self.s3.region,
                self.s3.access_key_id,
                self.s3.secret_access_key,
            )
        return open_store(url, options)

    async def count_files(self, index: int, data_key: str) -> tuple[int, int]:
        """``(files, bytes)`` of the tenant under storage entry ``index``."""
        return await usage(self.storage(index, data_key))

    async def counts(self, data_key: str) -> dict[str, dict[str, int]]:
        """Per store: ``{"rows": n}`` for tables, ``{"files": n, "bytes": b}`` for storage,
        ``{"keys": n}`` for caches (``cache[i]``); after :meth:`discover`, also
        ``{"rows": n}`` for each unmapped table."""
        out: dict[str, dict[str, int]] = {}
        for entry in self.datamap.tables:
            out[table_store_name(entry)] = {"rows": await self.count_rows(entry, data_key)}
        for item in self.unmapped:
            out[item.store] = {"rows": await self.count_unmapped(item, data_key)}
        for i in range(len(self.datamap.storage)):
            files, size = await self.count_files(i, data_key)
            out[storage_store_name(i)] = {"files": files, "bytes": size}
        for i, cache in enumerate(self.caches):
            out[cache_store_name(i)] = {"keys": await cache.count(data_key)}
        return out

    async def total_counts(self) -> dict[str, dict[str, int]]:
        """Like :meth:`counts` over all tenants: every row of each table, and every file
        under the part of each storage URL before its ``{tenant_key}`` folder."""
        out: dict[str, dict[str, int]] = {}
        for entry in self.datamap.tables:
            query = select(func.count()).select_from(self.table(entry))
            async with self.engines[entry.database].connect() as conn:
                rows = int((await conn.execute(query)).scalar_one())
            out[table_store_name(entry)] = {"rows": rows}
        for i, storage in enumerate(self.datamap.storage):
            base = storage.url[: storage.url.rindex("/", 0, storage.url.index(TENANT_KEY)) + 1]
            files = size = 0
            async for _key, n in self._open_storage(i, base).list():
                files, size = files + 1, size + n
            out[storage_store_name(i)] = {"files": files, "bytes": size}
        return out


async def find_unmapped(datamap: DataMap, s3: S3Options | None = None) -> list[UnmappedTable]:
    """Open the map's stores, run discovery (:meth:`TenantStores.discover`) and close them.
    Raises ConfigError like :meth:`TenantStores.open`."""
    stores = await TenantStores.open(datamap, s3)
    try:
        return await stores.discover()
    finally:
        await stores.close()
