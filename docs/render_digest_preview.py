"""Render what ops receive, for the docs: `docs/slack-digest-example.json` (the `chat.postMessage`
arguments of a provider automation digest, as the outbox writes them) and `docs/digest-email.png`
(the weekly digest email's HTML part as headless Chromium draws it).

Run from the project root: `uv run python docs/render_digest_preview.py` (needs `chromium` on the
PATH for the PNG; `apt-get install -y chromium`). The sample is fixed, so the output only changes when
the rendering does.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# After the path set-up (E402).
from models.digests.content import AutomationAction, ConversionRow, DigestContent, chart_window, rank_slugs
from models.digests.mail import build_email
from models.digests.periods import parse_period
from models.digests.slack import render_slack_digest

APP_BASE_URL = "https://app.smplat.local"


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


ROWS = [
    ConversionRow("spring-offer", "USD", Decimal("18240.50"), 142, 391, 14210, _ts("2026-11-23T08:41:00Z")),
    ConversionRow("spring-offer", "EUR", Decimal("3120.00"), 26, 70, 2600, _ts("2026-11-22T19:05:00Z")),
    ConversionRow("loyalty-boost", "USD", Decimal("9875.25"), 97, 240, 19400, _ts("2026-11-23T07:12:00Z")),
    ConversionRow("checkout-bundle", "GBP", Decimal("4410.80"), 51, 133, 4410, _ts("2026-11-21T16:30:00Z")),
    ConversionRow("checkout-bundle", "USD", Decimal("1200.00"), 12, 40, 1200, _ts("2026-11-22T11:00:00Z")),
    ConversionRow("winter-trial", "USD", Decimal("0.00"), 0, 58, 0, _ts("2026-11-20T09:45:00Z")),
]
ASSIGNMENTS = {
    "spring-offer": [31, 35, 28, 40, 44, 39, 52, 61, 58, 47],
    "loyalty-boost": [12, 18, 22, 19, 25, 30, 28, 26, 33, 41],
    "checkout-bundle": [20, 14, 9, 11, 7, 6, 8, 5, 4, 6],
    "winter-trial": [0, 0, 0, 3, 8, 15, 12, 9, 11, 14],
}
ACTIONS = (
    AutomationAction("f1", "prov_7f3a", "Northwind Fulfilment", "spring-offer", "pause", _ts("2026-11-22T02:14:00Z")),
    AutomationAction("f2", "prov_19bc", "Blue Parcel Co", "checkout-bundle", "pause", _ts("2026-11-22T13:40:00Z")),
    AutomationAction("f3", "prov_7f3a", "Northwind Fulfilment", "spring-offer", "resume", _ts("2026-11-23T05:02:00Z")),
)


def sample(kind: str, period_label: str, now: datetime, since: datetime) -> DigestContent:
    period = parse_period(kind, period_label)  # type: ignore[arg-type]
    days = chart_window(period, now.date())
    return DigestContent(
        period=period,
        generated_at=now,
        app_base_url=APP_BASE_URL,
        actions_since=since,
        actions=ACTIONS,
        slugs=rank_slugs(ROWS, ASSIGNMENTS, len(days)),
        chart_days=days,
    )


def main() -> int:
    docs = ROOT / "docs"
    slack = render_slack_digest(sample("slack", "2026-11-23", _ts("2026-11-23T09:00:00Z"), _ts("2026-11-22T09:00:00Z")))
    (docs / "slack-digest-example.json").write_text(
        json.dumps({"channel": "#concierge-automation", **slack}, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    email = build_email(
        sample("email", "2026-W48", _ts("2026-11-23T09:00:00Z"), _ts("2026-11-16T09:00:00Z")),
        "pricing-ops@smplat.local",
        ["concierge-leads@smplat.local"],
    )
    html = email.get_body(("html",)).get_content()
    print(f"Subject: {email['Subject']}")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if chromium is None:
        print("chromium not found: wrote docs/slack-digest-example.json only", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "digest.html"
        page.write_text(html, encoding="utf-8")
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--force-device-scale-factor=1",
             "--window-size=760,1080", f"--screenshot={docs / 'digest-email.png'}", page.as_uri()],
            check=True, capture_output=True, timeout=120,
        )
    print("wrote docs/slack-digest-example.json and docs/digest-email.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
