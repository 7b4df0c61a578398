"""The S3 sink and the S3 cursor store, with boto3 against moto's server on 127.0.0.1."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import boto3
import pyarrow.parquet as pq
import pytest
import requests
from export_helpers import (
    LOAD_2,
    LOAD_3,
    create_segments_duckdb,
    expected_order,
    insert_segments_duckdb,
    mart_rows,
    segment,
)
from moto.server import ThreadedMotoServer

from assets.export import ExportFailed, cut_batches, read_export_windows, run_export
from models.export_rows import to_export_row
from orchestration.export import export_resources
from orchestration.resources import build_warehouse
from resources.export_cursor import CursorStoreError
from resources.export_sinks import S3BatchWriter

EXPORTS = "s3://exports/onboarding/segments"
CURSOR = "s3://cursors/pricing-ops/"


@pytest.fixture
def s3(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    requests.post(f"{url}/moto-api/reset", timeout=10)  # moto's state is per process, not per server
    client = boto3.client("s3", endpoint_url=url)
    for bucket in ("exports", "cursors"):
        client.create_bucket(Bucket=bucket)
    yield url, client
    server.stop()


@pytest.fixture
def s3_env(s3, make_settings, tmp_path):
    url, client = s3
    path = tmp_path / "warehouse.duckdb"
    rows = mart_rows()
    create_segments_duckdb(path, rows)
    settings = make_settings(
        WAREHOUSE_URL=f"duckdb:///{path}", ONBOARDING_EXPORT_SINK="s3", ONBOARDING_EXPORT_S3_URI=EXPORTS,
        ONBOARDING_EXPORT_CURSOR_STORE="s3", ONBOARDING_EXPORT_CURSOR_S3_URI=CURSOR, S3_ENDPOINT_URL=url,
        ONBOARDING_EXPORT_BATCH_SIZE=10,
    )
    return settings, client, rows, path


def export(settings, run_id, **kwargs):
    resources = export_resources(settings)
    return run_export(warehouse=build_warehouse(settings), sinks=resources["export_sinks"],
                      cursor_store=resources["export_cursor"], run_id=run_id, **kwargs)


def objects(client, bucket="exports", prefix="onboarding/segments/"):
    listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {o["Key"]: o["ETag"] for o in listed}


def cursor_doc(client) -> dict:
    return json.loads(client.get_object(Bucket="cursors", Key="pricing-ops/onboarding_export_cursor.json")["Body"].read())


def test_one_object_per_batch_keys_sort_by_time_and_no_run_overwrites_another(s3_env):
    settings, client, rows, path = s3_env
    first = export(settings, "run-1")
    keys = sorted(objects(client))
    day = first.started_at.strftime("%Y-%m-%d")
    stamp = first.started_at.strftime("%Y%m%dT%H%M%S%fZ")
    assert keys == [f"onboarding/segments/dt={day}/onboarding_segments_{stamp}_run-1_{n:08d}.ndjson" for n in (1, 2, 3)]
    got = [json.loads(line) for key in keys for line in client.get_object(Bucket="exports", Key=key)["Body"].read().splitlines()]
    assert got == [to_export_row(r) for r in expected_order(rows)]
    head = client.head_object(Bucket="exports", Key=keys[0])
    assert head["ContentType"] == "application/x-ndjson"
    assert len(head["Metadata"]["idempotency-key"]) == 64 and head["Metadata"]["rows"] == "10"

    doc = cursor_doc(client)
    assert {k: doc[k] for k in ("cursor", "lastEventId", "lastSlug", "rowsExported")} == {
        "cursor": LOAD_2.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "lastEventId": 22, "lastSlug": "spring-offer",
        "rowsExported": 25,
    }

    before = objects(client)
    insert_segments_duckdb(path, [segment(40, loaded_at=LOAD_3)])
    assert export(settings, "run-2").rows_exported == 1
    after = objects(client)
    assert {k: after[k] for k in before} == before  # untouched
    [new] = set(after) - set(before)
    assert new > max(before) and "_run-2_00000001.ndjson" in new
    assert cursor_doc(client)["rowsExported"] == 26


def test_a_retried_put_of_an_object_that_landed_counts_as_delivered(s3_env):
    settings, client, _, _ = s3_env
    [batch] = list(cut_batches(read_export_windows(build_warehouse(settings), None, "ndjson", 100, 10), 10))
    sinks = export_resources(settings)["export_sinks"]
    writer = S3BatchWriter(sinks, "ndjson", "run-x", datetime(2026, 11, 26, tzinfo=UTC))
    writer.deliver(batch)
    etag = objects(client)
    writer.deliver(batch)  # If-None-Match: the object stays as it is, the batch counts as delivered
    assert objects(client) == etag and len(writer.keys) == 2


def test_parquet_objects(s3_env):
    settings, client, rows, _ = s3_env
    export(settings, "run-pq", fmt="parquet")
    keys = sorted(objects(client))
    assert all(k.endswith(".parquet") for k in keys) and len(keys) == 3
    body = client.get_object(Bucket="exports", Key=keys[0])
    assert body["ContentType"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(body["Body"].read()))
    assert [r["eventId"] for r in table.to_pylist()] == [r["event_id"] for r in expected_order(rows)[:10]]


def test_s3_cursor_bare_replay_unreadable_and_unreachable(s3_env):
    settings, client, _, _ = s3_env
    export(settings, "run-1")
    client.put_object(Bucket="cursors", Key="pricing-ops/onboarding_export_cursor.json", Body=b"2026-11-26T09:15:00Z")
    assert export(settings, "run-replay").rows_exported == 11

    client.put_object(Bucket="cursors", Key="pricing-ops/onboarding_export_cursor.json", Body=b"{oops")
    with pytest.raises(ExportFailed) as info:
        export(settings, "run-bad")
    assert info.value.record.error.startswith(
        "export cursor s3://cursors/pricing-ops/onboarding_export_cursor.json is not valid JSON")

    elsewhere = settings.model_copy(update={"ONBOARDING_EXPORT_CURSOR_S3_URI": "s3://no-such-bucket/cursor.json"})
    store = export_resources(elsewhere)["export_cursor"]
    with pytest.raises(CursorStoreError, match=r"s3://no-such-bucket/cursor.json cannot be read: NoSuchBucket"):
        store.read()
