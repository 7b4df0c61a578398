"""The onboarding experiment export (contract section 5) in the asset graph: the
`export_onboarding_segments` asset, downstream of the segments mart, and the
`onboarding_experiment_export` job that materializes it (schedule, launchpad and CLI).

Reading the rows: `assets/export_windows.py`; one run (locks, cursor, batches, notices):
`assets/export_run.py`; the `export_runs` table: `resources/stores/export_runs.py`.
"""

# No `from __future__ import annotations`: Dagster reads the asset's config and resource annotations at runtime.
from enum import Enum
from typing import Any

import dagster as dg
from pydantic import Field

from assets.dbt_keys import mart_key
from assets.export_run import ExportFailed, run_export
from assets.export_windows import cut_batches, read_export_windows  # noqa: F401
from models.export_runs import ExportRunRecord
from models.instants import format_instant
from models.marts import SEGMENTS_MART
from resources.export_cursor import ExportBusyError, ExportCursorStore
from resources.export_notifier import ExportNotifier
from resources.export_sinks import ExportSinks, SinkConfigError
from resources.warehouse import Warehouse

EXPORT_JOB_NAME = "onboarding_experiment_export"
# The asset's op name: the launchpad's and the CLI's run config is `ops.<this>.config`.
EXPORT_OP_NAME = "export_onboarding_segments"
EXPORT_ASSET_KEY = dg.AssetKey(EXPORT_OP_NAME)
EXPORT_GROUP = "export"


class ExportSinkChoice(str, Enum):
    webhook = "webhook"
    file = "file"
    s3 = "s3"


class ExportFormatChoice(str, Enum):
    ndjson = "ndjson"
    csv = "csv"
    parquet = "parquet"


class OnboardingExportConfig(dg.Config):
    """Launchpad / CLI options of one export run; unset means the settings' value."""

    sink: ExportSinkChoice | None = Field(default=None, description="webhook, file or s3 (ONBOARDING_EXPORT_SINK)")
    format: ExportFormatChoice | None = Field(
        default=None, description="ndjson, csv or parquet for file/s3 (ONBOARDING_EXPORT_FORMAT)"
    )
    limit: int | None = Field(default=None, description="export at most this many rows in this run")
    cursor: str | None = Field(
        default=None,
        description="ISO 8601 instant: replay every row loaded at or after it (saved as the cursor)",
    )


def _metadata(record: ExportRunRecord) -> dict[str, Any]:
    return {
        "rows": dg.MetadataValue.int(record.rows_exported),
        "batches": dg.MetadataValue.int(record.batches),
        "cursor_before": dg.MetadataValue.text(record.cursor_before_text),
        "cursor_after": dg.MetadataValue.text(record.cursor_after_text),
        "sink": dg.MetadataValue.text(f"{record.sink} ({record.format})"),
        "destination": dg.MetadataValue.text(record.destination or "-"),
        "started_at": dg.MetadataValue.text(format_instant(record.started_at)),
        "finished_at": dg.MetadataValue.text(format_instant(record.finished_at) if record.finished_at else "-"),
    }


def _tag_run(context: dg.AssetExecutionContext, record: ExportRunRecord) -> None:
    # Run tags show in the Runs list, so rows and cursors are visible without opening a run.
    try:
        context.instance.add_run_tags(
            context.run.run_id,
            {
                "export/rows": str(record.rows_exported),
                "export/batches": str(record.batches),
                "export/cursor_before": record.cursor_before_text,
                "export/cursor_after": record.cursor_after_text,
            },
        )
    except Exception as exc:  # noqa: BLE001 - tags are a convenience, never a failure
        context.log.warning(f"could not tag the run: {type(exc).__name__}")


def build_export_asset() -> dg.AssetsDefinition:
    """The export as an asset downstream of the segments mart it reads (the mart's key as dagster-dbt
    gives it), so the lineage runs source -> raw -> staging -> marts -> export in one piece."""
    segments_mart = mart_key(SEGMENTS_MART)

    @dg.asset(
        key=EXPORT_ASSET_KEY,
        deps=[segments_mart],
        group_name=EXPORT_GROUP,
        kinds={"python"},
        description=(
            f"New rows of {SEGMENTS_MART} delivered to the webhook, files or S3 in load order, resuming "
            "from the cursor (contract section 5). Each materialization is one export run."
        ),
    )
    def export_onboarding_segments(
        context: dg.AssetExecutionContext,
        config: OnboardingExportConfig,
        warehouse: Warehouse,
        export_sinks: ExportSinks,
        export_cursor: ExportCursorStore,
        export_notifier: ExportNotifier,
    ) -> dg.MaterializeResult:
        try:
            record = run_export(
                warehouse=warehouse,
                sinks=export_sinks,
                cursor_store=export_cursor,
                run_id=context.run.run_id,
                sink=config.sink.value if config.sink else None,
                fmt=config.format.value if config.format else None,
                limit=config.limit,
                cursor_override=config.cursor,
                notifier=export_notifier,
                log=context.log,
            )
        except ExportFailed as exc:
            _tag_run(context, exc.record)
            raise dg.Failure(description=exc.record.error, metadata=_metadata(exc.record), allow_retries=False) from None
        except (ExportBusyError, SinkConfigError) as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        _tag_run(context, record)
        return dg.MaterializeResult(metadata=_metadata(record))

    return export_onboarding_segments


onboarding_experiment_export = dg.define_asset_job(
    EXPORT_JOB_NAME,
    # The readiness check on the export comes along: evaluated right after each export.
    selection=dg.AssetSelection.assets(EXPORT_ASSET_KEY),
    description="Onboarding experiment export: new rows of onboarding_pricing_experiment_segments to the "
    "webhook, files or S3, in load order, resuming from the cursor (contract section 5).",
    # One export at a time in the run queue (with a limit of 1 for this key in dagster.yaml); the
    # locks in run_export (a file lock, and on Postgres an advisory lock) hold it for hand-run CLI
    # exports, which do not go through the queue, and for exports on another host.
    tags={"dagster/concurrency_key": EXPORT_JOB_NAME},
)


def run_config(
    sink: str | None = None, fmt: str | None = None, limit: int | None = None, cursor: str | None = None
) -> dict[str, Any]:
    """The job's run config for the given options (the CLI's flags)."""
    options = {k: v for k, v in {"sink": sink, "format": fmt, "limit": limit, "cursor": cursor}.items() if v is not None}
    return {"ops": {EXPORT_OP_NAME: {"config": options}}}
