"""The digests of contract section 6: read the marts and follow-ups, render, send once per period.

Once per period: `digest_deliveries` holds one row per (kind, period). A send first *claims* the row
(an atomic `update ... returning`: only a row not sent, and not being sent by someone else right
now, can be claimed), then builds and sends the message, then records `sent` with the instant up
to which automation actions were listed (`actions_until`), where the next digest of its kind
starts. A failed send is recorded (`failed`, attempts, last error) and re-raised; the retry
sensor (`sensors/digest_retries.py`) or a re-run sends it again. A claim whose process died is
taken over after `CLAIM_LEASE`.
"""

# No `from __future__ import annotations`: Dagster reads the op config annotation at runtime.
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Protocol

import dagster as dg
from pydantic import Field

from assets.dbt_keys import mart_key
from assets.experiments import HEALTH_KEY, RESULTS_KEY
from assets.guardrails import GUARDRAIL_ACTIONS_KEY
from models.digests.content import AutomationAction, ConversionRow, DigestContent, chart_window, rank_slugs
from models.digests.mail import build_email
from models.digests.periods import DigestKind, DigestPeriod, parse_period, period_containing
from models.digests.slack import render_slack_digest
from models.digests.text import iso_z
from models.instants import as_utc
from models.marts import CONVERSION_SNAPSHOT as SNAPSHOT
from models.marts import CONVERSION_SNAPSHOT_HISTORY as SNAPSHOT_HISTORY
from models.marts import DAILY_ASSIGNMENTS
from models.readiness import redact
from models.slack_format import DEFAULT_APP_BASE_URL
from resources.experiment_tables import read_digest_experiments
from resources.mail import Mailer
from resources.slack import SlackNotifier
from resources.stores.digest_ledger import (  # noqa: F401  (the ledger; callers know these names from here)
    CLAIM_LEASE,
    DELIVERIES,
    MAX_SEND_ATTEMPTS,
    claim_delivery,
    delivery_row,
    delivery_state,
    ensure_deliveries_table,
    previous_actions_until,
    record_failed,
    record_sent,
    retryable_periods,
)
from resources.stores.guardrail_tables import FOLLOWUPS
from resources.warehouse import Warehouse, WarehouseConnection

SLACK_JOB = "automation_slack_digest"
EMAIL_JOB = "weekly_digest_email"
JOB_FOR_KIND: dict[str, str] = {"slack": SLACK_JOB, "email": EMAIL_JOB}


class DigestOptions(dg.ConfigurableResource):
    """What the digests and the readiness report go by: links into the app (APP_BASE_URL), whether
    conversion and experiment rows are shown (WEEKLY_DIGEST_ENABLED), the email's sender and
    recipients, and how old the marts may be before they count as stale (MARTS_FRESHNESS_MINUTES)."""

    app_base_url: str = Field(default=DEFAULT_APP_BASE_URL, description="APP_BASE_URL: links in digests")
    weekly_digest_enabled: bool = Field(
        default=True, description="WEEKLY_DIGEST_ENABLED: false leaves conversion rows out of both digests"
    )
    email_from: str = Field(default="pricing-ops@smplat.local", description="DIGEST_EMAIL_FROM")
    email_to: str = Field(default="concierge-leads@smplat.local", description="DIGEST_EMAIL_TO (comma separated)")
    marts_freshness_minutes: int = Field(default=60, description="MARTS_FRESHNESS_MINUTES (readiness)")

    @property
    def recipients(self) -> list[str]:
        return [address.strip() for address in self.email_to.split(",") if address.strip()]


class Log(Protocol):
    def info(self, msg: str) -> Any: ...
    def warning(self, msg: str) -> Any: ...


@dataclass(frozen=True)
class DeliveryOutcome:
    """What one digest run did: `sent`, `already_sent` or `in_progress` (another run holds the claim)."""

    kind: str
    period: str
    status: str
    ref: str | None = None
    attempts: int = 0
    slugs: int = 0
    actions: int = 0
    conversions_suppressed: bool = False

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


# Reading the content --------------------------------------------------------------------------------
def _decimal(value: Any) -> Decimal:
    if isinstance(value, float):
        raise TypeError("order_total came back as a float; the conversion marts must keep money as numeric")
    return Decimal(value)


def _conversion_rows(rows: list[dict[str, Any]]) -> list[ConversionRow]:
    return [
        ConversionRow(
            slug=r["slug"],
            currency=r["order_currency"],
            order_total=_decimal(r["order_total"]),
            order_count=int(r["order_count"]),
            journey_count=int(r["journey_count"]),
            loyalty_points=int(r["loyalty_points"]),
            last_activity=as_utc(r["last_activity"]),
        )
        for r in rows
    ]


_CONVERSION_COLUMNS = "slug, order_currency, order_total, order_count, journey_count, loyalty_points, last_activity"


def read_conversions(
    conn: WarehouseConnection, schema: str, period: DigestPeriod, live: bool
) -> tuple[list[ConversionRow], date | None]:
    """The live snapshot for the current period; for a past one, the history as of its last day
    (falling back to the live snapshot when no history reaches back that far). Returns the rows and
    the snapshot date when historical."""
    if not live and conn.table_exists(schema, SNAPSHOT_HISTORY):
        row = conn.fetchone(
            f"select max(snapshot_date) from {schema}.{SNAPSHOT_HISTORY} where snapshot_date <= :last_day",
            {"last_day": period.last_day},
        )
        if row and row[0] is not None:
            snapshot_date = row[0] if isinstance(row[0], date) else date.fromisoformat(str(row[0]))
            rows = conn.fetch_dicts(
                f"select {_CONVERSION_COLUMNS} from {schema}.{SNAPSHOT_HISTORY} where snapshot_date = :d",
                {"d": snapshot_date},
            )
            return _conversion_rows(rows), snapshot_date
    if not conn.table_exists(schema, SNAPSHOT):
        return [], None
    return _conversion_rows(conn.fetch_dicts(f"select {_CONVERSION_COLUMNS} from {schema}.{SNAPSHOT}")), None


def read_daily_assignments(conn: WarehouseConnection, schema: str, days: tuple[date, ...]) -> dict[str, list[int]]:
    """Exposures per slug for each of `days` (0 where the mart has no row)."""
    if not days or not conn.table_exists(schema, DAILY_ASSIGNMENTS):
        return {}
    rows = conn.fetchall(
        f"select slug, activity_date, exposure_count from {schema}.{DAILY_ASSIGNMENTS} "
        "where activity_date between :first and :last",
        {"first": days[0], "last": days[-1]},
    )
    index = {day: i for i, day in enumerate(days)}
    out: dict[str, list[int]] = {}
    for slug, activity_date, count in rows:
        day = activity_date if isinstance(activity_date, date) else date.fromisoformat(str(activity_date))
        series = out.setdefault(slug, [0] * len(days))
        series[index[day]] = int(count)
    return out


def read_automation_actions(
    conn: WarehouseConnection, schema: str, since: datetime | None, until: datetime
) -> list[AutomationAction]:
    """Pauses and resumes by actor `automation` with since < created_at <= until."""
    if not conn.table_exists(schema, FOLLOWUPS):
        return []
    where = "actor = 'automation' and action in ('pause', 'resume') and created_at <= :until"
    params: dict[str, Any] = {"until": until}
    if since is not None:
        where += " and created_at > :since"
        params["since"] = since
    rows = conn.fetch_dicts(
        f"select id, provider_id, provider_name, experiment_slug, action, created_at "
        f"from {schema}.{FOLLOWUPS} where {where} order by created_at, id",
        params,
    )
    return [
        AutomationAction(
            followup_id=str(r["id"]),
            provider_id=str(r["provider_id"]),
            provider_name=r["provider_name"],
            slug=r["experiment_slug"],
            action=r["action"],
            created_at=as_utc(r["created_at"]),  # type: ignore[arg-type]
        )
        for r in rows
    ]


def build_content(
    warehouse: Warehouse, options: DigestOptions, period: DigestPeriod, now: datetime, log: Log
) -> DigestContent:
    """Everything the digest for `period` says, as of `now`."""
    schema = warehouse.schema
    live = period == period_containing(period.kind, now)
    days = chart_window(period, now.date())
    with warehouse.state_connect() as state:
        since = previous_actions_until(state, schema, period.kind)
        actions = read_automation_actions(state, schema, since, now)
    with warehouse.connect() as conn:
        slugs: tuple = ()
        experiments: tuple = ()
        snapshot_date = None
        if options.weekly_digest_enabled:
            # The statistics are live only (no history): a past period shows the latest decisions.
            experiments = read_digest_experiments(conn, schema)
            rows, snapshot_date = read_conversions(conn, schema, period, live)
            slugs = rank_slugs(rows, read_daily_assignments(conn, schema, days), len(days))
            if not rows:
                log.warning(f"no conversion rows in {schema}.{SNAPSHOT}: the digest says so; run `pricing-ops refresh`")
    if not options.weekly_digest_enabled:
        log.info(
            f"WEEKLY_DIGEST_ENABLED=false: conversion rows suppressed in the {period.kind} digest for {period.label} "
            "(experiment rows too)"
        )
    return DigestContent(
        period=period,
        generated_at=now,
        app_base_url=options.app_base_url,
        actions_since=since,
        actions=tuple(actions),
        slugs=slugs,
        chart_days=days,
        conversions_suppressed=not options.weekly_digest_enabled,
        conversion_cursor=snapshot_date.isoformat() if snapshot_date else None,
        snapshot_date=snapshot_date,
        experiments=experiments,
    )


# Sending -------------------------------------------------------------------------------------------
def deliver_digest(
    kind: DigestKind,
    period_text: str | None,
    *,
    warehouse: Warehouse,
    options: DigestOptions,
    slack: SlackNotifier | None = None,
    mailer: Mailer | None = None,
    log: Log | None = None,
    now: datetime | None = None,
) -> DeliveryOutcome:
    """Send the `kind` digest for a period (default: the current one) unless it was sent already."""
    log = log or logging.getLogger(__name__)
    now = (now or datetime.now(UTC)).astimezone(UTC)
    period = parse_period(kind, period_text) if period_text else period_containing(kind, now)
    attempt = claim_delivery(warehouse, kind, period.label, now)
    if attempt is None:
        row = delivery_row(warehouse, kind, period.label) or {}
        status = "already_sent" if row.get("status") == "sent" else "in_progress"
        when = f" at {iso_z(as_utc(row.get('sent_at')))}" if status == "already_sent" else ""
        log.info(f"{kind} digest for {period.label}: {status.replace('_', ' ')}{when}; nothing sent")
        return DeliveryOutcome(
            kind, period.label, status, ref=row.get("message_ref"), attempts=int(row.get("attempts") or 0)
        )
    try:
        content = build_content(warehouse, options, period, now, log)
        if kind == "slack":
            assert slack is not None, "the Slack digest needs the `slack` resource"
            payload = render_slack_digest(content)
            ref = slack.post_message(payload["text"], payload["blocks"])
        else:
            assert mailer is not None, "the email digest needs the `mailer` resource"
            message = build_email(content, options.email_from, options.recipients)
            ref = mailer.send(message, outbox_name=f"weekly-digest-{period.label}")
    except Exception as exc:  # any failure of a send is recorded for the retry
        try:
            record_failed(warehouse, kind, period.label, f"{type(exc).__name__}: {exc}", datetime.now(UTC))
        except Exception as record_exc:  # noqa: BLE001 - the send's own error is the one to report
            log.warning(f"could not record the failed {kind} digest for {period.label}: {redact(str(record_exc))}")
        else:
            log.warning(f"{kind} digest for {period.label} failed on attempt {attempt}; recorded for retry")
        raise
    record_sent(warehouse, kind, period.label, datetime.now(UTC), content.generated_at, ref)
    log.info(
        f"{kind} digest for {period.label} sent ({ref}): {len(content.slugs)} slugs, "
        f"{len(content.actions)} automatic actions"
    )
    return DeliveryOutcome(
        kind,
        period.label,
        "sent",
        ref=ref,
        attempts=attempt,
        slugs=len(content.slugs),
        actions=len(content.actions),
        conversions_suppressed=content.conversions_suppressed,
    )


# Dagster assets and jobs ------------------------------------------------------------------------------
class DigestRunConfig(dg.Config):
    period: str | None = Field(
        default=None, description="Slack: UTC date YYYY-MM-DD; email: ISO week YYYY-Www. Default: the current one."
    )


def _outcome_output(outcome: DeliveryOutcome) -> dg.Output:
    return dg.Output(
        outcome.to_json(),
        metadata={
            "status": outcome.status,
            "period": outcome.period,
            "attempts": outcome.attempts,
            "slugs": outcome.slugs,
            "automatic_actions": outcome.actions,
            "conversions_suppressed": outcome.conversions_suppressed,
        },
    )


SLACK_DIGEST_KEY = dg.AssetKey("automation_slack_digest")
EMAIL_DIGEST_KEY = dg.AssetKey("weekly_digest_email")
DIGEST_GROUP = "digests"
# The op names are the run-config path (`ops.<name>.config.period`) the schedules, the retry sensor,
# the CLI and the launchpad use: kept from when the digests were plain ops.
OP_FOR_KIND = {"slack": "send_automation_slack_digest", "email": "send_weekly_digest_email"}
# One writer on the warehouse at a time (the ledger and the claim are warehouse writes).
WAREHOUSE_WRITER_TAGS = {"dagster/concurrency_key": "warehouse_writer"}


def digest_upstream() -> list[dg.AssetKey]:
    """What both digests read: the conversion snapshot and its history, the daily assignments (dbt
    marts, keyed as dagster-dbt gives them), the experiment statistics and the automation follow-ups."""
    marts = [mart_key(m) for m in (SNAPSHOT, SNAPSHOT_HISTORY, DAILY_ASSIGNMENTS)]
    return [*marts, HEALTH_KEY, RESULTS_KEY, GUARDRAIL_ACTIONS_KEY]


def build_digest_assets() -> list[dg.AssetsDefinition]:
    """The two digests as assets downstream of what they read; each materialization is one send
    attempt of one period (`sent`, `already_sent` or `in_progress`, in the metadata and the output)."""
    upstream = digest_upstream()

    @dg.multi_asset(
        name=OP_FOR_KIND["slack"],
        outs={"result": dg.AssetOut(
            key=SLACK_DIGEST_KEY, group_name=DIGEST_GROUP, kinds={"slack"},
            description="Provider automation Slack digest (contract section 6), once per UTC date.",
        )},
        deps=upstream,
    )
    def send_automation_slack_digest(
        context: dg.AssetExecutionContext,
        config: DigestRunConfig,
        warehouse: Warehouse,
        slack: SlackNotifier,
        digest_options: DigestOptions,
    ):
        outcome = deliver_digest(
            "slack", config.period, warehouse=warehouse, options=digest_options, slack=slack, log=context.log
        )
        return _outcome_output(outcome)

    @dg.multi_asset(
        name=OP_FOR_KIND["email"],
        outs={"result": dg.AssetOut(
            key=EMAIL_DIGEST_KEY, group_name=DIGEST_GROUP, kinds={"email"},
            description="Weekly digest email (contract section 6), once per ISO week.",
        )},
        deps=upstream,
    )
    def send_weekly_digest_email(
        context: dg.AssetExecutionContext,
        config: DigestRunConfig,
        warehouse: Warehouse,
        mailer: Mailer,
        digest_options: DigestOptions,
    ):
        outcome = deliver_digest(
            "email", config.period, warehouse=warehouse, options=digest_options, mailer=mailer, log=context.log
        )
        return _outcome_output(outcome)

    return [send_automation_slack_digest, send_weekly_digest_email]


automation_slack_digest_job = dg.define_asset_job(
    SLACK_JOB,
    selection=dg.AssetSelection.assets(SLACK_DIGEST_KEY),
    description="Provider automation Slack digest (contract section 6).",
    tags=WAREHOUSE_WRITER_TAGS,
)
weekly_digest_email_job = dg.define_asset_job(
    EMAIL_JOB,
    # The readiness check on the digest (weekly_digest) comes along: evaluated right after each send.
    selection=dg.AssetSelection.assets(EMAIL_DIGEST_KEY),
    description="Weekly digest email (contract section 6).",
    tags=WAREHOUSE_WRITER_TAGS,
)


def digest_run_config(kind: str, period: str | None) -> dict[str, Any]:
    return {"ops": {OP_FOR_KIND[kind]: {"config": {"period": period}}}}
