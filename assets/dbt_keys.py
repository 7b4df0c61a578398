"""What the jobs and the assets downstream of dbt know of the dbt assets without loading them: the
marts' asset keys (as dagster-dbt names them: a model in the default schema is keyed by its name)
and the skip tag. A command that builds nothing never pays for dbt this way (tests/test_lineage.py
keeps the keys equal to dagster-dbt's)."""

from __future__ import annotations

import dagster as dg

# The jobs whose runs leave dbt alone when every model they select was last built, by any run, from
# the inputs it would read now (the scheduled/CLI refresh, the guardrail run). Only by tag: a
# materialization a person selects in the UI (an ad-hoc asset job, untagged) always runs dbt.
SKIP_WHEN_UNCHANGED_TAG = {"pricing_ops/dbt": "skip_when_unchanged"}

# The dbt options of the daily resync: its build runs every data test on every row (other builds
# check the rows they may have written: DbtBuildConfig.full_data_tests).
FULL_DATA_TESTS_RUN_CONFIG = {"ops": {"pricing_dbt_models": {"config": {"full_data_tests": True}}}}


def mart_key(model_name: str) -> dg.AssetKey:
    """The asset key of the mart dbt builds as `model_name`."""
    return dg.AssetKey(model_name)
