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
# Slack mrkdwn escapes > and < (`&gt;99.9%` shows as >99.9%).
WIN = ("• :large_green_circle: *`spring-offer`* winning: b +40.0% conversion (+15.1% … +64.9%) · "
       "chance to win &gt;99.9%")
LOSE = "• :red_circle: *`summer`* losing: b -28.6% conversion (-41.3% … -15.9%) · chance to win &lt;0.1%"
SRM = ("• :warning: *`broken-split`* sample ratio mismatch: arms a=10,000 · b=9,000 (p=4e-13); "
       "its results are not to be trusted")
# Inconclusive, at the default target MDE of 5%: neutral's 70,000 journeys over the 7 days before
# the as-of date are 10,000 a day, so the 245,278 more journeys its conversion comparison needs take
# 25 days; its revenue: Bayesian risk of shipping b 0.0084123 x control revenue per journey 5.20 x
# 1000 = USD 43.74 per 1,000 journeys (worked with scipy.stats outside this code). One line per
# challenger, led by conversion (its order value row stays in the table). far (7,000 journeys a
# week) needs 246 days and slow has no traffic: neither can decide.
NEUTRAL = ("• :white_circle: *`neutral`* inconclusive: b +10.4% conversion (-9.8% … +30.7%) · chance to win 94.6% · "
           "needs ~25 more days · risk if shipped USD 43.74 per 1,000 journeys")
FAR = ("• :white_circle: *`far`* inconclusive: b +10.4% conversion (-9.8% … +30.7%) · chance to win 94.6% · "
       "cannot decide at this traffic")
SLOW = FAR.replace("`far`", "`slow`")


def conv(slug, variant, n, conversions):
    return MetricRow(slug, variant, "conversion", None, n, D(conversions), D(conversions), conversions)


def rev(slug, variant, n, booked, total, squares):
    return MetricRow(slug, variant, "revenue", "USD", n, D(total), D(squares), booked)


def experiments_warehouse(tmp_path, extra_slugs: int = 0, extra_inconclusive: int = 0):
    rows = [conv("spring-offer", "a", 10000, 500), conv("spring-offer", "b", 10000, 700),
            conv("summer", "a", 10000, 700), conv("summer", "b", 10000, 500),
            conv("broken-split", "a", 10000, 500), conv("broken-split", "b", 9000, 630),
            conv("neutral", "a", 10000, 520), conv("neutral", "b", 10100, 580),
            # Orders of 100 on average in a (sum of squares 520 x 11,000), 95 in b (580 x 10,000).
            rev("neutral", "a", 10000, 520, "52000.00", "5720000.00"),
            rev("neutral", "b", 10100, 580, "55100.00", "5800000.00"),
            conv("far", "a", 10000, 520), conv("far", "b", 10100, 580),
            conv("slow", "a", 10000, 520), conv("slow", "b", 10100, 580)]
    for i in range(extra_slugs):
        rows += [conv(f"win-{i:03d}", "a", 10000, 500), conv(f"win-{i:03d}", "b", 10000, 700)]
    for i in range(extra_inconclusive):
        rows += [conv(f"maybe-{i:03d}", "a", 10000, 520), conv(f"maybe-{i:03d}", "b", 10100, 580)]
    controls = {r.slug: ["a"] for r in rows}
    health, results = evaluate(rows, controls, {}, {}, AS_OF, ExperimentSettings(),
                               window_journeys={"neutral": 70000, "far": 7000})
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
    heading = (":test_tube: *Experiment decisions* (2 of 6 slugs decided, 3 inconclusive, 1 in sample ratio "
               "mismatch · as of 2026-11-26)")
    # Decided first, then the SRM warning, then the inconclusive slugs (section 9).
    assert section_texts(blocks)[0] == f"{heading}\n{WIN}\n{LOSE}\n{SRM}\n{FAR}\n{NEUTRAL}\n{SLOW}"
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
    assert "  spring-offer winning: b +40.0% conversion (+15.1% … +64.9%) · chance to win >99.9%\n" in text
    assert "  summer losing: b -28.6% conversion (-41.3% … -15.9%) · chance to win <0.1%\n" in text
    assert "  WARNING broken-split: sample ratio mismatch: arms a=10,000 · b=9,000 (p=4e-13)" in text
    assert ("  neutral inconclusive: b +10.4% conversion (-9.8% … +30.7%) · chance to win 94.6% · "
            "needs ~25 more days · risk if shipped USD 43.74 per 1,000 journeys\n") in text
    assert "  slow inconclusive: b +10.4% conversion (-9.8% … +30.7%) · chance to win 94.6% · cannot decide at this traffic\n" in text
    assert text.index("WARNING broken-split") < text.index("neutral inconclusive")
    assert html.index("Experiment decisions") < html.index("Top conversion slugs")
    assert html.count('data-chart="lift-intervals"') == 6  # every slug with a computed interval
    assert '<li class="decision-winning"><code>spring-offer</code>' in html
    assert ('<li class="decision-inconclusive"><code>neutral</code> <strong style="color:#9ca3af;">inconclusive</strong>: '
            "b +10.4% conversion (-9.8% … +30.7%) · chance to win 94.6% · needs ~25 more days · "
            "risk if shipped USD 43.74 per 1,000 journeys</li>") in html
    assert "chance to win &gt;99.9%" in html
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
    assert experiments[0].startswith(":test_tube: *Experiment decisions* (402 of 406 slugs decided")
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


def test_many_inconclusive_slugs_stay_within_limits_after_the_srm_warning(tmp_path, slack_server):
    warehouse = experiments_warehouse(tmp_path, extra_inconclusive=400)
    slack = SlackNotifier(bot_token=SLACK_TOKEN, channel="#c", api_base_url=slack_server.base_url,
                          outbox_dir=str(tmp_path / "outbox"))
    deliver_digest("slack", "2026-11-26", warehouse=warehouse, options=DigestOptions(), slack=slack, now=NOW)
    [posted] = slack_server.posted
    blocks = posted["blocks"]
    texts = section_texts(blocks)
    assert len(blocks) <= MAX_BLOCKS and all(len(t) <= MAX_SECTION_CHARS for t in texts)
    experiments = [t for t in texts if not t.startswith((":moneybag:", ":robot_face:", "• Live"))]
    # The decided and the SRM warning lead; the 403 inconclusive slugs' lines are cut with a count.
    assert experiments[0].startswith(":test_tube: *Experiment decisions* (2 of 406 slugs decided, 403 inconclusive")
    assert experiments[0].split("\n")[1:4] == [WIN, LOSE, SRM]
    assert experiments[-1].endswith(" more experiment lines_")
    # The email lists at most 100 experiment lines, then how many more.
    outbox = tmp_path / "mail"
    deliver_digest("email", None, warehouse=warehouse, options=DigestOptions(), mailer=Mailer(outbox_dir=str(outbox)),
                   now=NOW)
    message = message_from_bytes(next(outbox.glob("*.eml")).read_bytes(), policy=policy.default)
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    block = text[text.index("EXPERIMENT DECISIONS"):text.index("TOP CONVERSION SLUGS")].strip().split("\n")
    assert len(block) == 2 + 100 + 1 and block[-1] == "  +306 more experiment lines"  # 406 lines in all
    assert '<li class="more">+306 more experiment lines</li>' in message.get_body(("html",)).get_content()


def test_one_line_per_inconclusive_challenger_led_by_conversion_with_each_currencys_risk():
    from models.experiment_digest import ChallengerResult, SlugExperiment, email_text_lines, slack_lines

    def row(variant, metric, currency, decision, chance, risk=None, control_mean=None, days=None):
        return ChallengerResult(variant, metric, currency, 1000, 0.1, -0.05, 0.25, decision, chance, risk,
                                control_mean, days)

    e = SlugExperiment("s", "ok", "a", 1000, 0.5, AS_OF, (
        row("b", "average_order_value", "USD", "inconclusive", 0.3),
        row("b", "conversion", None, "winning", 0.999),
        row("b", "revenue", "USD", "inconclusive", 0.8, risk=0.01, control_mean=5.0, days=10),
        row("c", "average_order_value", "USD", "inconclusive", 0.4),
        row("c", "conversion", None, "inconclusive", 0.6, days=30),
        row("c", "loyalty_points", None, "inconclusive", 0.55),
        row("c", "revenue", "EUR", "inconclusive", 0.5, risk=0.02, control_mean=4.0, days=200),
        row("c", "revenue", "USD", "inconclusive", 0.7, risk=0.03, control_mean=5.0, days=None),
    ))
    # The decided comparison; b's inconclusive revenue (b has no inconclusive conversion; revenue
    # leads before order value) with its risk 0.01 x 5.00 x 1000; c led by conversion with the risks of both currencies:
    # 0.02 x 4.00 x 1000 = EUR 80.00 and 0.03 x 5.00 x 1000 = USD 150.00.
    assert slack_lines([e]) == [
        "• :large_green_circle: *`s`* winning: b +10.0% conversion (-5.0% … +25.0%) · chance to win 99.9%",
        ("• :white_circle: *`s`* inconclusive: b +10.0% revenue USD (-5.0% … +25.0%) · chance to win 80.0% · "
         "needs ~10 more days · risk if shipped USD 50.00 per 1,000 journeys"),
        ("• :white_circle: *`s`* inconclusive: c +10.0% conversion (-5.0% … +25.0%) · chance to win 60.0% · "
         "needs ~30 more days · risk if shipped EUR 80.00 / USD 150.00 per 1,000 journeys"),
    ]
    assert email_text_lines([e])[2:] == [
        "  s winning: b +10.0% conversion (-5.0% … +25.0%) · chance to win 99.9%",
        ("  s inconclusive: b +10.0% revenue USD (-5.0% … +25.0%) · chance to win 80.0% · needs ~10 more days · "
         "risk if shipped USD 50.00 per 1,000 journeys"),
        ("  s inconclusive: c +10.0% conversion (-5.0% … +25.0%) · chance to win 60.0% · needs ~30 more days · "
         "risk if shipped EUR 80.00 / USD 150.00 per 1,000 journeys"),
    ]
    # 91 days is past what a test can wait for: it cannot decide at this traffic; 90 still can.
    for days, phrase in ((90, "needs ~90 more days"), (91, "cannot decide at this traffic")):
        late = SlugExperiment("t", "ok", "a", 1000, 0.5, AS_OF, (row("b", "conversion", None, "inconclusive", 0.5, days=days),))
        assert slack_lines([late])[0].endswith(f"chance to win 50.0% · {phrase}")
