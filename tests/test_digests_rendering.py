"""The digests' pure rules: periods, ranking, sparkline, the exact Slack text, Block Kit limits, the
email's escaping and subject."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from digests_helpers import section_texts, ts

from models.digests.content import AutomationAction, ConversionRow, DigestContent, chart_window, rank_slugs
from models.digests.mail import build_email, render_email_html, render_email_text
from models.digests.periods import parse_period, period_containing, previous_period
from models.digests.slack import pack_sections, render_slack_digest
from models.digests.text import sparkline

# Slack's Block Kit limits (contract section 6), spelled here rather than imported from the code
# under test: at most 50 blocks a message, 3000 characters a section.
MAX_BLOCKS = 50
MAX_SECTION_CHARS = 3000
APP = "https://app.smplat.local"


def test_periods_parse_and_contain_in_utc():
    day = parse_period("slack", "2026-11-26")
    assert (day.start, day.end) == (ts("2026-11-26T00:00:00Z"), ts("2026-11-27T00:00:00Z"))
    week = parse_period("email", "2026-W48")
    assert (week.first_day, week.last_day) == (date(2026, 11, 23), date(2026, 11, 29))
    # 2026 starts on a Thursday, so it has an ISO week 53 reaching into 2027; 2025 has none.
    assert parse_period("email", "2026-W53").last_day == date(2027, 1, 3)
    assert period_containing("email", ts("2027-01-03T23:59:59Z")).label == "2026-W53"
    assert period_containing("email", ts("2027-01-04T00:00:00Z")).label == "2027-W01"
    assert previous_period(parse_period("email", "2027-W01")).label == "2026-W53"
    # 01:00 in Kolkata is still the previous day in UTC.
    assert period_containing("slack", datetime(2026, 11, 26, 1, 0, tzinfo=ZoneInfo("Asia/Kolkata"))).label == "2026-11-25"

    for bad in ("2025-W53", "2026-W00", "2026-48", "2026-11-26"):
        with pytest.raises(ValueError, match="YYYY-Www, e.g. 2026-W48"):
            parse_period("email", bad)
    for bad in ("2026-11-31", "26-11-2026", "2026-W48", "2026-11-26T00:00"):
        with pytest.raises(ValueError, match="YYYY-MM-DD, e.g. 2026-11-26"):
            parse_period("slack", bad)


def test_chart_window_ends_at_the_period_or_today():
    week = parse_period("email", "2026-W48")
    assert chart_window(week, date(2026, 11, 24)) == tuple(date(2026, 11, d) for d in range(15, 25))
    assert chart_window(week, date(2026, 12, 10))[-1] == date(2026, 11, 29)


def test_sparkline_scales_to_the_largest_value():
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert sparkline([0, 0, 0]) == "▁▁▁"
    assert sparkline([3, 6]) == "▅█"


def test_ranking_never_adds_orders_across_currencies():
    rows = [
        # 5 + 5 orders would be 10 if currencies were added; the rule takes the best single currency.
        ConversionRow("split", "USD", Decimal("50.00"), 5, 5, 0, ts("2026-11-20T00:00:00Z")),
        ConversionRow("split", "EUR", Decimal("40.00"), 5, 6, 0, ts("2026-11-21T00:00:00Z")),
        ConversionRow("single", "USD", Decimal("80.00"), 8, 8, 0, ts("2026-11-01T00:00:00Z")),
        ConversionRow("tie-recent", "GBP", Decimal("10.00"), 5, 5, 0, ts("2026-11-25T00:00:00Z")),
        ConversionRow("never", "USD", Decimal("0.00"), 0, 2, 0, None),
        ConversionRow("tie-old", "USD", Decimal("10.00"), 5, 5, 0, ts("2026-10-01T00:00:00Z")),
    ]
    ranked = rank_slugs(rows, {"single": [1, 2]}, chart_days=2)
    assert [s.slug for s in ranked] == ["single", "tie-recent", "split", "tie-old", "never"]
    split = ranked[2]
    assert [r.currency for r in split.rows] == ["EUR", "USD"]  # same orders: more journeys first
    assert ranked[0].daily_assignments == (1, 2)
    assert ranked[1].daily_assignments == (0, 0)


def _small_content(**overrides) -> DigestContent:
    period = parse_period("slack", "2026-11-26")
    rows = [
        ConversionRow("spring-offer", "USD", Decimal("1234.50"), 12, 40, 1200, ts("2026-11-25T14:03:00Z")),
        ConversionRow("spring-offer", "EUR", Decimal("20.00"), 1, 1, 2, ts("2026-11-15T12:00:00Z")),
        ConversionRow("winter <b>", "USD", Decimal("0.00"), 0, 3, 0, None),
    ]
    actions = (
        AutomationAction("f1", "p1", "Alpha & Co", "spring-offer", "pause", ts("2026-11-25T10:00:00Z")),
        AutomationAction("f2", "p/2", "<Beta>", "winter", "pause", ts("2026-11-25T11:00:00Z")),
        AutomationAction("f3", "p1", "Alpha & Co", "spring-offer", "resume", ts("2026-11-26T08:30:00Z")),
    )
    values = {
        "period": period,
        "generated_at": ts("2026-11-26T09:00:00Z"),
        "app_base_url": APP,
        "actions_since": ts("2026-11-25T09:00:00Z"),
        "actions": actions,
        "slugs": rank_slugs(rows, {"spring-offer": [0, 1, 2, 3, 4, 5, 6, 7, 3, 2]}, chart_days=10),
        "chart_days": chart_window(period, date(2026, 11, 26)),
    }
    values.update(overrides)
    return DigestContent(**values)


def test_slack_digest_text_is_exact():
    payload = render_slack_digest(_small_content())
    assert payload["text"] == "Provider automation digest 2026-11-26: 2 slugs, 3 automatic actions"
    assert [b["type"] for b in payload["blocks"]] == [
        "header", "context", "section", "divider", "section", "divider", "section"
    ]
    assert payload["blocks"][0]["text"] == {"type": "plain_text", "text": "Provider automation digest · 2026-11-26"}
    money, robot, link = section_texts(payload["blocks"])
    assert money == (
        ":moneybag: *Top conversion slugs* (2 of 2 slugs)\n"
        "*`spring-offer`*  `▁▂▃▄▅▆▇█▄▃` 10-day assignments, last 3: 7, 3, 2\n"
        "    • USD 1,234.50 · 12 orders / 40 journeys · 1,200 loyalty pts · last activity 2026-11-25T14:03:00Z\n"
        "    • EUR 20.00 · 1 order / 1 journey · 2 loyalty pts · last activity 2026-11-15T12:00:00Z\n"
        "*`winter &lt;b&gt;`*  `▁▁▁▁▁▁▁▁▁▁` 10-day assignments, last 3: 0, 0, 0\n"
        "    • USD 0.00 · 0 orders / 3 journeys · 0 loyalty pts · last activity -"
    )
    assert robot == (
        ":robot_face: *Automatic pauses and resumes* since the previous digest (2026-11-25T09:00:00Z): "
        "2 providers, 2 paused, 1 resumed\n"
        "• *Alpha &amp; Co* — paused `spring-offer` at 2026-11-25T10:00:00Z; resumed `spring-offer` at "
        "2026-11-26T08:30:00Z · <https://app.smplat.local/admin/fulfillment/providers/p1?tab=automation|Open dashboard>\n"
        "• *&lt;Beta&gt;* — paused `winter` at 2026-11-25T11:00:00Z · "
        "<https://app.smplat.local/admin/fulfillment/providers/p%2F2?tab=automation|Open dashboard>"
    )
    assert link == "• Live conversion snapshot: <https://app.smplat.local/admin/reports#experiment-analytics|Open conversions>"


def test_historical_snapshot_is_labelled_with_its_cursor():
    payload = render_slack_digest(_small_content(conversion_cursor="2026-11-20", snapshot_date=date(2026, 11, 20)))
    texts = section_texts(payload["blocks"])
    assert texts[0].startswith(":moneybag: *Top conversion slugs* (2 of 2 slugs) · snapshot of 2026-11-20\n")
    assert texts[-1] == (
        "• Historical conversion slice: "
        "<https://app.smplat.local/admin/reports?conversionCursor=2026-11-20#experiment-analytics|Open conversions>"
    )


def test_suppressed_and_empty_digests_say_so():
    payload = render_slack_digest(_small_content(conversions_suppressed=True, slugs=(), actions=(), actions_since=None))
    money, robot, _ = section_texts(payload["blocks"])
    assert money == (
        ":moneybag: *Top conversion slugs*\n_Conversion rows are suppressed: WEEKLY_DIGEST_ENABLED=false. "
        "They return in the next digest once the flag is restored._"
    )
    assert robot == ":robot_face: *Automatic pauses and resumes*\n_None since automation began (first digest)._"
    assert payload["text"] == "Provider automation digest 2026-11-26: conversion rows suppressed, 0 automatic actions"


def test_pack_sections_cuts_with_an_exact_more_line():
    lines = [f"line {i:04d} " + "x" * 90 for i in range(400)]  # 100 characters each
    sections = pack_sections(lines, max_sections=3, more_noun="things", heading="HEAD")
    assert len(sections) == 3
    assert all(len(s) <= MAX_SECTION_CHARS for s in sections)
    shown = sum(1 for s in sections for line in s.split("\n") if line.startswith("line "))
    assert sections[-1].endswith(f"\n_+{400 - shown} more things_")
    # Nothing is lost between sections: the shown lines are the first ones, in order.
    assert [line for s in sections for line in s.split("\n") if line.startswith("line ")] == lines[:shown]
    assert pack_sections(lines[:3], 3, "things") == ["\n".join(lines[:3])]


def test_slack_limits_hold_for_long_slugs_and_names():
    period = parse_period("slack", "2026-11-26")
    rows = [
        ConversionRow(f"{'s' * 500}-{i}", cur, Decimal("9999999999.99"), 10**6, 10**7, 10**9, ts("2026-11-25T00:00:00Z"))
        for i in range(40)
        for cur in ("USD", "EUR", "GBP", "JPY")
    ]
    actions = tuple(
        AutomationAction(str(i), f"p{i}", "<&>" * 300, "<" * 300, "pause", ts("2026-11-25T00:00:00Z")) for i in range(300)
    )
    content = DigestContent(period, ts("2026-11-26T09:00:00Z"), APP, None, actions, rank_slugs(rows), ())
    blocks = render_slack_digest(content)["blocks"]
    assert len(blocks) <= MAX_BLOCKS
    assert all(len(t) <= MAX_SECTION_CHARS for t in section_texts(blocks))
    texts = section_texts(blocks)
    # Ten slugs fill three sections; the thirty beyond the top ten are counted, not dropped silently.
    assert texts[2].endswith("\n_+30 more slugs_")
    lines = [line for t in texts for line in t.split("\n")]
    assert sum(line.startswith("*`s") for line in lines) == 10
    providers_shown = sum(line.startswith("• *") for line in lines)
    assert texts[-2].endswith(f"\n_+{300 - providers_shown} more providers_")
    assert 0 < providers_shown < 300


def test_email_parts_escape_everything_and_the_subject_stays_one_line():
    period = parse_period("email", "2026-W48")
    rows = [ConversionRow("<script>alert(1)</script>", "USD", Decimal("10.00"), 1, 2, 3, ts("2026-11-25T00:00:00Z")),
            ConversionRow("x\r\nBcc: victim@example.com", "USD", Decimal("99.00"), 9, 9, 9, ts("2026-11-25T00:00:00Z"))]
    content = DigestContent(
        period, ts("2026-11-24T09:00:00Z"), APP, None, (), rank_slugs(rows, chart_days=10),
        chart_window(period, date(2026, 11, 24)),
    )
    message = build_email(content, "pricing-ops@smplat.local", ["leads@smplat.local"])
    assert message["Subject"] == "Weekly pricing digest 2026-W48 · top slug x Bcc: victim@example.com · 0 automatic actions"
    assert message["Bcc"] is None
    assert message["Message-ID"] == "<weekly-digest.2026-W48@smplat.local>"
    html = render_email_html(content)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count('data-chart="daily-assignments"') == 2
    text = render_email_text(content)
    assert "<script>alert(1)</script>\n  USD 10.00 · 1 order / 2 journeys · 3 loyalty pts" in text


def test_a_large_email_stays_under_gmails_clipping_size():
    period = parse_period("email", "2026-W48")
    now = ts("2026-11-24T09:00:00Z")
    rows = [ConversionRow(f"slug-{i}", c, Decimal("12.34") * i, i, i, i, now) for i in range(200) for c in ("USD", "EUR")]
    actions = tuple(
        AutomationAction(str(k), f"p{k % 250}", f"Provider {k % 250}", "s", "pause", now - timedelta(minutes=k))
        for k in range(500)
    )
    days = chart_window(period, now.date())
    content = DigestContent(
        period, now, APP, None, actions, rank_slugs(rows, {f"slug-{i}": list(range(10)) for i in range(200)}, 10), days
    )
    html = render_email_html(content)
    assert len(html.encode()) < 102_000  # Gmail clips an HTML body past ~102 KB
    assert html.count('data-chart="daily-assignments"') == 10
    assert "<p>+190 more slugs</p>" in html and "<p>+150 more providers</p>" in html
    text = render_email_text(content)
    assert "\n+190 more slugs\n" in text and "\n+150 more providers\n" in text
