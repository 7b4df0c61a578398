"""One settings object, read from the environment (and `.env`) once.

Every name here is a setting of contract section 7 or of the section that uses it. Nothing is
required for the embedded default: DuckDB warehouse and demo source under `DATA_DIR`, outbox folder
instead of Slack and SMTP. Secrets are `SecretStr` so that printing the settings never shows them.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=True)

    # Storage
    DATA_DIR: Path = Path(".data")
    WAREHOUSE_URL: SecretStr | None = None
    WAREHOUSE_SCHEMA: str = "analytics"
    DAGSTER_POSTGRES_URL: SecretStr | None = None

    # Source
    ONBOARDING_EXPORT_DATABASE_URL: SecretStr | None = None
    ONBOARDING_EXPORT_API_BASE_URL: str | None = None
    CHECKOUT_API_KEY: SecretStr | None = None
    SOURCE_SCHEMA: str = "public"
    EXTRACT_LOOKBACK: timedelta = timedelta(minutes=10)
    REFRESH_CRON: str = "*/15 * * * *"
    MARTS_FRESHNESS_MINUTES: int = 60

    # Guardrails
    GUARDRAIL_CRITICAL_GUARDRAIL_FAILURES: int = 2
    GUARDRAIL_CRITICAL_REPLAY_FAILURES: int = 4
    APP_BASE_URL: str = "https://app.smplat.local"
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
    DIGEST_EMAIL_TO: str = "concierge-leads@smplat.local"
    DIGEST_EMAIL_FROM: str = "pricing-ops@smplat.local"

    # Export
    ONBOARDING_EXPORT_CRON: str = "0 * * * *"
    ONBOARDING_EXPORT_SINK: Literal["webhook", "file", "s3"] = "file"
    ONBOARDING_EXPORT_FORMAT: Literal["ndjson", "csv", "parquet"] = "ndjson"
    ONBOARDING_EXPORT_BATCH_SIZE: int = Field(default=1000, ge=1)
    ANALYTICS_SEGMENTS_WEBHOOK: SecretStr | None = None
    ONBOARDING_EXPORT_DIR: Path | None = None
    ONBOARDING_EXPORT_S3_URI: str | None = None
    ONBOARDING_EXPORT_CURSOR_STORE: Literal["file", "s3"] = "file"
    ONBOARDING_EXPORT_CURSOR_S3_URI: str | None = None
    ONBOARDING_EXPORT_SLACK_WEBHOOK: SecretStr | None = None
    S3_ENDPOINT_URL: str | None = None
    # Base of the run links in export notices (the Dagster UI as people reach it).
    DAGSTER_WEBSERVER_URL: str = "http://localhost:3000"

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

    @field_validator("EXTRACT_LOOKBACK", mode="before")
    @classmethod
    def _lookback(cls, value: object) -> object:
        """Accept plain seconds ("600") besides ISO 8601 durations ("PT10M")."""
        if isinstance(value, str) and value.strip().isdigit():
            return timedelta(seconds=int(value))
        return value

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


def secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None
