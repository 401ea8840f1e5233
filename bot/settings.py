"""Configuration from the environment: MIGRATEBOT_* for migratebot, Slack's and AWS's own names for theirs."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob, with the default an operator would expect. Secrets are SecretStr: never printed."""

    model_config = SettingsConfigDict(env_prefix="MIGRATEBOT_", extra="ignore", frozen=True)

    data_dir: Path = Field(
        default=Path(".migratebot"),
        description="Where the embedded SQLite database and other local state live (a container volume).",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; unset means the embedded SQLite file DATA_DIR/migratebot.db. "
        "Production: postgresql+psycopg://user:pass@host:5432/db",
    )
    plan: Path | None = Field(default=None, description="The plan YAML file (or `--plan FILE`).")
    http_host: str = "0.0.0.0"
    http_port: int = 3000
    slack_api_url: str | None = Field(
        default=None, description="Another Slack Web API base URL (the sandbox's); unset means slack.com."
    )
    log_level: str = "INFO"
    log_format: Literal["json", "text"] | None = Field(
        default=None,
        description="Log lines: json (one object per line with the Slack request id, for log "
        "collectors) or text. Unset: json for `migratebot serve`, text for the other commands.",
    )

    slack_bot_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_BOT_TOKEN", "MIGRATEBOT_SLACK_BOT_TOKEN")
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_SIGNING_SECRET", "MIGRATEBOT_SLACK_SIGNING_SECRET")
    )
    slack_app_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_APP_TOKEN", "MIGRATEBOT_SLACK_APP_TOKEN")
    )

    # ---- the engine and the canary: leader election and paging (bot/engine, bot/canary) ----
    executor: bool = Field(
        default=True,
        description="`migratebot serve` runs the engine and the canary on the replica holding the Lease. "
        "Off: this process serves Slack only (another runs `migratebot engine`, or nothing executes).",
    )
    engine_lock_ttl: float = Field(
        default=30.0,
        gt=0,
        description="Seconds an engine's executor lock outlives its last renewal (a dead engine's "
        "successor waits this long).",
    )
    engine_poll_interval: float = Field(
        default=2.0, gt=0, description="Seconds between the engine's passes while a wave is in flight."
    )
    engine_retry_interval: float = Field(
        default=5.0,
        gt=0,
        description="Seconds before an eviction refused by a PodDisruptionBudget is retried.",
    )
    lease_name: str = Field(
        default="migratebot",
        description="The Lease that elects the replica running the canary scheduler and the engine.",
    )
    lease_namespace: str = Field(default="migratebot", description="The Lease's namespace.")
    lease_duration: float = Field(
        default=15.0,
        gt=0,
        description="Seconds a Lease holder that stopped renewing keeps it: how long a new leader waits "
        "after the old one died (renewals every duration/7, give up after 2/3 of it).",
    )
    pagerduty_routing_key: SecretStr | None = Field(
        default=None, description="PagerDuty Events API v2 routing key; unset means no paging."
    )
    pagerduty_url: str | None = Field(
        default=None, description="Another Events API URL (tests); unset means PagerDuty's."
    )

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'migratebot.db').resolve()}"
