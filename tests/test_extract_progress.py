"""A long extract says how far it got: a line with the rows read so far and the rate while it reads
(every PROGRESS_EVERY_S), and the rate on its closing line; on the streaming append (events) and
on the staged upsert (orders) alike."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from assets import extract
from models.source_tables import ONBOARDING_JOURNEY_EVENTS, ORDERS
from resources.demo_source import write_demo_source
from resources.source import SourceDatabase
from resources.warehouse import Warehouse


class ListLog:
    def __init__(self):
        self.lines: list[str] = []

    def info(self, message: str) -> None:
        self.lines.append(message)


@pytest.fixture
def source(tmp_path) -> SourceDatabase:
    path = tmp_path / "demo_source.duckdb"
    write_demo_source(events=5_000, seed=3, duckdb_path=path, progress=lambda m: None)
    return SourceDatabase(demo_path=str(path))


@pytest.mark.parametrize("table", [ONBOARDING_JOURNEY_EVENTS, ORDERS], ids=lambda t: t.name)
def test_a_read_logs_counts_and_rates_as_it_goes(source, tmp_path, monkeypatch, table):
    monkeypatch.setattr(extract, "PROGRESS_EVERY_S", 0.0)  # every batch is "long enough"
    warehouse = Warehouse(url=f"duckdb:///{tmp_path / 'wh.duckdb'}")
    log = ListLog()
    result = extract.extract_table(source, warehouse, table, timedelta(minutes=10), log=log)

    progress = [re.fullmatch(rf"{table.name}: ([0-9,]+) rows read so far \(([0-9,]+) rows/s\)", m) for m in log.lines]
    counts = [int(m.group(1).replace(",", "")) for m in progress if m]
    assert counts, log.lines
    assert counts == sorted(counts) and counts[-1] == result.rows_read > 0
    assert all(int(m.group(2).replace(",", "")) > 0 for m in progress if m)
    closing = log.lines[-1]
    assert re.fullmatch(rf"{table.name}: read {result.rows_read} rows from demo source .* \([0-9,]+ rows/s\)", closing)
