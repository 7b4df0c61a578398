"""Slack (slack-sdk against a local server, webhook, outbox) and the app API, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from guardrails_support import RecordingServer, Reply, unused_port_url

from resources.app_api import FOLLOWUPS_PATH, AppApi, AppApiError
from resources.slack import SlackDeliveryError, SlackNotifier

TOKEN = "xoxb-test-secret-token"
KEY = "checkout-secret-key"


def test_web_api_posts_to_the_channel_through_base_url():
    with RecordingServer() as server:
        slack = SlackNotifier(bot_token=TOKEN, channel="#guardrails", api_base_url=server.url + "/api")
        ts = slack.post_message("hello *there*")
        [request] = server.to("/api/chat.postMessage")
    assert ts == "1764180000.000001"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.json() == {"channel": "#guardrails", "text": "hello *there*"}
    assert slack.mode == "web_api"


def test_web_api_honours_429_retry_after_then_succeeds():
    with RecordingServer() as server:
        server.script(
            "/api/chat.postMessage", Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"})
        )
        slack = SlackNotifier(bot_token=TOKEN, api_base_url=server.url + "/api/")
        ts = slack.post_message("after the limit")
        first, second = server.to("/api/chat.postMessage")
    assert ts == "1764180000.000001"
    assert second.at - first.at >= 0.95  # waited as told
    assert first.json() == second.json() == {"channel": "#concierge-automation", "text": "after the limit"}


def test_web_api_error_says_what_and_never_shows_the_token():
    with RecordingServer() as server:
        server.script("/api/chat.postMessage", Reply(200, {"ok": False, "error": "channel_not_found"}))
        slack = SlackNotifier(bot_token=TOKEN, channel="#nope", api_base_url=server.url + "/api")
        with pytest.raises(SlackDeliveryError) as info:
            slack.post_message("x")
    message = str(info.value)
    assert "chat.postMessage to #nope failed: HTTP 200 channel_not_found" in message
    assert TOKEN not in message and TOKEN not in repr(info.value)


def test_web_api_unreachable_is_a_delivery_error():
    slack = SlackNotifier(bot_token=TOKEN, api_base_url=unused_port_url() + "/api", max_retries=1)
    with pytest.raises(SlackDeliveryError, match="unreachable"):
        slack.post_message("x")


def test_incoming_webhook_posts_text_and_blocks():
    with RecordingServer() as server:
        hook = server.url + "/hooks/T000/B000/secretpart"
        slack = SlackNotifier(webhook_url=hook)
        blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]
        assert slack.post_message("hi", blocks) == "webhook"
        server.script("/hooks/T000/B000/secretpart", Reply(404, b"no_service"))
        with pytest.raises(SlackDeliveryError) as info:
            slack.post_message("gone")
        first = server.requests[0]
    assert first.json() == {"text": "hi", "blocks": blocks}
    assert "HTTP 404" in str(info.value) and "secretpart" not in str(info.value)


def test_outbox_when_no_slack_is_configured(tmp_path: Path):
    slack = SlackNotifier(outbox_dir=str(tmp_path / "outbox"), channel="#c")
    assert slack.mode == "outbox"
    path = Path(slack.post_message("one & <two>"))
    assert path.parent == tmp_path / "outbox" and path.suffix == ".json"
    assert json.loads(path.read_text()) == {"channel": "#c", "text": "one & <two>", "blocks": None}
    assert [p.name for p in (tmp_path / "outbox").iterdir()] == [path.name]  # no temporary file left


# App API --------------------------------------------------------------------------------------------
PAYLOAD = {"id": "f-1", "providerId": "p-1", "action": "pause", "createdAt": "2026-11-26T10:00:00Z"}


def test_app_api_retries_a_500_then_succeeds():
    with RecordingServer() as server:
        server.script(FOLLOWUPS_PATH, Reply(500, {"detail": "boom"}))
        api = AppApi(base_url=server.url + "/", api_key=KEY, backoff_seconds=0.05)
        assert api.post_followup(PAYLOAD) == 200
        first, second = server.to(FOLLOWUPS_PATH)
    assert second.json() == first.json() == PAYLOAD
    assert second.headers["x-api-key"] == KEY
    assert second.headers["idempotency-key"] == "f-1"
    assert second.headers["content-type"] == "application/json"


def test_app_api_honours_429_retry_after():
    with RecordingServer() as server:
        server.script(FOLLOWUPS_PATH, Reply(429, {}, {"Retry-After": "1"}))
        api = AppApi(base_url=server.url, api_key=KEY, backoff_seconds=0.01)
        api.post_followup(PAYLOAD)
        first, second = server.to(FOLLOWUPS_PATH)
    assert second.at - first.at >= 0.95


def test_app_api_down_fails_after_the_attempts_without_the_key():
    api = AppApi(base_url=unused_port_url(), api_key=KEY, backoff_seconds=0.01, max_attempts=3)
    started = time.monotonic()
    with pytest.raises(AppApiError) as info:
        api.post_followup(PAYLOAD)
    assert "unreachable: ConnectionError (after 3 attempts); it is retried on the next run" in str(info.value)
    assert KEY not in str(info.value)
    assert time.monotonic() - started < 5


def test_app_api_client_error_fails_at_once():
    with RecordingServer() as server:
        server.script(FOLLOWUPS_PATH, Reply(403, {"detail": "bad key"}))
        api = AppApi(base_url=server.url, api_key=KEY, backoff_seconds=0.01)
        with pytest.raises(AppApiError, match="HTTP 403.*check CHECKOUT_API_KEY"):
            api.post_followup(PAYLOAD)
        assert len(server.to(FOLLOWUPS_PATH)) == 1


def test_app_api_is_off_without_both_settings():
    assert not AppApi(base_url="http://127.0.0.1:1").enabled
    assert not AppApi(api_key=KEY).enabled
    assert AppApi(base_url="http://127.0.0.1:1", api_key=KEY).enabled
