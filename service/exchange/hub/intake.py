"""Members' pages into the hub: verified like a peer's page, then the membership policy, then applied.

A whole page is refused (nothing applied, the member's cursor kept, the refusal counted) when its
envelope is not the member's signature, does not start at the hub's cursor for the member (a replayed
or skipped page), or is stale. Within an accepted page, an entry whose own signature fails, whose data
is malformed, or whose type or brand the member may not publish is refused and counted; the rest apply
in order (an ``add`` replaces the member's report of that key, a ``withdraw`` deletes it). The reports
and the new cursor commit together; the merged feed is refreshed after.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from service.core.timestamps import aware
from service.exchange.feed_pull import (
    EntryRefused,
    PageRefused,
    _parse_time,
    shared_row,
    verified_entry,
    verify_envelope,
)
from service.exchange.hub.merged import MergedFeed
from service.exchange.hub.store import HubMember, HubReport

log = logging.getLogger(__name__)


@dataclass
class Intake:
    accepted: int = 0
    withdrawn: int = 0
    refused: list[str] = field(default_factory=list)
    cursor: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "withdrawn": self.withdrawn,
            "refused": self.refused,
            "cursor": self.cursor,
        }


class HubIntake:
    def __init__(self, sessions: sessionmaker[Session], merged: MergedFeed, max_page_age_seconds: float):
        self.sessions = sessions
        self.merged = merged
        self.max_page_age = timedelta(seconds=max_page_age_seconds)

    def accept(self, member_name: str, page: Any) -> Intake:
        """Apply one page the member published; :class:`PageRefused` (counted) when it is refused whole."""
        with self.sessions() as session:
            member = session.get(HubMember, member_name)
            if member is None or member.revoked_at is not None:
                raise PageRefused(f"{member_name} is not a member (or was revoked)")
            try:
                if not isinstance(page, dict):
                    raise PageRefused("the page is not a JSON object")
                envelope = verify_envelope(
                    page,
                    member.name,
                    member.public_key,
                    member.cursor,
                    aware(member.last_served_at),
                    self.max_page_age,
                )
            except PageRefused as exc:
                member.pages_refused += 1
                member.last_error = str(exc)[:500]
                session.commit()
                raise
            intake = self._apply(session, member, page, envelope)
            session.commit()
        self.merged.refresh()
        return intake

    def _apply(self, session: Session, member: HubMember, page: dict, envelope: dict) -> Intake:
        intake = Intake()
        for seq, entry in zip(envelope["seqs"], page["entries"]):
            try:
                kind, key, brand, op, data = verified_entry(entry, seq, member.name, member.public_key)
                if kind not in member.types or ("*" not in member.brands and brand not in member.brands):
                    raise EntryRefused(f"{member.name} may not publish {kind} entries about {brand}")
                if op == "add":
                    shared_row(member.name, kind, key, brand, seq, data)  # the data is well-formed
            except EntryRefused as exc:
                intake.refused.append(f"entry {seq}: {exc}")
                continue
            session.execute(
                delete(HubReport).where(HubReport.member == member.name, HubReport.entry_key == key)
            )
            if op == "add":
                session.add(HubReport(member=member.name, entry_key=key, type=kind, brand=brand, data=data))
                intake.accepted += 1
            else:
                intake.withdrawn += 1
        member.cursor = intake.cursor = envelope["next_cursor"]
        member.last_served_at = _parse_time(envelope["served_at"])
        member.entries_refused += len(intake.refused)
        member.last_error = "; ".join(intake.refused)[:500] or None
        return intake

    def pull(self, member_name: str) -> Intake:
        """Pull the member's own feed from the hub's cursor to its end (members the hub pulls from)."""
        with self.sessions() as session:
            member = session.get(HubMember, member_name)
        if member is None or not member.feed_url:
            raise PageRefused(f"{member_name} has no feed URL to pull from")
        total = Intake()
        headers = {"Authorization": f"Bearer {member.feed_api_key}"} if member.feed_api_key else {}
        with httpx.Client(base_url=member.feed_url, headers=headers, timeout=30) as client:
            while True:
                response = client.get("/v1/exchange/feed", params={"since": total.cursor or member.cursor})
                if response.status_code != 200:
                    raise PageRefused(f"{member_name} answered HTTP {response.status_code}")
                page = response.json()
                intake = self.accept(member_name, page)
                total.accepted += intake.accepted
                total.withdrawn += intake.withdrawn
                total.refused += intake.refused
                total.cursor = intake.cursor
                if not page.get("has_more"):
                    return total

    def cursor(self, member_name: str) -> int:
        with self.sessions() as session:
            return session.get(HubMember, member_name).cursor
