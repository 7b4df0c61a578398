"""Credentials stay out of every log line, even with `-v`: a database URL reads without its password
(not `***`, so the line still says which database), and the HTTP credentials client libraries log at
DEBUG (botocore's SigV4 `Authorization` header and signing steps) are blanked. The S3 case is the
real command, `pricing-ops -v export --sink s3`, against moto's server on 127.0.0.1."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

PRICING_OPS = Path(sys.executable).parent / "pricing-ops"
ACCESS_KEY_ID = "AKIAPRICINGOPS7TEST1"
SECRET_KEY = "moto-secret-access-key-3f9a"


@pytest.fixture
def hygiene(make_settings):
    """Install the process's log hygiene for settings made by the test; the previous state after."""
    from orchestration import log_hygiene

    saved = dict(log_hygiene._state)

    def install(**overrides):
        settings = make_settings(**overrides)
        log_hygiene.install_log_hygiene(settings)
        return settings

    yield install
    log_hygiene._state.update({k: v for k, v in saved.items() if k != "base"})


def _formatted(logger: str, msg: str, *args) -> str:
    """What a handler writes for one record made through the process's record factory."""
    record = logging.getLogRecordFactory()(logger, logging.DEBUG, __file__, 1, msg, args, None)
    return logging.Formatter("%(name)s: %(message)s").format(record)


def test_a_database_url_reads_without_its_password_not_as_stars(hygiene):
    from orchestration.log_hygiene import redact

    hygiene(WAREHOUSE_URL="postgresql://app:Wh-pa55word@db.internal:5432/shop?sslmode=require",
            ONBOARDING_EXPORT_DATABASE_URL="postgresql://reader@replica.internal/app",
            DAGSTER_POSTGRES_URL="postgresql:///dagster")
    line = _formatted("pricing_ops", "could not reach %s nor %s; storage %s",
                      "postgresql://app:Wh-pa55word@db.internal:5432/shop?sslmode=require",
                      "postgresql://reader@replica.internal/app", "postgresql:///dagster?host=/var/run/postgresql")
    assert line == ("pricing_ops: could not reach postgresql://app@db.internal:5432/shop?sslmode=require nor "
                    "postgresql://reader@replica.internal/app; storage postgresql:///dagster?host=/var/run/postgresql")
    # The password alone, and a URL a driver rebuilt with it, still never show.
    assert redact("auth failed for Wh-pa55word") == "auth failed for ***"
    assert redact("dsn postgresql://app:Wh-pa55word@10.0.0.5:5432/shop") == "dsn postgresql://app@10.0.0.5:5432/shop"


def test_botocore_request_headers_and_signing_steps_are_blanked(hygiene):
    from botocore.awsrequest import HeadersDict

    hygiene()
    authorization = (f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/20261207/us-east-1/s3/aws4_request, "
                     "SignedHeaders=host;x-amz-date, Signature=" + "6f" * 32)
    headers = HeadersDict({"Authorization": authorization.encode(), "X-Amz-Security-Token": b"FQoGZXIvYXdzE",
                           "X-Amz-Date": b"20261207T200808Z"})
    lines = [
        _formatted("botocore.endpoint", "Sending http request: %s", f"<AWSPreparedRequest headers={dict(headers)}>"),
        _formatted("botocore.parsers", "Response headers: %r", headers),  # a mapping as the one argument
        _formatted("botocore.auth", "Signature:\n%s", "6f" * 32),
        _formatted("urllib3.connectionpool", "GET /x?X-Amz-Credential=%s%%2F2026&X-Amz-Signature=%s HTTP/1.1",
                   ACCESS_KEY_ID, "ab" * 32),
    ]
    text = "\n".join(lines)
    for leak in ("Credential=", "Signature=", ACCESS_KEY_ID, "6f" * 32, "ab" * 32, "FQoGZXIvYXdzE", "AWS4-HMAC"):
        assert leak not in text, (leak, text)
    assert "'Authorization': '***'" in lines[0] and "'X-Amz-Date': b'20261207T200808Z'" in lines[0]
    assert lines[2] == "botocore.auth: Signature:\\n***"


def test_verbose_s3_export_logs_no_signature_anywhere(tmp_path):
    import boto3
    import requests
    from export_helpers import create_segments_duckdb, mart_rows
    from moto.server import ThreadedMotoServer

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "PRICING_OPS_", "AWS_"))}
    env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_DEFAULT_REGION="us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        requests.post(f"{url}/moto-api/reset", timeout=10)
        client = boto3.client("s3", endpoint_url=url, aws_access_key_id=ACCESS_KEY_ID,
                              aws_secret_access_key=SECRET_KEY, region_name="us-east-1")
        client.create_bucket(Bucket="exports")
        data = tmp_path / "data"
        data.mkdir()
        create_segments_duckdb(data / "warehouse.duckdb", mart_rows())
        env.update(DATA_DIR=str(data), ONBOARDING_EXPORT_SINK="s3", ONBOARDING_EXPORT_S3_URI="s3://exports/segments",
                   ONBOARDING_EXPORT_BATCH_SIZE="10", S3_ENDPOINT_URL=url)
        done = subprocess.run([str(PRICING_OPS), "-v", "export"], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=300, check=False)
        exported = client.list_objects_v2(Bucket="exports", Prefix="segments/").get("KeyCount", 0)
    finally:
        server.stop()

    assert done.returncode == 0, done.stderr[-3000:]
    assert exported == 3  # 25 rows in batches of 10: three signed PUTs went out
    # -v really logged botocore's requests and signing (with the header blanked), without logging errors.
    assert "botocore.endpoint: Sending http request" in done.stderr and "'Authorization': '***'" in done.stderr
    assert "botocore.auth: Signature:" in done.stderr and "--- Logging error ---" not in done.stderr
    home = data / "dagster_home"
    compute_logs = [p for p in home.rglob("*") if p.is_file() and "compute_logs" in str(p)]
    assert any("botocore" in p.read_text(errors="replace") for p in compute_logs), compute_logs
    texts = {"stdout": done.stdout, "stderr": done.stderr}
    texts.update({str(p.relative_to(home)): p.read_bytes().decode("utf-8", "replace")
                  for p in home.rglob("*") if p.is_file() and p.suffix != ".db"})
    leaks = [(where, leak) for where, text in texts.items()
             for leak in ("Credential=", "Signature=", ACCESS_KEY_ID, SECRET_KEY, "AWS4-HMAC-SHA256 ")
             if leak in text]
    assert leaks == []
