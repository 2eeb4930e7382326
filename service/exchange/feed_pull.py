"""Pulling peers' exchange feeds (service/exchange/feed.py): verify each page, apply its entries, resume from a cursor.

Per peer (``COUNTERFEIT_EXCHANGE_PEERS``) and page:

* the envelope must be signed by the key ``COUNTERFEIT_TRUSTED_SIGNAL_ISSUERS`` names for that issuer,
  start at this platform's cursor for it (an older page — a replay — is refused), be no older than
  ``exchange_max_page_age_seconds`` and not older than the last page taken; else the page is refused,
  nothing of it applied, the cursor kept and the error recorded (the next pull retries);
* each entry must carry its own valid signature, the seq the envelope lists, and well-formed data;
  one that does not is **skipped and reported** (counted on the cursor row), and the rest of the page
  applies — one corrupt record never stalls the feed;
* entries apply in order, idempotently: ``add`` replaces the issuer's entry of that key, ``withdraw``
  deletes it, an expired entry counts as withdrawn; entry types the peer is not trusted for are ignored.

The entries and the new cursor commit in one transaction per page: a pull killed mid-way resumes at
the last whole page.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Mapping

import httpx
from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from index.pdq import PdqHash
from service.core.timestamps import aware, utcnow
from service.db.models import ExchangeCursor, SharedSellerSignal, SharedSignal
from service.exchange.feed import FORMAT
from service.exchange.identifiers import KINDS
from service.exchange.signals import signature_valid
from service.settings import ExchangePeer

log = logging.getLogger(__name__)
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,32}$")


class PageRefused(Exception):
    """A page that cannot be trusted as a whole: nothing of it is applied."""


class EntryRefused(Exception):
    """One entry that cannot be trusted or understood: skipped, reported."""


@dataclass
class PullReport:
    issuer: str
    pages: int = 0
    applied: int = 0
    withdrawn: int = 0
    ignored: int = 0  # entry types this issuer is not trusted for
    skipped: int = 0  # corrupt entries, reported
    cursor: int = 0
    error: str | None = None
    problems: list[str] = field(default_factory=list)


def _parse_time(value: Any) -> datetime:
    try:
        return aware(datetime.fromisoformat(str(value)))
    except ValueError:
        raise PageRefused(f"bad timestamp {value!r}") from None


def _cursor_row(session: Session, issuer: str) -> ExchangeCursor:
    """This platform's position in the issuer's feed (a fresh one at 0 before the first pull)."""
    return session.get(ExchangeCursor, issuer) or ExchangeCursor(issuer=issuer, cursor=0, skipped_entries=0)


def verify_envelope(
    page: dict[str, Any],
    issuer: str,
    public_key: str,
    cursor: int,
    last_served: datetime | None,
    max_page_age: timedelta,
) -> dict[str, Any]:
    """The page's signed envelope, if the issuer signed it, it starts at ``cursor`` (an older page is a replay),
    it is fresh, and its entries are the seqs it lists; else :class:`PageRefused`."""
    envelope = {k: v for k, v in page.items() if k != "entries"}
    if envelope.get("format") != FORMAT:
        raise PageRefused(f"not a {FORMAT} page")
    if envelope.get("issuer") != issuer:
        raise PageRefused(f"the page names issuer {envelope.get('issuer')!r}, not {issuer!r}")
    if not signature_valid(envelope, public_key):
        raise PageRefused(f"the page's signature does not verify with {issuer}'s key (tampered?)")
    if envelope.get("since") != cursor:
        raise PageRefused(
            f"the page starts after {envelope.get('since')!r}, not at the cursor {cursor} (a replayed page?)"
        )
    served_at = _parse_time(envelope.get("served_at"))
    if served_at < utcnow() - max_page_age or (last_served is not None and served_at < last_served):
        raise PageRefused(f"the page was signed at {served_at.isoformat()}: too old (a replayed page?)")
    seqs, entries = envelope.get("seqs"), page.get("entries")
    if not (
        isinstance(seqs, list)
        and isinstance(entries, list)
        and len(seqs) == len(entries)
        and all(isinstance(s, int) and cursor < s for s in seqs)
        and seqs == sorted(set(seqs))
        and envelope.get("next_cursor") == (seqs[-1] if seqs else cursor)
        and isinstance(envelope.get("has_more"), bool)
    ):
        raise PageRefused("the page's entries do not match its signed list of seqs")
    return envelope


def verified_entry(entry: Any, seq: int, issuer: str, public_key: str) -> tuple[str, str, str, str, Any]:
    """(type, key, brand, op, data) of one entry the page lists, signed by its issuer; else :class:`EntryRefused`."""
    if not isinstance(entry, dict) or entry.get("seq") != seq or entry.get("issuer") != issuer:
        raise EntryRefused("not the entry the page lists")
    if not signature_valid(entry, public_key):
        raise EntryRefused("its signature does not verify (corrupt or tampered)")
    kind, key, brand, op, data = (entry.get(name) for name in ("type", "key", "brand", "op", "data"))
    if (
        kind not in ("pdq", "seller")
        or not isinstance(key, str)
        or not 0 < len(key) <= 200
        or not isinstance(brand, str)
        or op not in ("add", "withdraw")
    ):
        raise EntryRefused("malformed entry")
    if op == "add" and not isinstance(data, dict):
        raise EntryRefused("an add without data")
    return kind, key, brand, op, data


class FeedPuller:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        peers: Mapping[str, ExchangePeer],
        trusted: Mapping[str, str],
        max_page_age_seconds: float,
        transport: httpx.BaseTransport | None = None,
    ):
        self.sessions = sessions
        self.peers = dict(peers)
        self.trusted = dict(trusted)
        self.max_page_age = timedelta(seconds=max_page_age_seconds)
        self.transport = transport

    def pull_all(self, on_page: Callable[[PullReport], None] = lambda report: None) -> list[PullReport]:
        return [self.pull(issuer, on_page) for issuer, peer in sorted(self.peers.items()) if peer.enabled]

    def pull(self, issuer: str, on_page: Callable[[PullReport], None] = lambda report: None) -> PullReport:
        peer = self.peers[issuer]
        report = PullReport(issuer)
        with self.sessions() as session:
            state = _cursor_row(session, issuer)
            report.cursor, last_served = state.cursor, aware(state.last_served_at)
        try:
            if issuer not in self.trusted:
                raise PageRefused(f"issuer {issuer!r} is not in COUNTERFEIT_TRUSTED_SIGNAL_ISSUERS")
            with httpx.Client(
                base_url=peer.url,
                transport=self.transport,
                timeout=30,
                headers={"Authorization": f"Bearer {peer.api_key.get_secret_value()}"},
            ) as client:
                while True:
                    page = self._fetch(client, report.cursor)
                    envelope = verify_envelope(
                        page, issuer, self.trusted[issuer], report.cursor, last_served, self.max_page_age
                    )
                    self._apply_page(issuer, peer, page, envelope, report)
                    last_served = _parse_time(envelope["served_at"])
                    on_page(report)
                    if not envelope["has_more"]:
                        break
        except (PageRefused, httpx.HTTPError) as exc:
            report.error = f"{type(exc).__name__}: {exc}"[:500]
            log.warning("Exchange pull from %s stopped at cursor %d: %s", issuer, report.cursor, report.error)
            self._record_error(issuer, report.error)
        return report

    def _fetch(self, client: httpx.Client, cursor: int) -> dict[str, Any]:
        response = client.get("/v1/exchange/feed", params={"since": cursor})
        if response.status_code != 200:
            raise PageRefused(f"the peer answered HTTP {response.status_code}: {response.text[:200]}")
        try:
            page = response.json()
        except ValueError:
            raise PageRefused("the page is not JSON") from None
        if not isinstance(page, dict):
            raise PageRefused("the page is not a JSON object")
        return page

    def _apply_page(
        self,
        issuer: str,
        peer: ExchangePeer,
        page: dict[str, Any],
        envelope: dict[str, Any],
        report: PullReport,
    ) -> None:
        now = utcnow()
        skipped = 0
        with self.sessions() as session:
            for seq, entry in zip(envelope["seqs"], page["entries"]):
                try:
                    self._apply_entry(session, issuer, peer, seq, entry, now, report)
                except EntryRefused as exc:
                    skipped += 1
                    report.problems.append(f"entry {seq}: {exc}")
                    log.warning("Exchange feed of %s: skipped entry %d: %s", issuer, seq, exc)
            state = _cursor_row(session, issuer)
            state.cursor = envelope["next_cursor"]
            state.last_served_at = _parse_time(envelope["served_at"])
            state.pulled_at = now
            state.skipped_entries += skipped
            state.last_error = (
                f"skipped {skipped} corrupt entr{'y' if skipped == 1 else 'ies'}" if skipped else None
            )
            session.add(state)
            session.commit()
        report.pages += 1
        report.skipped += skipped
        report.cursor = envelope["next_cursor"]

    def _apply_entry(
        self,
        session: Session,
        issuer: str,
        peer: ExchangePeer,
        seq: int,
        entry: Any,
        now: datetime,
        report: PullReport,
    ) -> None:
        kind, key, brand, op, data = verified_entry(entry, seq, issuer, self.trusted[issuer])
        if kind not in peer.types:
            report.ignored += 1
            return
        row: SharedSignal | SharedSellerSignal | None = None
        if op == "add":
            row = shared_row(issuer, kind, key, brand, seq, data)
            expires = getattr(row, "expires_at", None)
            if expires is not None and expires <= now:
                row = None  # expired on arrival: as good as withdrawn
        # The entry replaces whatever this issuer said of the key before.
        session.execute(
            delete(SharedSignal).where(SharedSignal.issuer == issuer, SharedSignal.entry_key == key)
        )
        session.execute(
            delete(SharedSellerSignal).where(
                SharedSellerSignal.issuer == issuer, SharedSellerSignal.entry_key == key
            )
        )
        if row is None:
            report.withdrawn += 1
            return
        session.add(row)
        report.applied += 1

    @staticmethod
    def _pdq_row(issuer: str, key: str, brand: str, data: dict[str, Any]) -> SharedSignal:
        quality = int(data["quality"])
        pdq = PdqHash.from_hex(str(data["pdq"]), quality)
        sha256 = str(data["sha256"])
        if not _DIGEST.match(sha256):
            raise ValueError("sha256")
        product = data.get("product")
        return SharedSignal(
            issuer=issuer,
            brand=brand,
            sha256=sha256,
            pdq_hash=pdq.hex,
            pdq_quality=quality,
            product=str(product)[:200] if product is not None else None,
            entry_key=key,
        )

    @staticmethod
    def _seller_row(issuer: str, key: str, brand: str, seq: int, data: dict[str, Any]) -> SharedSellerSignal:
        kind, key_id, digest, status = data["kind"], data["key_id"], data["digest"], data["status"]
        if (
            kind not in KINDS
            or not _KEY_ID.match(str(key_id))
            or not _DIGEST.match(str(digest))
            or status not in ("confirmed", "likely")
        ):
            raise ValueError("kind, key_id, digest or status")
        return SharedSellerSignal(
            issuer=issuer,
            entry_key=key,
            brand=brand,
            kind=kind,
            key_id=key_id,
            digest=digest,
            status=status,
            reason=str(data.get("reason", ""))[:300],
            seq=seq,
            expires_at=_parse_time(data["expires_at"]) if data.get("expires_at") else None,
        )

    def _record_error(self, issuer: str, error: str) -> None:
        with self.sessions() as session:
            state = _cursor_row(session, issuer)
            state.last_error = error
            state.pulled_at = utcnow()
            session.add(state)
            session.commit()


def shared_row(issuer: str, kind: str, key: str, brand: str, seq: int, data: dict[str, Any]):
    """The row an ``add`` entry's data becomes; :class:`EntryRefused` when the data is malformed."""
    try:
        if kind == "pdq":
            return FeedPuller._pdq_row(issuer, key, brand, data)
        return FeedPuller._seller_row(issuer, key, brand, seq, data)
    except (KeyError, TypeError, ValueError, PageRefused) as exc:
        raise EntryRefused(f"malformed {kind} data ({exc})") from None
