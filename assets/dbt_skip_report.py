"""What a dbt build that was skipped (nothing new since the last build) reports to Dagster, so the UI
reads as it did before the run:

- each selected model is recorded as materialized, `dbt: skipped ...`, with the data version its
  last build had (`data_version_of`: a hash of what the build read). Downstream assets (the export,
  the guardrail actions, the digests) compare data versions, so none of them turns stale, while
  the marts' freshness policies see data confirmed current by this run;
- each dbt test's asset check gets its last result again, marked `carried_from_run`: the data it
  checked is the data it would check now. No check shows Skipped, no step warns of missing results.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import dagster as dg

CARRIED_FROM = "carried_from_run"


def data_version_of(inputs: str) -> dg.DataVersion:
    """The data version of a model built from `inputs` (the build record's description of what it
    read): equal inputs, equal tables, equal versions."""
    return dg.DataVersion(hashlib.sha256(inputs.encode()).hexdigest()[:24])


def last_check_results(
    instance: dg.DagsterInstance, keys: Iterable[dg.AssetCheckKey]
) -> dict[dg.AssetCheckKey, tuple[str, Any]]:
    """(run id, `AssetCheckEvaluation`) of the last completed evaluation of each check that has one."""
    records = instance.event_log_storage.get_asset_check_summary_records(list(keys))
    out = {}
    for key, summary in records.items():
        record = summary.last_completed_check_execution_record
        event = record.event.dagster_event if record and record.event else None
        if event is not None and event.event_specific_data is not None:
            out[key] = (record.run_id, event.event_specific_data)
    return out


def carried_check_results(
    planned: Iterable[dg.AssetCheckKey], last: Mapping[dg.AssetCheckKey, tuple[str, Any]], since: str
) -> Iterator[dg.AssetCheckResult]:
    """Each planned check's last result, marked with the run that evaluated it."""
    for key in sorted(planned, key=lambda k: (k.asset_key.to_user_string(), k.name)):
        run_id, evaluation = last[key]
        metadata = dict(evaluation.metadata)
        origin = metadata.get(CARRIED_FROM)
        origin_run = origin.value if isinstance(origin, dg.TextMetadataValue) else run_id
        metadata[CARRIED_FROM] = dg.MetadataValue.text(origin_run)
        yield dg.AssetCheckResult(
            asset_key=key.asset_key,
            check_name=key.name,
            passed=evaluation.passed,
            severity=evaluation.severity,
            description=f"carried from run {origin_run[:8]}: dbt not run, nothing new since {since}",
            metadata=metadata,
        )


def skipped_build_events(
    context: dg.AssetExecutionContext,
    order: Iterable[dg.AssetKey],
    metadata_by_key: Mapping[dg.AssetKey, Mapping[str, Any]],
    inputs_by_name: Mapping[str, str],
    last: Mapping[dg.AssetCheckKey, tuple[str, Any]],
    since: str,
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """The outputs (in dependency order) and the carried check results of a skipped build."""
    for key in order:
        yield dg.Output(
            None,
            output_name=context.assets_def.get_output_name_for_asset_key(key),
            metadata={"dbt": dg.MetadataValue.text(f"skipped: nothing new since {since}"), **metadata_by_key[key]},
            data_version=data_version_of(inputs_by_name["/".join(key.path)]),
        )
    yield from carried_check_results(context.selected_asset_check_keys, last, since)
