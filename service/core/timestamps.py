"""Timestamps, in one place: every datetime we store is UTC, and SQLite gives them back without a zone."""

from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def aware(moment: datetime | None) -> datetime | None:
    """The stored moment with its (UTC) zone restored; None stays None."""
    return moment.replace(tzinfo=timezone.utc) if moment is not None and moment.tzinfo is None else moment


def iso_utc(moment: datetime) -> str:
    return aware(moment).isoformat()
