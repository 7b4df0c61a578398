"""Extract: the source tables into the warehouse raw schema, incremental and idempotent.

Each table is read from `max(watermark) - EXTRACT_LOOKBACK` on (the overlap catches rows that
commit late with an older watermark), streamed into a scratch stage table, and merged by primary
key in one transaction:
- append-only tables (events, telemetry): rows not yet present are inserted; events get
  `loaded_at`, one instant per run and strictly after every earlier run's, so the export's
  (loaded_at, event_id, slug) order is the warehouse's load order;
- tables that change in place (orders, journeys) and the small providers table: upserted, so the
  warehouse keeps the latest version of each row.
The watermark is derived from the raw table itself, so there is no bookkeeping to lose or to drift.
"""


import hashlib
import json
import time
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

import dagster as dg
import pyarrow as pa
from pydantic import Field

from assets.extract_api import extract_from_api
from models.instants import as_utc
from models.source_tables import (
    ONBOARDING_JOURNEY_EVENTS,
    ONBOARDING_JOURNEYS,
    ORDERS,
    SOURCE_TABLES,
    SourceTable,
    raw_columns,
)
from resources.engines.base import Engine, RawLoad
from resources.engines.duckdb import DuckDBEngine
from resources.raw_tables import (  # ensure_raw_tables, ...: callers know them from here too
    ExtractResult,
    ensure_raw_tables,
    next_loaded_at,
    raw_asset_key,
)
from resources.source import SourceDatabase, SourceReadError
from resources.stores.dbt_build_state import raw_fingerprint
from resources.warehouse import Warehouse, WarehouseConnection
from resources.warehouse_writer import WarehouseWriter

EXTRACT_GROUP = "extract"
# A read that lasts longer logs its count and rate this often.
PROGRESS_EVERY_S = 5.0


def extract_table(
    source: SourceDatabase,
    warehouse: Warehouse,
    table: SourceTable,
    lookback: timedelta,
    log=None,
    full: bool = False,
) -> ExtractResult:
    """Bring one source table up to date in the warehouse (see module docstring); `full` re-reads
    the whole table (the resync of the tables that change in place). The engine loads the stream in
    bulk and merges it (`Engine.load_raw`)."""
    started = time.monotonic()
    result = ExtractResult(table=table.name, full_resync=full)
    raw = f"{warehouse.raw_schema}.{table.name}"

    with warehouse.connect() as conn:
        # Committed on its own: on PostgreSQL the stage is loaded on another connection.
        ensure_raw_tables(warehouse, conn)
    with warehouse.connect() as conn:
        # One extraction of a table at a time, also outside the run queue (a hand-run refresh, a second host).
        conn.lock(f"pricing_ops.extract.{raw}")
        if table.watermark:
            result.watermark_before = _max_instant(conn, raw, table.watermark)
            if result.watermark_before is not None and not full:
                result.read_since = result.watermark_before - lookback
        before = conn.fetchone(f"select count(*) from {raw}")[0]
        with source.read_table(table, result.read_since) as stream:
            reader, _ = _counting(stream, log, table.name)
            _take(result, conn.engine.load_raw(conn, table, raw, reader, result.read_since, next_loaded_at))
        if log:
            rate = result.rows_read / max(time.monotonic() - started, 1e-9)
            log.info(f"{table.name}: read {result.rows_read} rows from {source.describe()} ({rate:,.0f} rows/s)")
        after = conn.fetchone(f"select count(*) from {raw}")[0]
        result.rows_inserted, result.rows_total = after - before, after
        if table.watermark:
            result.watermark_after = _max_instant(conn, raw, table.watermark)
    result.seconds = time.monotonic() - started
    return result


def _take(result: ExtractResult, load: RawLoad) -> None:
    result.rows_read += load.rows_read
    result.rows_updated += load.rows_updated
    if load.loaded_at is not None:
        result.loaded_at = load.loaded_at


# (table that references, its column, table referenced): followed in this order, so an order
# referenced by a journey fetched by key is fetched too.
REFERENCES = (
    (ONBOARDING_JOURNEY_EVENTS, "journey_id", ONBOARDING_JOURNEYS),
    (ONBOARDING_JOURNEYS, "order_id", ORDERS),
)
KEYS_PER_READ = 5_000


def fetch_missing_references(source: SourceDatabase, warehouse: Warehouse) -> dict[str, int]:
    """Fetch by key every journey and order that a warehouse row references and the warehouse
    lacks; returns rows fetched per table.

    The app stamps `updated_at` when a transaction starts, and it may commit long after: such a
    row is older than any overlap, so the incremental read never sees it, while the event that
    references it arrives. A key the source does not have either (a dirty event) is looked up
    again next run; it is counted by the rejects model, not here."""
    fetched: dict[str, int] = {}
    for referrer, column, referenced in REFERENCES:
        raw_from, raw_to = f"{warehouse.raw_schema}.{referrer.name}", f"{warehouse.raw_schema}.{referenced.name}"
        with warehouse.connect() as conn:
            missing = [
                row[0]
                for row in conn.fetchall(
                    f"select distinct r.{column} from {raw_from} r where r.{column} is not null and not exists "
                    f"(select 1 from {raw_to} t where t.{referenced.key} = r.{column}) order by 1"
                )
            ]
        total = 0
        for start in range(0, len(missing), KEYS_PER_READ):
            keys = missing[start : start + KEYS_PER_READ]
            with warehouse.connect() as conn, source.read_table(referenced, None, keys) as stream:
                before = conn.fetchone(f"select count(*) from {raw_to}")[0]
                conn.engine.load_raw(conn, referenced, raw_to, stream, None, next_loaded_at)
                total += conn.fetchone(f"select count(*) from {raw_to}")[0] - before
        fetched[referenced.name] = total
    return fetched


def _max_instant(conn: WarehouseConnection, raw: str, column: str) -> datetime | None:
    row = conn.fetchone(f"select max({column}) from {raw}")
    return as_utc(row[0]) if row and row[0] is not None else None


def _counting(
    reader: pa.RecordBatchReader, log=None, name: str = ""
) -> tuple[pa.RecordBatchReader, list[int]]:
    """The same stream, counting its rows as they pass (the count is final once it is consumed);
    with `log`, a progress line with the count and the rate every PROGRESS_EVERY_S on a long read."""
    count = [0]
    started = time.monotonic()

    def batches():
        last = started
        for batch in reader:
            count[0] += batch.num_rows
            now = time.monotonic()
            if log is not None and now - last >= PROGRESS_EVERY_S:
                last = now
                log.info(f"{name}: {count[0]:,} rows read so far ({count[0] / (now - started):,.0f} rows/s)")
            yield batch

    return pa.RecordBatchReader.from_batches(reader.schema, batches()), count


class ExtractConfig(dg.Config):
    lookback_seconds: int | None = Field(
        default=None, description="seconds re-read before the watermark; overrides EXTRACT_LOOKBACK for this run"
    )
    full_resync: bool = Field(
        default=False,
        description="re-read orders and journeys whole (the EXTRACT_RESYNC_CRON schedule): repairs any change"
        " that committed later than the overlap",
    )


RESYNC_RUN_CONFIG = {"ops": {"extract_source": {"config": {"full_resync": True}}}}


def raw_table_metadata(table: SourceTable, raw_schema: str | None, engine: Engine | type[Engine]) -> dict[str, object]:
    """The raw table's name and column schema (with `loaded_at` where the extract adds it), as the UI shows them."""
    columns = [
        dg.TableColumn(
            c.name,
            engine.column_type(c),
            constraints=dg.TableColumnConstraints(nullable=c.nullable),
        )
        for c in raw_columns(table)
    ]
    return {
        "dagster/table_name": f"{raw_schema}.{table.name}" if raw_schema else table.name,
        "dagster/column_schema": dg.TableSchema(columns=columns),
    }


def build_extract_assets(
    default_lookback: timedelta, raw_schema: str | None = None, engine: Engine | type[Engine] = DuckDBEngine
) -> dg.AssetsDefinition:
    """One multi-asset for the five source tables: one process, one writer on the warehouse.
    `raw_schema` and `engine` name the raw tables and their column types in the asset metadata."""

    specs = [
        dg.AssetSpec(
            key=raw_asset_key(t.name),
            group_name=EXTRACT_GROUP,
            description=f"Source table `{t.name}` copied into the warehouse raw schema ({t.merge}).",
            kinds={"python"},
            skippable=True,
            metadata=raw_table_metadata(t, raw_schema, engine),
        )
        for t in SOURCE_TABLES
    ]

    @dg.multi_asset(specs=specs, can_subset=True, name="extract_source")
    def extract_source(
        context: dg.AssetExecutionContext,
        config: ExtractConfig,
        source: SourceDatabase,
        warehouse: Warehouse,
        warehouse_writer: WarehouseWriter,  # held for the whole run: one writer on the warehouse
    ):
        lookback = (
            timedelta(seconds=config.lookback_seconds) if config.lookback_seconds is not None else default_lookback
        )
        selected = {key.path[-1] for key in context.selected_asset_keys}
        if source.kind == "api":
            yield from _versioned(warehouse, extract_from_api(context, source, warehouse, selected))
            return
        try:
            yield from _extract_tables(context, config, source, warehouse, selected, lookback)
        except SourceReadError as exc:
            # Its message is the cause in one line (table, database, why): the run's reason as is.
            raise dg.Failure(description=str(exc)) from exc

    return extract_source


def _extract_tables(
    context: dg.AssetExecutionContext,
    config: ExtractConfig,
    source: SourceDatabase,
    warehouse: Warehouse,
    selected: set[str],
    lookback: timedelta,
) -> Iterator[dg.MaterializeResult]:
    """Each selected source table brought up to date, then the rows they reference (see
    `fetch_missing_references`); a materialization per table."""
    results: dict[str, ExtractResult] = {}
    for table in SOURCE_TABLES:
        if table.name not in selected:
            continue
        full = config.full_resync and table.merge == "upsert_latest"
        result = extract_table(source, warehouse, table, lookback, log=context.log, full=full)
        context.log.info(
            f"{table.name}: {result.rows_inserted} new, {result.rows_updated} updated, "
            f"{result.rows_total} in warehouse ({result.seconds:.2f}s){' (full resync)' if full else ''}"
        )
        results[table.name] = result
    if {ONBOARDING_JOURNEYS.name, ORDERS.name} <= selected:
        for name, count in fetch_missing_references(source, warehouse).items():
            if name in results and count:
                results[name].fetched_by_key = count
                results[name].rows_inserted += count
                results[name].rows_total += count
                context.log.info(f"{name}: {count} rows fetched by key (referenced, committed late)")
    yield from _versioned(warehouse, (
        dg.MaterializeResult(asset_key=raw_asset_key(name), metadata=result.metadata())
        for name, result in results.items()
    ))


def _versioned(warehouse: Warehouse, results: Iterable[dg.MaterializeResult]) -> Iterator[dg.MaterializeResult]:
    """Each raw table's materialization with the table's contents as its data version: an extract
    that brought nothing new leaves the version, and so everything downstream, as it was."""
    results = list(results)
    fingerprints = raw_fingerprint(warehouse, [r.asset_key.path[-1] for r in results])
    for r in results:
        version = hashlib.sha256(json.dumps(fingerprints[r.asset_key.path[-1]]).encode()).hexdigest()[:24]
        yield dg.MaterializeResult(
            asset_key=r.asset_key, metadata=r.metadata, check_results=r.check_results, tags=r.tags,
            data_version=dg.DataVersion(version),
        )

