"""Both digests lead with the decided slugs and warn about each slug in SRM (contract sections 6
and 9): through slack-sdk against the Slack Web API test server, aiosmtpd, and the outbox; Block
Kit limits with hundreds of decided slugs; WEEKLY_DIGEST_ENABLED=false leaves them out."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal as D
from email import message_from_bytes, policy

import pytest
from digests_helpers import (
    SLACK_TOKEN,
    RecordingHandler,
    SlackApiServer,
    conversion,
    create_marts,
    duckdb_warehouse,
    insert,
    section_texts,
    smtp_server,
    ts,
)

from assets.digests import DigestOptions, deliver_digest
from models.digests.slack import MAX_BLOCKS, MAX_SECTION_CHARS
from models.experiment_results import ExperimentSettings, MetricRow, evaluate
from resources.experiment_tables import replace_results
from resources.mail import Mailer
from resources.slack import SlackNotifier

NOW = ts("2026-11-26T09:00:00Z")
AS_OF = date(2026, 11, 26)
WIN = "• :large_green_circle: *`spring-offer`* winning: b +40.0% conversion (+15.1% … +64.9%)"
LOSE = "• :red_circle: *`summer`* losing: b -28.6% conversion (-41.3% … -15.9%)"
SRM = ("• :warning: *`broken-split`* sample ratio mismatch: arms a=10,000 · b=9,000 (p=4e-13); "
       "its results are not to be trusted")


def conv(slug, variant, n, conversions):
    return MetricRow(slug, variant, "conversion", None, n, D(conversions), D(conversions))


def experiments_warehouse(tmp_path, extra_slugs: int = 0):
    rows = [conv("spring-offer", "a", 10000, 500), conv("spring-offer", "b", 10000, 700),
            conv("summer", "a", 10000, 700), conv("summer", "b", 10000, 500),
            conv("broken-split", "a", 10000, 500), conv("broken-split", "b", 9000, 630),
            conv("neutral", "a", 10000, 520), conv("neutral", "b", 10100, 580)]
    for i in range(extra_slugs):
        rows += [conv(f"win-{i:03d}", "a", 10000, 500), conv(f"win-{i:03d}", "b", 10000, 700)]
    controls = {r.slug: ["a"] for r in rows}
    health, results = evaluate(rows, controls, {}, {}, AS_OF, ExperimentSettings())
    warehouse = duckdb_warehouse(tmp_path / "wh.duckdb")
    create_marts(warehouse)
    insert(warehouse, "experiment_conversion_snapshot", [
        conversion("spring-offer", "USD", "150.50", 2, 4, 15, "2026-11-25T03:00:00Z")])
    replace_results(warehouse, health, results)
    return warehouse


@pytest.fixture
def slack_server():
    with SlackApiServer() as server:
        yield server


def test_slack_digest_leads_with_decisions_and_srm_warning(tmp_path, slack_server):
    warehouse = experiments_warehouse(tmp_path)
    slack = SlackNotifier(bot_token=SLACK_TOKEN, channel="#concierge-automation", api_base_url=slack_server.base_url,
                          outbox_dir=str(tmp_path / "outbox"))
    outcome = deliver_digest("slack", "2026-11-26", warehouse=warehouse, options=DigestOptions(), slack=slack, now=NOW)
    assert outcome.status == "sent"
    [posted] = slack_server.posted
    blocks = posted["blocks"]
    assert [b["type"] for b in blocks[:4]] == ["header", "context", "section", "divider"]
    heading = ":test_tube: *Experiment decisions* (2 of 4 slugs decided, 1 in sample ratio mismatch · as of 2026-11-26)"
    assert section_texts(blocks)[0] == f"{heading}\n{WIN}\n{LOSE}\n{SRM}"
    assert section_texts(blocks)[1].startswith(":moneybag: *Top conversion slugs*")


def test_email_leads_with_decisions_and_charts_each_slug(tmp_path):
    warehouse = experiments_warehouse(tmp_path)
    handler = RecordingHandler()
    with smtp_server(handler) as (port, _):
        mailer = Mailer(smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False, retry_wait_seconds=0.05,
                        timeout_seconds=5)
        outcome = deliver_digest("email", "2026-W48", warehouse=warehouse, options=DigestOptions(), mailer=mailer, now=NOW)
    assert outcome.status == "sent"
    [message] = handler.messages
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = message.get_body(("html",)).get_content()
    assert text.index("EXPERIMENT DECISIONS") < text.index("TOP CONVERSION SLUGS")
    assert "  spring-offer winning: b +40.0% conversion (+15.1% … +64.9%)\n" in text
    assert "  summer losing: b -28.6% conversion (-41.3% … -15.9%)\n" in text
    assert "  WARNING broken-split: sample ratio mismatch: arms a=10,000 · b=9,000 (p=4e-13)" in text
    assert html.index("Experiment decisions") < html.index("Top conversion slugs")
    assert html.count('data-chart="lift-intervals"') == 4  # every slug with a computed interval
    assert '<li class="decision-winning"><code>spring-offer</code>' in html
    assert '<li class="srm-warning"' in html


def test_outbox_digests_show_decisions(tmp_path):
    warehouse = experiments_warehouse(tmp_path)
    outbox = tmp_path / "outbox"
    deliver_digest("slack", None, warehouse=warehouse, options=DigestOptions(),
                   slack=SlackNotifier(outbox_dir=str(outbox)), now=NOW)
    deliver_digest("email", None, warehouse=warehouse, options=DigestOptions(),
                   mailer=Mailer(outbox_dir=str(outbox)), now=NOW)
    [slack_file] = outbox.glob("*.json")
    payload = json.loads(slack_file.read_text())
    assert WIN in section_texts(payload["blocks"])[0] and SRM in section_texts(payload["blocks"])[0]
    [eml] = outbox.glob("*.eml")
    message = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert "spring-offer winning: b +40.0% conversion" in message.get_body(("plain",)).get_content()


def test_many_decided_slugs_stay_within_block_kit_limits(tmp_path, slack_server):
    warehouse = experiments_warehouse(tmp_path, extra_slugs=400)
    slack = SlackNotifier(bot_token=SLACK_TOKEN, channel="#c", api_base_url=slack_server.base_url,
                          outbox_dir=str(tmp_path / "outbox"))
    deliver_digest("slack", "2026-11-26", warehouse=warehouse, options=DigestOptions(), slack=slack, now=NOW)
    [posted] = slack_server.posted
    blocks = posted["blocks"]
    texts = section_texts(blocks)
    assert len(blocks) <= MAX_BLOCKS and all(len(t) <= MAX_SECTION_CHARS for t in texts)
    experiments = [t for t in texts if not t.startswith((":moneybag:", ":robot_face:", "• Live"))]
    assert experiments[0].startswith(":test_tube: *Experiment decisions* (402 of 404 slugs decided")
    assert experiments[-1].endswith(" more experiment lines_")
    assert any(t.startswith(":moneybag:") for t in texts)  # the conversion block still follows


def test_switched_off_digests_leave_experiment_rows_out(tmp_path):
    warehouse = experiments_warehouse(tmp_path)
    outbox = tmp_path / "outbox"
    options = DigestOptions(weekly_digest_enabled=False)
    deliver_digest("slack", None, warehouse=warehouse, options=options, slack=SlackNotifier(outbox_dir=str(outbox)), now=NOW)
    deliver_digest("email", None, warehouse=warehouse, options=options, mailer=Mailer(outbox_dir=str(outbox)), now=NOW)
    payload = json.loads(next(outbox.glob("*.json")).read_text())
    assert not any("Experiment decisions" in t or "spring-offer" in t for t in section_texts(payload["blocks"]))
    message = message_from_bytes(next(outbox.glob("*.eml")).read_bytes(), policy=policy.default)
    assert "EXPERIMENT DECISIONS" not in message.get_body(("plain",)).get_content()
    assert "Experiment decisions" not in message.get_body(("html",)).get_content()
