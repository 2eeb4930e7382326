"""The hub's own database (separate from any platform's): members, their live reports, the merged feed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Integer, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from service.core.timestamps import utcnow
from service.db.models import BigId
from service.db.session import make_engine


class HubBase(DeclarativeBase):
    pass


class HubMember(HubBase):
    __tablename__ = "hub_members"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)  # the issuer name its pages carry
    public_key: Mapped[str] = mapped_column(String(100), nullable=False)
    types: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    brands: Mapped[list[str]] = mapped_column(JSON, nullable=False)  # ["*"]: any brand
    anonymous: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    api_key_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    feed_url: Mapped[str | None] = mapped_column(String(2000))  # where the hub pulls from (optional)
    feed_api_key: Mapped[str | None] = mapped_column(String(200))  # the exchange key the member gave the hub
    cursor: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_served_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    pages_refused: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    entries_refused: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class HubReport(HubBase):
    """One member's live entry (the latest it published for the key); withdrawn: deleted."""

    __tablename__ = "hub_reports"
    __table_args__ = (UniqueConstraint("member", "entry_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    member: Mapped[str] = mapped_column(String(200), nullable=False, index=True)
    entry_key: Mapped[str] = mapped_column(String(200), nullable=False, index=True)
    type: Mapped[str] = mapped_column(String(16), nullable=False)
    brand: Mapped[str] = mapped_column(String(64), nullable=False)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class HubFeedEntry(HubBase):
    """The merged feed, append-only like a platform's (service/exchange/feed.py)."""

    __tablename__ = "hub_feed"

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    entry_key: Mapped[str] = mapped_column(String(200), nullable=False, index=True)
    type: Mapped[str] = mapped_column(String(16), nullable=False)
    brand: Mapped[str] = mapped_column(String(64), nullable=False)
    op: Mapped[str] = mapped_column(String(16), nullable=False)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


def open_hub_database(url: str) -> sessionmaker[Session]:
    """The hub's tables are its own and few: created when missing (no platform migration touches them)."""
    engine = make_engine(url, check_schema=False)
    HubBase.metadata.create_all(engine)
    return sessionmaker(engine, expire_on_commit=False)
