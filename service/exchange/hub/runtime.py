"""The hub's settings (``COUNTERFEIT_HUB_*``) and its pieces wired together."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.exchange.hub.intake import HubIntake
from service.exchange.hub.members import HubMembers
from service.exchange.hub.merged import MergedFeed
from service.exchange.hub.store import open_hub_database


class HubSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COUNTERFEIT_HUB_", extra="ignore")

    data_dir: Path = Field(Path("hub-data"), description="The hub's own directory (its SQLite database)")
    database_url: str | None = Field(None, description="Default: SQLite in data_dir; PostgreSQL works too")
    name: str = Field("hub", description="The hub's issuer name on its merged feed")
    private_key: str | None = Field(None, description="Ed25519 key (base64) that signs the merged feed")
    max_page_age_seconds: float = Field(3600, gt=0, description="Members' pages older than this are refused")
    page_size: int = Field(500, ge=1, le=5000)

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'hub.db'}"


@dataclass
class Hub:
    settings: HubSettings
    members: HubMembers
    merged: MergedFeed
    intake: HubIntake


def open_hub(settings: HubSettings) -> Hub:
    sessions = open_hub_database(settings.resolved_database_url)
    merged = MergedFeed(sessions, settings.name, settings.private_key, settings.page_size)
    return Hub(
        settings, HubMembers(sessions), merged, HubIntake(sessions, merged, settings.max_page_age_seconds)
    )
