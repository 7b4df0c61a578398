"""The readiness checks as a selection, so that the jobs which build the judged assets leave them out.

Dagster adds to an asset job every check on the assets it selects; readiness is one probe of the
whole platform (`pricing-ops readyz`, the `readiness` job), not a step of the refresh, the export
or a digest. The checks are found by their component names, so a job needs no handle on the
readiness definition (which sits above the assets it judges).
"""

from __future__ import annotations

import dagster as dg

from models.readiness import COMPONENTS


class ReadinessChecks(dg.AssetSelection):
    """Every asset check named after a readiness component; no asset."""

    def resolve_inner(self, asset_graph, allow_missing: bool) -> set[dg.AssetKey]:
        return set()

    def resolve_checks_inner(self, asset_graph, allow_missing: bool) -> set[dg.AssetCheckKey]:
        return {key for key in asset_graph.asset_check_keys if key.name in COMPONENTS}

    def to_serializable_asset_selection(self, asset_graph) -> dg.AssetSelection:
        return dg.AssetSelection.checks(*self.resolve_checks_inner(asset_graph, True))


def without_readiness(selection: dg.AssetSelection) -> dg.AssetSelection:
    """`selection` without the readiness checks on its assets."""
    return selection - ReadinessChecks()
