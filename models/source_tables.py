"""The operational tables of contract section 2, as data: names, columns, keys, change tracking.

One description serves the demo-source writer (DDL per engine: resources/engines/), the extract assets
(what to read, how to merge) and the warehouse raw tables (same columns plus `loaded_at` on
events). Types are written once per engine here so no other module spells them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

MergeMode = Literal["insert_new", "upsert_latest", "replace_all"]

_ARROW_WIRE_TYPES: dict[str, pa.DataType] = {
    "bigint": pa.int64(),
    "integer": pa.int32(),
    "smallint": pa.int16(),
    "timestamptz": pa.timestamp("us", tz="UTC"),
}


@dataclass(frozen=True)
class Column:
    name: str
    duckdb_type: str
    postgres_type: str
    nullable: bool = True

    @property
    def travels_as_text(self) -> bool:
        """Read out of and bulk-loaded into PostgreSQL as text, cast back on arrival: json and
        numeric have no exact Arrow form that binary COPY accepts, char(n) none at all."""
        return self.postgres_type in ("json", "jsonb") or self.postgres_type.startswith(("numeric", "char("))

    @property
    def postgres_wire_type(self) -> str:
        """The column's type on the way through (`travels_as_text`), e.g. in a stage table."""
        return "text" if self.travels_as_text else self.postgres_type

    @property
    def arrow_wire_type(self) -> pa.DataType:
        """The Arrow type of `postgres_wire_type`: binary COPY needs the exact width of each."""
        return _ARROW_WIRE_TYPES.get(self.postgres_wire_type, pa.string())


@dataclass(frozen=True)
class SourceTable:
    name: str
    columns: tuple[Column, ...]
    key: str
    # insert_new: append-only rows, a re-read adds nothing; upsert_latest: rows change in place
    # and carry `updated_at`; replace_all: small tables read whole every time.
    merge: MergeMode
    # Column that orders increments; re-read with EXTRACT_LOOKBACK of overlap.
    watermark: str | None

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def _c(name: str, duck: str, pg: str | None = None, nullable: bool = True) -> Column:
    return Column(name, duck, pg or duck, nullable)


FULFILLMENT_PROVIDERS = SourceTable(
    name="fulfillment_providers",
    columns=(
        _c("id", "varchar", "text", False),
        _c("name", "varchar", "text", False),
        _c("platform", "varchar", "text"),
        _c("created_at", "timestamptz", "timestamptz", False),
    ),
    key="id",
    merge="replace_all",
    watermark=None,
)

ORDERS = SourceTable(
    name="orders",
    columns=(
        _c("id", "varchar", "text", False),
        _c("order_number", "varchar", "text", False),
        _c("provider_id", "varchar", "text"),
        _c("status", "varchar", "text", False),
        _c("total", "decimal(12,2)", "numeric(12,2)", False),
        _c("currency", "varchar", "char(3)", False),
        _c("loyalty_projection_points", "integer", "integer", False),
        _c("platform", "varchar", "text"),
        _c("channel", "varchar", "text"),
        _c("created_at", "timestamptz", "timestamptz", False),
        _c("updated_at", "timestamptz", "timestamptz", False),
    ),
    key="id",
    merge="upsert_latest",
    watermark="updated_at",
)

ONBOARDING_JOURNEYS = SourceTable(
    name="onboarding_journeys",
    columns=(
        _c("id", "varchar", "text", False),
        _c("order_id", "varchar", "text", False),
        _c("status", "varchar", "text", False),
        _c("progress_pct", "smallint", "smallint", False),
        _c("referral_risk", "varchar", "text"),
        _c("created_at", "timestamptz", "timestamptz", False),
        _c("updated_at", "timestamptz", "timestamptz", False),
    ),
    key="id",
    merge="upsert_latest",
    watermark="updated_at",
)

ONBOARDING_JOURNEY_EVENTS = SourceTable(
    name="onboarding_journey_events",
    columns=(
        _c("id", "bigint", "bigint", False),
        _c("journey_id", "varchar", "text", False),
        _c("event_type", "varchar", "text", False),
        _c("payload", "json", "jsonb", False),
        _c("recorded_at", "timestamptz", "timestamptz", False),
        _c("ingested_at", "timestamptz", "timestamptz", False),
    ),
    key="id",
    merge="insert_new",
    watermark="ingested_at",
)

PROVIDER_GUARDRAIL_TELEMETRY = SourceTable(
    name="provider_guardrail_telemetry",
    columns=(
        _c("id", "bigint", "bigint", False),
        _c("provider_id", "varchar", "text", False),
        _c("experiment_slug", "varchar", "text"),
        _c("variant_key", "varchar", "text"),
        _c("window_start", "timestamptz", "timestamptz", False),
        _c("window_end", "timestamptz", "timestamptz", False),
        _c("guardrail_checks", "integer", "integer", False),
        _c("guardrail_failures", "integer", "integer", False),
        _c("replay_total", "integer", "integer", False),
        _c("replay_failures", "integer", "integer", False),
        _c("recorded_at", "timestamptz", "timestamptz", False),
    ),
    key="id",
    merge="insert_new",
    watermark="recorded_at",
)

SOURCE_TABLES: tuple[SourceTable, ...] = (
    FULFILLMENT_PROVIDERS,
    ORDERS,
    ONBOARDING_JOURNEYS,
    ONBOARDING_JOURNEY_EVENTS,
    PROVIDER_GUARDRAIL_TELEMETRY,
)
SOURCE_TABLES_BY_NAME = {t.name: t for t in SOURCE_TABLES}

# The warehouse copy of events also records when each row first reached the warehouse.
LOADED_AT = _c("loaded_at", "timestamptz", "timestamptz", False)


def arrow_wire_schema(table: SourceTable) -> pa.Schema:
    """The Arrow schema a source table's rows travel in (see `Column.arrow_wire_type`)."""
    return pa.schema([pa.field(c.name, c.arrow_wire_type) for c in table.columns])


def raw_columns(table: SourceTable) -> tuple[Column, ...]:
    """Columns of the warehouse raw copy of a source table."""
    return table.columns + ((LOADED_AT,) if table.merge == "insert_new" else ())

