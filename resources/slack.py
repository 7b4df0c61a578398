"""Slack, behind one interface: the Web API (bot token), an incoming webhook, or the outbox folder.

`SlackNotifier.post_message(text, blocks)` picks, in this order: slack-sdk's `WebClient` with
`SLACK_BOT_TOKEN` posting to `SLACK_CHANNEL` (at `SLACK_API_BASE_URL` when set: a proxy or a test
server); slack-sdk's `WebhookClient` on `SLACK_WEBHOOK_URL`; else one JSON file per message holding
the `chat.postMessage` arguments in `OUTBOX_DIR`, so the embedded default shows messages without
an account. Rate limits (429 + `Retry-After`), 5xx and connection resets are retried by slack-sdk's
retry handlers. Errors never carry the token or the webhook URL.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field


class SlackDeliveryError(Exception):
    """A message Slack did not accept; the text says where it went and why, never a secret."""


class SlackNotifier(ConfigurableResource):
    """Posts guardrail alerts, the automation digest and run-failure alerts to Slack: through the Web
    API (SLACK_BOT_TOKEN, channel SLACK_CHANNEL), an incoming webhook (SLACK_WEBHOOK_URL), or as
    JSON files in the outbox folder when neither is set."""

    bot_token: str | None = Field(default=None, description="SLACK_BOT_TOKEN (secret)")
    channel: str = Field(default="#concierge-automation", description="SLACK_CHANNEL")
    api_base_url: str | None = Field(default=None, description="SLACK_API_BASE_URL: another Web API base URL")
    webhook_url: str | None = Field(default=None, description="SLACK_WEBHOOK_URL (secret)")
    outbox_dir: str = Field(default=".data/outbox", description="OUTBOX_DIR: used when neither is set")
    timeout_seconds: int = Field(default=15, description="per HTTP request")
    max_retries: int = Field(default=3, description="retries on 429, 5xx and connection errors")

    @property
    def mode(self) -> str:
        """`web_api`, `webhook` or `outbox`."""
        if self.bot_token:
            return "web_api"
        if self.webhook_url:
            return "webhook"
        return "outbox"

    def describe(self) -> str:
        """Where messages go, without secrets."""
        if self.mode == "web_api":
            return f"Slack Web API ({self.api_base_url or 'slack.com'}) channel {self.channel}"
        if self.mode == "webhook":
            return "Slack incoming webhook"
        return f"outbox folder {Path(self.outbox_dir).resolve()}"

    def _retry_handlers(self) -> list:
        # slack-sdk is imported when a message goes out, not when the definitions load (~0.5 s).
        from slack_sdk.http_retry.builtin_handlers import (
            ConnectionErrorRetryHandler,
            RateLimitErrorRetryHandler,
            ServerErrorRetryHandler,
        )

        return [
            ConnectionErrorRetryHandler(max_retry_count=self.max_retries),
            RateLimitErrorRetryHandler(max_retry_count=self.max_retries),
            ServerErrorRetryHandler(max_retry_count=self.max_retries),
        ]

    def post_message(self, text: str, blocks: list[dict[str, Any]] | None = None) -> str:
        """Send one message; returns the Slack message `ts`, `webhook`, or the outbox file path."""
        if self.mode == "web_api":
            return self._post_web_api(text, blocks)
        if self.mode == "webhook":
            return self._post_webhook(text, blocks)
        return str(self.write_outbox(text, blocks))

    def _post_web_api(self, text: str, blocks: list[dict[str, Any]] | None) -> str:
        from slack_sdk import WebClient
        from slack_sdk.errors import SlackApiError, SlackClientError

        kwargs: dict[str, Any] = {}
        if self.api_base_url:
            # slack-sdk joins "<base_url><method>": the base must end with a slash.
            kwargs["base_url"] = self.api_base_url.rstrip("/") + "/"
        client = WebClient(
            token=self.bot_token,
            timeout=self.timeout_seconds,
            retry_handlers=self._retry_handlers(),
            **kwargs,
        )
        try:
            response = client.chat_postMessage(channel=self.channel, text=text, blocks=blocks)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            status = exc.response.status_code if exc.response is not None else "?"
            raise SlackDeliveryError(
                f"Slack Web API chat.postMessage to {self.channel} failed: HTTP {status} {error or ''}".rstrip()
                + "; check SLACK_BOT_TOKEN's scopes (chat:write) and that the bot is in SLACK_CHANNEL"
            ) from None
        except (SlackClientError, OSError) as exc:
            raise SlackDeliveryError(
                f"Slack Web API ({self.api_base_url or 'slack.com'}) unreachable: {type(exc).__name__}; "
                "check the network or SLACK_API_BASE_URL"
            ) from None
        return str(response.get("ts") or "")

    def _post_webhook(self, text: str, blocks: list[dict[str, Any]] | None) -> str:
        from slack_sdk.webhook import WebhookClient

        client = WebhookClient(
            url=self.webhook_url or "", timeout=self.timeout_seconds, retry_handlers=self._retry_handlers()
        )
        try:
            response = client.send(text=text, blocks=blocks)
        except OSError as exc:
            raise SlackDeliveryError(
                f"Slack incoming webhook unreachable: {type(exc).__name__}; check the network and SLACK_WEBHOOK_URL"
            ) from None
        if response.status_code != 200:
            raise SlackDeliveryError(
                f"Slack incoming webhook answered HTTP {response.status_code} {str(response.body)[:100]}; "
                "check that SLACK_WEBHOOK_URL is current"
            )
        return "webhook"

    def write_outbox(self, text: str, blocks: list[dict[str, Any]] | None = None) -> Path:
        """One JSON file of `chat.postMessage` arguments (`channel`, `text`, `blocks`); written atomically."""
        folder = Path(self.outbox_dir)
        folder.mkdir(parents=True, exist_ok=True)
        now = datetime.now(UTC)
        digest = hashlib.sha1(text.encode()).hexdigest()[:8]
        path = folder / f"slack-{now.strftime('%Y%m%dT%H%M%S%fZ')}-{digest}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(
            json.dumps(
                {"channel": self.channel, "text": text, "blocks": blocks}, ensure_ascii=False, indent=2
            ),
            encoding="utf-8",
        )
        os.replace(tmp, path)
        return path
