"""The export's Slack notices go to their own incoming webhook, ONBOARDING_EXPORT_SLACK_WEBHOOK,
through slack-sdk's `WebhookClient` (via `SlackNotifier`, which retries 429/5xx/connection errors
and never puts the URL in an error). Unset means no notices."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from models.slack_format import text_blocks
from resources.slack import SlackDeliveryError, SlackNotifier


class ExportNotifier(ConfigurableResource):
    """Tells the export's Slack channel (ONBOARDING_EXPORT_SLACK_WEBHOOK) when an export run fails,
    and escalates when runs keep failing, with a link to the run in the Dagster UI."""

    webhook_url: str | None = Field(default=None, description="ONBOARDING_EXPORT_SLACK_WEBHOOK (secret)")
    dagster_ui_url: str | None = Field(
        default=None, description="DAGSTER_UI_URL: the Dagster UI, base of the run links in notices"
    )
    timeout_seconds: int = Field(default=15, description="how long to wait for Slack to answer one notice")

    @property
    def enabled(self) -> bool:
        return bool(self.webhook_url)

    def run_url(self, run_id: str) -> str | None:
        if not self.dagster_ui_url:
            return None
        return f"{self.dagster_ui_url.rstrip('/')}/runs/{run_id}"

    def send(self, text: str) -> None:
        """Post one notice; raises SlackDeliveryError (without the URL) when Slack does not take it."""
        if not self.webhook_url:
            return
        SlackNotifier(webhook_url=self.webhook_url, timeout_seconds=self.timeout_seconds).post_message(text, text_blocks(text) or None)


__all__ = ["ExportNotifier", "SlackDeliveryError"]
