"""A failed dbt build says why in one line: the failing node (a test with the model and column it
checks) and the database's own message, on which warehouse (a PostgreSQL URL without password), not
dagster-dbt's "The dbt CLI process with command ... failed". That line is the run's failure reason,
so the last line of `pricing-ops refresh` and the run-failure alert say it too.

The dbt asset is the refresh's own, materialized for a few staging models (one dbt invocation each):
on DuckDB with a duplicate telemetry id (a failing `unique` test), and on a PostgreSQL warehouse that
is gone for dbt (a proxy on 127.0.0.1 drops every connection dbt opens, as a stopped or restarting
server does, while the asset's own connections get through)."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from urllib.parse import quote

import dagster as dg
import pytest
from dbt_helpers import load_raw_tables

from assets.dbt import DbtBuildConfig, build_dbt_assets, dbt_cli_resource
from resources.warehouse import Warehouse
from resources.warehouse_writer import writer_lock_of
from sensors.run_failures import failure_reason

TELEMETRY = dg.AssetKey(["staging", "stg_raw__provider_guardrail_telemetry"])
PROVIDERS = dg.AssetKey(["staging", "stg_raw__fulfillment_providers"])
PASSWORD = "Wh-pa55word-91"
RUN_CONFIG = {"ops": {"pricing_dbt_models": {"config": DbtBuildConfig(force=True).model_dump()}}}


def _window(id_: int) -> dict:
    return {"id": id_, "provider_id": "p1", "experiment_slug": "spring-offer", "variant_key": "b",
            "window_start": "2026-03-01T09:00:00Z", "window_end": "2026-03-01T10:00:00Z", "guardrail_checks": 20,
            "guardrail_failures": 0, "replay_total": 10, "replay_failures": 0, "recorded_at": "2026-03-01T10:00:00Z",
            "loaded_at": "2026-03-01T10:00:00Z"}


def _build(warehouse: Warehouse, tmp_path, selection: list[dg.AssetKey]) -> dg.ExecuteInProcessResult:
    dbt_models, project = build_dbt_assets(2, 4, parse_env=warehouse.dbt_env(), data_dir=tmp_path / "data")
    return dg.materialize([dbt_models], selection=selection, raise_on_error=False, run_config=RUN_CONFIG,
                          resources={"dbt": dbt_cli_resource(project), "warehouse": warehouse,
                                     "warehouse_writer": writer_lock_of(warehouse)})


def _failure_description(result: dg.ExecuteInProcessResult) -> str:
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    return failure.step_failure_data.user_failure_data.description


def test_a_failing_data_test_names_the_test_its_model_and_column_and_the_result(tmp_path, dbt_manifest):
    path = tmp_path / "wh.duckdb"
    warehouse = Warehouse(url=f"duckdb:///{path}")
    # The DuckDB raw telemetry table has no primary key (see create_table_sql): window 7 twice.
    load_raw_tables(warehouse, {"provider_guardrail_telemetry": [_window(7), _window(7), _window(8)]})
    result = _build(warehouse, tmp_path, [TELEMETRY])

    assert not result.success
    reason = (f"dbt test unique_stg_raw__provider_guardrail_telemetry_telemetry_id (model "
              f"stg_raw__provider_guardrail_telemetry, column telemetry_id) failed on duckdb file {path}: Got 1 "
              "result, configured to fail if != 0")
    assert _failure_description(result) == reason
    assert failure_reason(result.all_events) == reason  # what `pricing-ops refresh` prints after "failed (run ...): "
    # What did build is reported, and every test's result with it, the failing one included.
    assert {e.asset_key for e in result.get_asset_materialization_events()} == {TELEMETRY}
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"unique_stg_raw__provider_guardrail_telemetry_telemetry_id": False,
                      "not_null_stg_raw__provider_guardrail_telemetry_telemetry_id": True,
                      "not_null_stg_raw__provider_guardrail_telemetry_provider_id": True}


class DbtDroppingProxy:
    """A TCP proxy to the PostgreSQL on 127.0.0.1:5432 that closes every connection whose startup
    packet says `application_name=dbt` (dbt-postgres's default), so dbt finds the server gone the
    way a stopped or restarting server looks, while other clients get through."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.dropped = 0
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", 5432))
        self._sockets += [client, upstream]
        with suppress(OSError):
            while True:  # negotiation requests (SSL, GSS) first, then the startup packet
                header = _recv_exact(client, 8)
                length, code = struct.unpack("!ii", header)
                body = _recv_exact(client, length - 8)
                if code in (80877103, 80877104):
                    upstream.sendall(header + body)
                    client.sendall(_recv_exact(upstream, 1))
                    continue
                if b"application_name\x00dbt\x00" in body:
                    self.dropped += 1
                    client.close()
                    upstream.close()
                    return
                upstream.sendall(header + body)
                break
            threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()
            _pipe(client, upstream)

    def close(self) -> None:
        self.server.close()
        for sock in self._sockets:
            with suppress(OSError):
                sock.close()


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise OSError("closed")
        data += chunk
    return data


def _pipe(source: socket.socket, target: socket.socket) -> None:
    with suppress(OSError):
        while chunk := source.recv(65536):
            target.sendall(chunk)
    with suppress(OSError):
        target.shutdown(socket.SHUT_WR)


@contextmanager
def dbt_dropping_proxy() -> Iterator[DbtDroppingProxy]:
    proxy = DbtDroppingProxy()
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.mark.postgres
def test_a_postgres_warehouse_gone_for_dbt_is_named_without_its_password(pg_url, tmp_path, dbt_manifest):
    dbname = pg_url.rsplit("/", 1)[1]
    with dbt_dropping_proxy() as proxy:
        url = f"postgresql://postgres:{quote(PASSWORD, safe='')}@127.0.0.1:{proxy.port}/{dbname}?sslmode=disable"
        warehouse = Warehouse(url=url)
        load_raw_tables(warehouse, {"fulfillment_providers": [
            {"id": "p1", "name": "Alpha", "platform": "web", "created_at": "2026-01-01T00:00:00Z"}]})
        result = _build(warehouse, tmp_path, [PROVIDERS])
        assert proxy.dropped >= 1  # dbt tried, and found no server

    assert not result.success
    reason = _failure_description(result)
    where = f"postgresql://postgres@127.0.0.1:{proxy.port}/{dbname}"
    assert reason.startswith(f"dbt build on {where} failed: Database Error: connection to server at "
                             f'"127.0.0.1", port {proxy.port} failed: server closed the connection unexpectedly'), reason
    assert "\n" not in reason and PASSWORD not in reason and quote(PASSWORD, safe="") not in reason
    assert failure_reason(result.all_events) == reason
