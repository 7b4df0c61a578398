"""One settings object, read from the environment (and `.env`) once.

Every name here is a setting of contract section 7 or of the section that uses it. Nothing is
required for the embedded default: DuckDB warehouse and demo source under `DATA_DIR`, outbox folder
instead of Slack and SMTP. Secrets are `SecretStr` so that printing the settings never shows them.
"""

from __future__ import annotations

import math
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.identifiers import schema_name_problem
from models.p_value_corrections import CORRECTIONS
from models.run_alerts import DEFAULT_DAGSTER_UI_URL
from models.slack_format import DEFAULT_APP_BASE_URL

# Settings holding a cron expression (UTC): each is checked and named when invalid.
CRON_SETTINGS = (
    "REFRESH_CRON", "EXTRACT_RESYNC_CRON", "ONBOARDING_EXPORT_CRON", "AUTOMATION_DIGEST_CRON", "WEEKLY_DIGEST_CRON",
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=True)

    # Storage
    DATA_DIR: Path = Path(".data")
    WAREHOUSE_URL: SecretStr | None = None
    WAREHOUSE_SCHEMA: str = "analytics"
    # Transactional state when the warehouse is Spark (contract section 10): a PostgreSQL URL.
    STATE_DATABASE_URL: SecretStr | None = None
    DAGSTER_POSTGRES_URL: SecretStr | None = None

    # Source
    ONBOARDING_EXPORT_DATABASE_URL: SecretStr | None = None
    ONBOARDING_EXPORT_API_BASE_URL: str | None = None
    CHECKOUT_API_KEY: SecretStr | None = None
    SOURCE_SCHEMA: str = "public"
    EXTRACT_LOOKBACK: timedelta = timedelta(minutes=10)
    # Longest a statement on the source database may run or wait for a lock: a locked table ends the
    # read in one line (which table, which database, who holds the lock) instead of a hang.
    SOURCE_STATEMENT_TIMEOUT: timedelta = timedelta(minutes=5)
    REFRESH_CRON: str = "*/15 * * * *"
    # Full re-read of the tables that change in place (orders, journeys): repairs late commits.
    EXTRACT_RESYNC_CRON: str = "0 3 * * *"
    MARTS_FRESHNESS_MINUTES: int = 60
    # One run writes the warehouse at a time (resources/warehouse_writer.py): how long another
    # writer waits for it before giving up, naming the run that holds it.
    WAREHOUSE_WRITER_WAIT: timedelta = timedelta(minutes=10)
    # `pricing-ops readyz` (and the readiness checks) answer within this, locked tables or not.
    READYZ_TIMEOUT: timedelta = timedelta(seconds=10)

    # Guardrails
    GUARDRAIL_CRITICAL_GUARDRAIL_FAILURES: int = 2
    GUARDRAIL_CRITICAL_REPLAY_FAILURES: int = 4
    APP_BASE_URL: str = DEFAULT_APP_BASE_URL
    APP_API_BASE_URL: str | None = None

    # Slack, SMTP, outbox
    SLACK_BOT_TOKEN: SecretStr | None = None
    SLACK_CHANNEL: str = "#concierge-automation"
    SLACK_API_BASE_URL: str | None = None
    SLACK_WEBHOOK_URL: SecretStr | None = None
    OUTBOX_DIR: Path | None = None
    SMTP_HOST: str | None = None
    SMTP_PORT: int = 587
    SMTP_USERNAME: str | None = None
    SMTP_PASSWORD: SecretStr | None = None
    SMTP_STARTTLS: bool = True
    # A login over an unencrypted connection (SMTP_STARTTLS=false, not port 465) is refused unless
    # this says the relay is trusted: the password would cross the network in cleartext.
    SMTP_ALLOW_PLAINTEXT_AUTH: bool = False
    DIGEST_EMAIL_TO: str = "concierge-leads@smplat.local"
    DIGEST_EMAIL_FROM: str = "pricing-ops@smplat.local"

    # Export
    ONBOARDING_EXPORT_CRON: str = "0 * * * *"
    ONBOARDING_EXPORT_SINK: Literal["webhook", "file", "s3"] = "file"
    ONBOARDING_EXPORT_FORMAT: Literal["ndjson", "csv", "parquet"] = "ndjson"
    ONBOARDING_EXPORT_BATCH_SIZE: int = 1000
    ANALYTICS_SEGMENTS_WEBHOOK: SecretStr | None = None
    ONBOARDING_EXPORT_DIR: Path | None = None
    ONBOARDING_EXPORT_S3_URI: str | None = None
    ONBOARDING_EXPORT_CURSOR_STORE: Literal["file", "s3"] = "file"
    ONBOARDING_EXPORT_CURSOR_S3_URI: str | None = None
    ONBOARDING_EXPORT_SLACK_WEBHOOK: SecretStr | None = None
    S3_ENDPOINT_URL: str | None = None
    # The Dagster UI as people reach it: base of the run links in run-failure alerts and export
    # notices (contract section 8). DAGSTER_WEBSERVER_URL, its earlier name, is still read.
    DAGSTER_UI_URL: str = Field(
        default=DEFAULT_DAGSTER_UI_URL, validation_alias=AliasChoices("DAGSTER_UI_URL", "DAGSTER_WEBSERVER_URL")
    )

    # Code references in the UI: each asset links to its source file; with a repository URL
    # (e.g. https://github.com/acme/pricing-ops) to the file on that branch instead of the editor.
    CODE_REFERENCES_GIT_URL: str | None = None
    CODE_REFERENCES_GIT_BRANCH: str = "main"

    # Digests
    AUTOMATION_DIGEST_CRON: str = "0 9 * * *"
    WEEKLY_DIGEST_CRON: str = "0 9 * * 1"
    WEEKLY_DIGEST_ENABLED: bool = True

    # Experiment results (contract section 9) ------------------------------------------------
    # SRM when the chi-square p-value is below this; the always-valid interval's tuning N*; the
    # fewest journeys per arm for a comparison.
    EXPERIMENT_SRM_P_THRESHOLD: float = 0.001
    EXPERIMENT_SEQUENTIAL_TUNING: float = 5000
    EXPERIMENT_MIN_JOURNEYS: int = 100
    # Section 9.1: the p-value correction across a slug's comparisons (holm, bh, none) and the
    # relative lift that power, journeys_needed and days_needed aim at.
    EXPERIMENT_CORRECTION: str = "holm"
    EXPERIMENT_TARGET_MDE: float = 0.05

    @field_validator("EXPERIMENT_CORRECTION")
    @classmethod
    def _correction(cls, value: str) -> str:
        if value not in CORRECTIONS:
            raise ValueError(f"must be holm (default), bh or none, got {value!r}")
        return value

    @field_validator("EXPERIMENT_TARGET_MDE")
    @classmethod
    def _target_mde(cls, value: float) -> float:
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"must be a relative lift above 0 (default 0.05 = 5%), got {value}")
        return value

    # BI (contract section 11) ---------------------------------------------------------------
    # Superset's admin login; without a password one is generated into DATA_DIR/bi/admin-password.
    BI_ADMIN_USER: str = "admin"
    BI_ADMIN_PASSWORD: SecretStr | None = None
    # bi_reader's password on a PostgreSQL warehouse (the one given to `warehouse grant-bi-reader
    # --password`); unset: `pricing-ops bi` makes bi_reader a login role with one kept in DATA_DIR/bi/.
    BI_READER_PASSWORD: SecretStr | None = None

    @field_validator("EXPERIMENT_SRM_P_THRESHOLD")
    @classmethod
    def _srm_threshold(cls, value: float) -> float:
        if not 0 < value < 1:
            raise ValueError(f"EXPERIMENT_SRM_P_THRESHOLD must be a p-value between 0 and 1 (default 0.001), got {value}")
        return value

    @field_validator("EXPERIMENT_SEQUENTIAL_TUNING")
    @classmethod
    def _sequential_tuning(cls, value: float) -> float:
        if not value > 0:
            raise ValueError(f"EXPERIMENT_SEQUENTIAL_TUNING must be a journey count above 0 (default 5000), got {value}")
        return value

    @field_validator("EXPERIMENT_MIN_JOURNEYS")
    @classmethod
    def _min_journeys(cls, value: int) -> int:
        if value < 2:
            raise ValueError(f"EXPERIMENT_MIN_JOURNEYS must be a whole number of 2 or more (default 100), got {value}")
        return value

    @field_validator("EXTRACT_LOOKBACK", "SOURCE_STATEMENT_TIMEOUT", mode="before")
    @classmethod
    def _lookback(cls, value: object) -> object:
        """Accept plain seconds ("600") besides ISO 8601 durations ("PT10M")."""
        if isinstance(value, str) and value.strip().isdigit():
            return timedelta(seconds=int(value))
        return value

    @field_validator("EXTRACT_LOOKBACK")
    @classmethod
    def _lookback_positive(cls, value: timedelta) -> timedelta:
        # A zero or negative overlap skips rows that commit late, for good.
        if value <= timedelta(0):
            raise ValueError("must be a positive duration (the overlap re-read each run); set e.g. PT10M or 600")
        return value

    @field_validator("SOURCE_STATEMENT_TIMEOUT")
    @classmethod
    def _statement_timeout_positive(cls, value: timedelta) -> timedelta:
        if value < timedelta(seconds=1):
            raise ValueError("must be a duration of at least 1 second (default 5 minutes); set e.g. PT5M or 300")
        return value

    @field_validator("WAREHOUSE_WRITER_WAIT", "READYZ_TIMEOUT", mode="before")
    @classmethod
    def _seconds(cls, value: object) -> object:
        """Accept plain seconds ("30") besides ISO 8601 durations ("PT30S")."""
        if isinstance(value, str) and value.strip().isdigit():
            return timedelta(seconds=int(value))
        return value

    @field_validator("WAREHOUSE_WRITER_WAIT", "READYZ_TIMEOUT")
    @classmethod
    def _positive_duration(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be a positive duration; set seconds (e.g. 30) or ISO 8601 (e.g. PT30S)")
        return value

    @field_validator("WAREHOUSE_SCHEMA")
    @classmethod
    def _warehouse_schema(cls, value: str) -> str:
        problem = schema_name_problem(value, ("_raw", "_staging"))
        if problem:
            raise ValueError(f"{problem}; set a name like analytics")
        return value

    @field_validator("SOURCE_SCHEMA")
    @classmethod
    def _source_schema(cls, value: str) -> str:
        problem = schema_name_problem(value, lower_case_only=False)
        if problem:
            raise ValueError(f"{problem}; set the schema the app writes, e.g. public")
        return value

    @field_validator("ONBOARDING_EXPORT_BATCH_SIZE")
    @classmethod
    def _batch_size(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"must be at least 1 (rows per batch), got {value}; set e.g. 1000")
        return value

    @field_validator(*CRON_SETTINGS)
    @classmethod
    def _cron(cls, value: str) -> str:
        from dagster._utils.schedules import is_valid_cron_string

        if not is_valid_cron_string(value):
            raise ValueError(f"{value!r} is not a cron expression; set five fields, e.g. '0 3 * * *' (UTC)")
        return value

    @field_validator("WAREHOUSE_URL")
    @classmethod
    def _warehouse_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            from resources.engines import engine_for_url

            try:
                engine_for_url(value.get_secret_value())
            except ValueError as exc:
                raise ValueError(str(exc).removeprefix("WAREHOUSE_URL: ")) from None
        return value

    @field_validator("ONBOARDING_EXPORT_DATABASE_URL", "DAGSTER_POSTGRES_URL", "STATE_DATABASE_URL")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            from resources.postgres_url import resolve_postgres_url

            resolve_postgres_url(value.get_secret_value())  # ValueError names what is wrong, not the URL
        return value

    @model_validator(mode="after")
    def _state_database(self) -> Settings:
        """A warehouse without transactions (Spark) needs STATE_DATABASE_URL: refused at start."""
        from resources.engines import engine_for_url

        state = self.STATE_DATABASE_URL.get_secret_value() if self.STATE_DATABASE_URL else None
        try:
            engine_for_url(self.warehouse_url, state_url=state).state_engine()
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        return self

    # Derived locations -------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.DATA_DIR.expanduser().resolve()

    @property
    def warehouse_url(self) -> str:
        if self.WAREHOUSE_URL is not None:
            return self.WAREHOUSE_URL.get_secret_value()
        return f"duckdb:///{self.data_dir / 'warehouse.duckdb'}"

    @property
    def demo_source_path(self) -> Path:
        return self.data_dir / "demo_source.duckdb"

    @property
    def outbox_dir(self) -> Path:
        return (self.OUTBOX_DIR or self.data_dir / "outbox").expanduser().resolve()

    @property
    def export_dir(self) -> Path:
        return (self.ONBOARDING_EXPORT_DIR or self.data_dir / "exports").expanduser().resolve()

    @property
    def export_cursor_path(self) -> Path:
        return self.data_dir / "onboarding_export_cursor.json"

    @property
    def dagster_home(self) -> Path:
        return self.data_dir / "dagster_home"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once. A `.env` file is loaded into the environment first (without
    overriding what is already set) so that `EnvVar` resources see the same values."""
    from dotenv import load_dotenv

    load_dotenv(".env", override=False)
    return Settings()


class SettingsError(ValueError):
    """A setting that cannot work, in one line: its name, what is wrong, how to fix it."""


def settings_error_line(exc: ValidationError) -> str:
    """Pydantic's report in one line per setting, keeping the setting's name and the fix (never
    the value of a secret: pydantic shows no input for SecretStr fields, and the messages here
    never echo a URL)."""
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        name = ".".join(str(part) for part in error.get("loc", ())) or "settings"
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        lines.append(f"setting {name} {message}" if message.startswith(("must", "is ")) else f"setting {name}: {message}")
    return "; ".join(lines)


def load_settings() -> Settings:
    """`get_settings()`, a bad setting raised as a one-line `SettingsError`."""
    try:
        return get_settings()
    except ValidationError as exc:
        raise SettingsError(settings_error_line(exc)) from None


def secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None
