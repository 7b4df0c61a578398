"""The demo source: reproducible from its seed, complete (every category and every dirty payload
kind of contract section 2), realistic in time, and the same rows on DuckDB and on Postgres."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import Counter, defaultdict
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import psycopg
import pytest

from models.source_tables import SOURCE_TABLES
from resources.demo_source import DemoSourceError, write_demo_source

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
EVENTS = 4000  # 500 journeys, 520 orders: small, yet every category is there
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
EXPOSURE = "pricing_experiment_segment"
ENTRY_KEYS = {"slug", "variantKey", "variantName", "isControl", "assignmentStrategy", "featureFlagKey"}


def _write(path: Path, events: int = EVENTS, seed: int = 7, **kw):
    return write_demo_source(events=events, seed=seed, duckdb_path=path, now=NOW, progress=lambda _: None, **kw)


def _rows(path: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        con.execute("set TimeZone = 'UTC'")
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _digests(path: Path) -> dict[str, str]:
    """md5 of each table's rows in id order."""
    return {
        t.name: _rows(path, f"select md5(string_agg(t::varchar, chr(10) order by id)) from {t.name} t")[0][0]
        for t in SOURCE_TABLES
    }


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, object]:
    path = tmp_path_factory.mktemp("demo") / "demo_source.duckdb"
    return path, _write(path)


@pytest.fixture(scope="module")
def payloads(demo) -> list[tuple[str, dict]]:
    """(journey_id, payload) of every exposure event, in id order."""
    path, _ = demo
    return [(j, json.loads(p)) for j, p in _rows(
        path, f"select journey_id, payload from onboarding_journey_events where event_type = '{EXPOSURE}' order by id")]


@contextmanager
def _process_time_zone(name: str):
    old = os.environ.get("TZ")
    os.environ["TZ"] = name
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old
        time.tzset()


# Reproducibility and size ------------------------------------------------------------------------


def test_same_seed_gives_identical_tables_whatever_the_process_time_zone(demo, tmp_path):
    path, _ = demo
    with _process_time_zone("Asia/Kolkata"):
        _write(tmp_path / "again.duckdb")
    assert _digests(tmp_path / "again.duckdb") == _digests(path)

    _write(tmp_path / "other_seed.duckdb", seed=8)
    first, other = _digests(path), _digests(tmp_path / "other_seed.duckdb")
    assert [name for name in first if first[name] == other[name]] == []


def test_row_counts_follow_the_event_count(demo, tmp_path):
    path, summary = demo
    counts = {t.name: _rows(path, f"select count(*) from {t.name}")[0][0] for t in SOURCE_TABLES}
    assert summary.row_counts == counts
    assert {k: v for k, v in counts.items() if k != "provider_guardrail_telemetry"} == {
        "fulfillment_providers": 50, "orders": 520, "onboarding_journeys": 500, "onboarding_journey_events": 4000}
    # 45 providers report hourly over 72 h, with a few gaps; one re-sent its latest window.
    assert 45 * 72 * 0.85 < counts["provider_guardrail_telemetry"] < 45 * 72
    assert summary.target == f"duckdb file {path.resolve()}"
    assert summary.seed == 7 and summary.now == NOW

    tiny = _write(tmp_path / "tiny.duckdb", events=1)
    assert {k: v for k, v in tiny.row_counts.items() if k != "provider_guardrail_telemetry"} == {
        "fulfillment_providers": 50, "orders": 2, "onboarding_journeys": 1, "onboarding_journey_events": 1}


def test_rewriting_replaces_the_file_without_disturbing_an_open_reader(tmp_path):
    path = tmp_path / "demo_source.duckdb"
    _write(path, events=2000)
    reader = duckdb.connect(str(path), read_only=True)
    try:
        summary = _write(path, events=500)
        # The old reader keeps its consistent snapshot; new readers see the new tables.
        assert reader.execute("select count(*) from onboarding_journey_events").fetchone()[0] == 2000
    finally:
        reader.close()
    assert summary.row_counts["onboarding_journey_events"] == 500
    assert _rows(path, "select count(*) from onboarding_journey_events")[0][0] == 500
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo_source.duckdb"]


# Categories -----------------------------------------------------------------------------------


def test_every_status_currency_and_risk_is_present(demo):
    path, _ = demo
    def values(sql: str) -> set:
        return {r[0] for r in _rows(path, sql)}

    assert values("select status from orders") == {"pending", "paid", "fulfilled", "refunded", "cancelled"}
    assert {"USD", "EUR", "GBP"} <= values("select currency from orders")
    assert values("select length(currency) = 3 and currency = upper(currency) from orders") == {True}
    assert values("select status from onboarding_journeys") == {"active", "stalled", "completed"}
    assert values("select referral_risk from onboarding_journeys") == {"low", "medium", "high", None}
    assert {"instagram", "tiktok", "youtube"} <= values("select platform from fulfillment_providers")
    # Money is exact to the cent; loyalty points are whole.
    totals = [r[0] for r in _rows(path, "select total from orders")]
    assert all(isinstance(t, Decimal) and t.as_tuple().exponent == -2 and t >= Decimal("9.00") for t in totals)
    # Orders belong to providers (a few have none); every provider id exists.
    linked, orphans, missing = _rows(path, """
        select count(o.provider_id), count(*) filter (where o.provider_id is not null and p.id is null),
               count(*) filter (where o.provider_id is null)
        from orders o left join fulfillment_providers p on p.id = o.provider_id""")[0]
    assert orphans == 0 and 0 < missing < 0.08 * 520 and linked > 0.9 * 520
    assert values("select count(distinct provider_id) > 40 from orders") == {True}
    assert values("""select count(*) from orders o join fulfillment_providers p on p.id = o.provider_id
                     where o.platform is distinct from p.platform""") == {0}


def test_event_mix_and_late_events(demo):
    path, _ = demo
    types = dict(_rows(path, "select event_type, count(*) from onboarding_journey_events group by 1"))
    assert set(types) == {EXPOSURE, "task_completed", "nudge_sent", "progress_updated", "referral_submitted",
                          "journey_started", "checkout_viewed"}
    assert 0.30 <= 1 - types[EXPOSURE] / EVENTS <= 0.40
    late, total = _rows(path, """select count(*) filter (where ingested_at - recorded_at >= interval 1 day), count(*)
                                 from onboarding_journey_events""")[0]
    assert 0.01 * total <= late <= 0.06 * total
    longest = _rows(path, "select max(ingested_at - recorded_at) from onboarding_journey_events")[0][0]
    assert timedelta(days=7) < longest <= timedelta(days=21, minutes=2)


def _entry_kinds(entries: list, kinds: set[str]) -> None:
    valid_slugs: list[str] = []
    invalid_slugs: list[str] = []
    for entry in entries:
        if entry is None:
            kinds.add("entry_null")
        elif isinstance(entry, str):
            kinds.add("entry_string")
        elif isinstance(entry, list):
            kinds.add("entry_list")
        else:
            for key, name in (("slug", "slug"), ("variantKey", "variant_key")):
                if key not in entry:
                    kinds.add(f"{name}_missing")
                elif entry[key] == "":
                    kinds.add(f"{name}_empty")
                elif not isinstance(entry[key], str):
                    kinds.add(f"{name}_not_string")
            if set(entry) - ENTRY_KEYS:
                kinds.add("unknown_keys")
            if any(k in entry and entry[k] is not None and not isinstance(entry[k], str)
                   for k in ("variantName", "assignmentStrategy", "featureFlagKey")) or entry.get("isControl") == "true":
                kinds.add("optional_fields_not_string")
            ok = all(isinstance(entry.get(k), str) and entry[k] for k in ("slug", "variantKey"))
            (valid_slugs if ok else invalid_slugs).append(entry.get("slug"))
    if len(valid_slugs) != len(set(valid_slugs)):
        kinds.add("duplicate_slug")
    if any(s in valid_slugs for s in invalid_slugs):
        kinds.add("duplicate_slug_first_invalid")


def payload_kinds(payload: dict) -> set[str]:
    """The dirty shapes of contract section 2 found in one payload (empty: clean)."""
    kinds: set[str] = set()
    if "surface" in payload and not isinstance(payload["surface"], str):
        kinds.add("surface_not_string")
    if set(payload) - {"surface", "pricingExperiments"}:
        kinds.add("unknown_keys")
    if "pricingExperiments" not in payload:
        return kinds | {"experiments_missing"}
    pe = payload["pricingExperiments"]
    if pe is None:
        kinds.add("experiments_null")
    elif isinstance(pe, dict):
        kinds.add("experiments_object")
    elif isinstance(pe, (int, float)):
        kinds.add("experiments_number")
    elif isinstance(pe, str):
        try:
            decoded = json.loads(pe)
        except ValueError:
            decoded = None
        if isinstance(decoded, list) and decoded and all(isinstance(e, dict) and e.get("slug") for e in decoded):
            kinds.add("experiments_json_string")
        else:
            kinds.add("experiments_plain_string")
    elif pe == []:
        kinds.add("experiments_empty_list")
    else:
        _entry_kinds(pe, kinds)
    return kinds


def test_every_dirty_payload_kind_is_present_a_few_percent(payloads):
    found = Counter(kind for _, p in payloads for kind in payload_kinds(p))
    assert set(found) == {
        "experiments_missing", "experiments_null", "experiments_empty_list", "experiments_object",
        "experiments_plain_string", "experiments_json_string", "experiments_number",
        "entry_null", "entry_string", "entry_list",
        "slug_missing", "slug_empty", "slug_not_string",
        "variant_key_missing", "variant_key_empty", "variant_key_not_string",
        "duplicate_slug", "duplicate_slug_first_invalid", "unknown_keys", "surface_not_string",
        "optional_fields_not_string",
    }
    dirty = sum(1 for _, p in payloads if payload_kinds(p))
    assert 0.02 * len(payloads) <= dirty <= 0.10 * len(payloads)


def test_clean_exposures_describe_experiments_consistently(payloads):
    descriptions: dict[str, dict[str, set[tuple]]] = defaultdict(lambda: defaultdict(set))
    surfaces = Counter()
    two_slug_events = 0
    for _, p in payloads:
        if payload_kinds(p) or "variantName" not in p["pricingExperiments"][0]:
            continue
        surfaces[p["surface"]] += 1
        two_slug_events += len(p["pricingExperiments"]) == 2
        for e in p["pricingExperiments"]:
            assert set(e) == ENTRY_KEYS
            descriptions[e["slug"]][e["variantKey"]].add(
                (e["variantName"], e["isControl"], e["assignmentStrategy"], e["featureFlagKey"]))
    assert 15 <= len(descriptions) <= 20 and "spring-offer" in descriptions
    for slug, by_key in descriptions.items():
        assert all(len(seen) == 1 for seen in by_key.values()), slug  # a variant always reads the same
        variants = [next(iter(seen)) for seen in by_key.values()]
        assert len(by_key) <= 4 and sum(v[1] is True for v in variants) <= 1, slug
        assert len({(v[2], v[3]) for v in variants}) == 1, slug  # one strategy and flag per experiment
    # Every well-exposed experiment shows 2-4 variants, exactly one of them the control.
    well_exposed = [by_key for by_key in descriptions.values() if len(by_key) >= 2]
    assert len(well_exposed) >= 15
    assert all(sum(next(iter(s))[1] is True for s in by_key.values()) == 1 for by_key in well_exposed)
    described = [next(iter(s)) for by_key in descriptions.values() for s in by_key.values()]
    assert {v[2] for v in described} == {"sequential", "random_split", "feature_flag"}
    assert None in {v[3] for v in described} and any(isinstance(v[3], str) for v in described)
    assert set(surfaces) == {"checkout", "pdp", "success", "account"}
    assert two_slug_events > 0.05 * len(payloads)


def test_journeys_revisit_slugs_and_sometimes_switch_variant(payloads, demo):
    seen: dict[tuple[str, str], list[str]] = defaultdict(list)
    for journey, p in payloads:
        if not payload_kinds(p):
            for e in p["pricingExperiments"]:
                seen[(journey, e["slug"])].append(e["variantKey"])
    revisits = [keys for keys in seen.values() if len(keys) > 1]
    switched = [keys for keys in revisits if len(set(keys)) > 1]
    assert len(revisits) > 0.5 * len(seen)
    assert 0.05 * len(revisits) < len(switched) < 0.5 * len(revisits)
    path, _ = demo
    # About one journey per order; a few orders never started one.
    journeys, distinct_orders, orders = _rows(path, """
        select count(*), count(distinct order_id), (select count(*) from orders) from onboarding_journeys""")[0]
    assert journeys == distinct_orders and orders - journeys == 20


# Time ----------------------------------------------------------------------------------------


def test_times_are_in_the_thirty_days_before_now_and_in_order(demo):
    path, _ = demo
    start = NOW - timedelta(days=30)
    (first_recorded, last_ingested, inverted, out_of_id_order, days) = _rows(path, """
        select min(recorded_at), max(ingested_at), count(*) filter (where recorded_at > ingested_at),
               count(*) filter (where ingested_at < previous), count(distinct (recorded_at at time zone 'UTC')::date)
        from (select *, lag(ingested_at) over (order by id) as previous from onboarding_journey_events)""")[0]
    assert start <= first_recorded < start + timedelta(days=2) and NOW - timedelta(hours=1) < last_ingested <= NOW
    assert inverted == 0 and out_of_id_order == 0  # ids are handed out in ingestion order
    assert days >= 29  # of the 31 UTC dates the history touches
    for table in ("orders", "onboarding_journeys"):
        (bad,) = _rows(path, f"""select count(*) from {table} where updated_at < created_at or created_at < timestamptz
                              '{start.isoformat()}' or updated_at > timestamptz '{NOW.isoformat()}'""")[0]
        assert bad == 0, table
    (before_order, before_journey) = _rows(path, """
        select count(*) filter (where j.created_at < o.created_at),
               (select count(*) from onboarding_journey_events e join onboarding_journeys jj on jj.id = e.journey_id
                where e.recorded_at < jj.created_at)
        from onboarding_journeys j join orders o on o.id = j.order_id""")[0]
    assert before_order == 0 and before_journey == 0


# Guardrail telemetry ----------------------------------------------------------------------------


def test_latest_telemetry_windows_include_warning_and_critical_providers(demo):
    path, _ = demo
    latest = _rows(path, """
        select provider_id, guardrail_failures, replay_failures, replay_total, experiment_slug
        from (select *, row_number() over (partition by provider_id order by window_end desc, id desc) as n
              from provider_guardrail_telemetry) where n = 1""")
    def severity(gf: int, rf: int) -> str:
        return "critical" if gf > 2 or rf > 4 else "warning" if gf > 0 or rf > 0 else "ok"
    by_severity = defaultdict(set)
    for _, gf, rf, rt, slug in latest:
        by_severity[severity(gf, rf)].add((gf, rf, rt))
        if severity(gf, rf) != "ok":
            assert slug is not None
    assert len(latest) == 45
    assert by_severity["critical"] == {(3, 1, 6), (0, 5, 10), (6, 8, 12)}
    assert by_severity["warning"] == {(1, 0, 4), (0, 3, 9), (2, 4, 8), (1, 2, 7)}
    assert Counter(severity(gf, rf) for _, gf, rf, _, _ in latest) == {"ok": 38, "critical": 3, "warning": 4}

    # One provider re-sent its latest window: the smaller id is clean, the greater id warns.
    resent = _rows(path, """
        select guardrail_failures, replay_failures, window_end from provider_guardrail_telemetry
        where (provider_id, window_end) in (select provider_id, window_end from provider_guardrail_telemetry
                                            group by all having count(*) > 1)
        order by id""")
    assert resent == [(0, 0, NOW), (1, 2, NOW)]
    # One provider was critical before a clean latest window (an automation resume candidate).
    (recovered,) = _rows(path, """
        select count(*) from (select provider_id, max(window_end) as last_end from provider_guardrail_telemetry group by 1) l
        where exists (select 1 from provider_guardrail_telemetry t where t.provider_id = l.provider_id
                      and t.window_end = l.last_end and t.guardrail_failures = 0 and t.replay_failures = 0)
          and exists (select 1 from provider_guardrail_telemetry t where t.provider_id = l.provider_id
                      and t.window_end = l.last_end - interval 1 hour and t.guardrail_failures > 2)""")[0]
    assert recovered == 1

    (bad_windows, late_record, ids_out_of_order, latest_end) = _rows(path, """
        select count(*) filter (where window_end - window_start <> interval 1 hour or guardrail_failures > guardrail_checks
                                 or replay_failures > replay_total),
               count(*) filter (where recorded_at < window_end or recorded_at > timestamptz '2026-11-26 12:00:00+00'),
               count(*) filter (where recorded_at < previous), max(window_end)
        from (select *, lag(recorded_at) over (order by id) as previous from provider_guardrail_telemetry)""")[0]
    assert (bad_windows, late_record, ids_out_of_order) == (0, 0, 0)
    assert latest_end == NOW  # NOW is on the hour: the last window ends then


# Postgres ------------------------------------------------------------------------------------


@pytest.fixture
def fresh_database():
    name = f"demo_source_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'drop database if exists "{name}" with (force)')


def _normalise(rows: list[tuple], columns: list[str]) -> list[tuple]:
    """Rows comparable across engines: payload as parsed JSON (jsonb reorders keys), instants in UTC
    (Python never finds an ambiguous local time equal to one in another zone)."""
    at = columns.index("payload") if "payload" in columns else None

    def value(i: int, v: object) -> object:
        if i == at and isinstance(v, str):
            return json.loads(v)
        return v.astimezone(UTC) if isinstance(v, datetime) else v

    return [tuple(value(i, v) for i, v in enumerate(r)) for r in rows]


@pytest.mark.postgres
def test_postgres_gets_the_same_rows_and_a_usable_identity(demo, fresh_database):
    path, _ = demo
    url = f"postgresql://postgres:s3cret-pw@127.0.0.1:5432/{fresh_database}"
    lines: list[str] = []
    summary = write_demo_source(events=EVENTS, seed=7, postgres_url=url, schema="source", now=NOW,
                                progress=lines.append)
    assert "s3cret-pw" not in str(summary) + "\n".join(lines)
    assert summary.target == f"postgresql://postgres@127.0.0.1:5432/{fresh_database} schema source"

    with psycopg.connect(url, options="-c TimeZone=America/Los_Angeles") as pg:
        pg.execute("set search_path = source")
        for table in SOURCE_TABLES:
            select = f"select {', '.join(table.column_names)} from {table.name} order by id"
            assert _normalise(pg.execute(select).fetchall(), table.column_names) == _normalise(
                _rows(path, select), table.column_names), table.name

        identity = pg.execute("""select table_name, identity_generation from information_schema.columns
                                 where table_schema = 'source' and is_identity = 'YES' order by 1""").fetchall()
        assert identity == [("onboarding_journey_events", "ALWAYS"), ("provider_guardrail_telemetry", "ALWAYS")]
        # The app inserts without id, payload or ingested_at; ids continue after the loaded ones.
        new_id, payload, ingested = pg.execute("""
            insert into onboarding_journey_events (journey_id, event_type, recorded_at)
            values ('jrn_00000001', 'nudge_sent', now()) returning id, payload, ingested_at""").fetchone()
        assert (new_id, payload) == (EVENTS + 1, {}) and ingested is not None
        telemetry_max = pg.execute("select max(id) from provider_guardrail_telemetry").fetchone()[0]
        (telemetry_id,) = pg.execute("""
            insert into provider_guardrail_telemetry (provider_id, window_start, window_end)
            values ('prv_001', now() - interval '1 hour', now()) returning id""").fetchone()
        assert telemetry_id == telemetry_max + 1
        pg.commit()
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            pg.execute("insert into onboarding_journey_events (journey_id, event_type, recorded_at) "
                       "values ('jrn_missing', 'nudge_sent', now())")
        pg.rollback()
        with pytest.raises(psycopg.errors.UniqueViolation):
            pg.execute("""insert into orders (id, order_number, status, total, currency, created_at, updated_at)
                          values ('ord_x', 'SMP-0100001', 'paid', 1, 'USD', now(), now())""")
        pg.rollback()

    # Safe to run twice: the tables are replaced, identities restart after the new rows.
    again = write_demo_source(events=800, seed=7, postgres_url=url, schema="source", now=NOW, progress=lines.append)
    assert again.row_counts["onboarding_journey_events"] == 800
    with psycopg.connect(url) as pg:
        (new_id,) = pg.execute("""insert into source.onboarding_journey_events (journey_id, event_type, recorded_at)
                                  values ('jrn_00000001', 'nudge_sent', now()) returning id""").fetchone()
        assert new_id == 801


# Misuse ----------------------------------------------------------------------------------------


def test_misuse_fails_with_a_clear_message_and_no_secret(tmp_path):
    with pytest.raises(ValueError, match="exactly one of duckdb_path or postgres_url"):
        write_demo_source(events=10, duckdb_path=tmp_path / "a.duckdb", postgres_url="postgresql://h/db")
    with pytest.raises(ValueError, match="timezone-aware"):
        write_demo_source(events=10, duckdb_path=tmp_path / "a.duckdb", now=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="at least 1"):
        write_demo_source(events=0, duckdb_path=tmp_path / "a.duckdb")
    with pytest.raises(DemoSourceError, match="PostgreSQL URL"):
        write_demo_source(events=10, postgres_url="mysql://root:pw@localhost/db", progress=lambda _: None)
    with pytest.raises(DemoSourceError) as failure:
        write_demo_source(events=10, postgres_url="postgresql://postgres:hunter22@127.0.0.1:1/nowhere",
                          progress=lambda _: None)
    assert "postgresql://postgres@127.0.0.1:1/nowhere" in str(failure.value) and "hunter22" not in str(failure.value)
    assert not (tmp_path / "a.duckdb").exists()
