"""Webhooks: events pushed to brands' and platforms' endpoints, signed, retried, from a durable outbox.

* **Outbox.** An event's deliveries are rows written in the *same transaction* as what the event is
  about (the check row, the review, the listing): if that commits, its deliveries exist, whatever
  crashes next; if it does not, nothing is sent. The maintenance lease holder delivers due rows.
* **Scoping.** An endpoint belongs to a brand, a platform tenant or the operator (an admin key's). A
  brand's receives only events about its own brand; a platform's only events its own keys caused (its
  checks, listings and scans, and reviews of its checks); the operator's every event it subscribed to.
  Each owner sees and manages only its own endpoints (an admin: all); another owner's id is 404.
* **Signature.** ``Counterfeit-Signature: t=<unix seconds>,v1=<hex>`` with
  ``hex = HMAC-SHA256(secret, "<t>." + body)`` — the receiver recomputes it and rejects old ``t``
  (replays). During a secret rotation the header carries a second ``v1`` made with the previous
  secret until its overlap ends. ``Counterfeit-Delivery`` is the delivery id: receivers dedupe on it
  (a delivery whose answer was lost is sent again).
* **Retries.** Any answer but 2xx (or no answer within 5 s) is retried after
  ``base · 2^attempts`` seconds (capped at one hour) times a random 0.5–1.5 (jitter: a receiver
  coming back is not hit by every sender at once), up to ``MAX_ATTEMPTS``; every attempt is visible
  (``GET /v1/webhooks/{id}/deliveries``).
* Targets are checked like image URLs (``service.core.fetch``): public addresses only, no redirects.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Iterable

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.core.auth import Principal
from service.core.errors import Conflict, DomainError, InvalidInput, NotFound
from service.core.fetch import SafeFetcher
from service.core.timestamps import aware, iso_utc, utcnow
from service.db.models import ApiKey, Role, Webhook, WebhookDelivery

log = logging.getLogger(__name__)

EVENTS = (
    "check.likely_counterfeit",
    "review.confirmed",
    "seller.risk_raised",
    "scan.completed",
    "complaint.filed",
    "complaint.fast_tracked",
    "complaint.decided",
    "complaint.reopened",
    "test_purchase.recorded",
)
MAX_ATTEMPTS = 10
MAX_BACKOFF_SECONDS = 3600.0


@dataclass(frozen=True)
class Event:
    name: str
    brand: str | None  # whose data it is about
    payload: dict[str, Any]
    caused_by_key: str | None = (
        None  # the API key whose request caused it: its platform tenant may hear of it
    )
    platform: str | None = None  # a platform tenant it is addressed to, whoever caused it (a complaint's)


def _receives(hook: Webhook, event: Event, platform_of: dict[str, str | None]) -> bool:
    if event.name not in hook.events:
        return False
    if hook.brand is not None:
        return hook.brand == event.brand
    if hook.platform is not None:
        if event.platform is not None:
            return event.platform == hook.platform
        return event.caused_by_key is not None and platform_of.get(event.caused_by_key) == hook.platform
    return True  # the operator's endpoint


def enqueue(session: Session, events: Iterable[Event]) -> int:
    """Add a delivery per event for every live endpoint subscribed to it whose owner may see it. Call inside
    the transaction that records the events (one query for the endpoints and one for the causing keys' tenants,
    however many events: a group commit carries many checks); returns how many were queued."""
    events = list(events)
    if not events:
        return 0
    hooks = session.scalars(select(Webhook).where(Webhook.deleted_at.is_(None))).all()
    keys = {event.caused_by_key for event in events if event.caused_by_key}
    platform_of: dict[str, str | None] = {}
    if keys and any(hook.platform for hook in hooks):
        platform_of = {
            key_id: platform
            for key_id, platform in session.execute(
                select(ApiKey.id, ApiKey.platform).where(ApiKey.id.in_(keys))
            )
        }
    now = utcnow()
    queued = 0
    for event in events:
        name, brand, payload = event.name, event.brand, event.payload
        for hook in hooks:
            if _receives(hook, event, platform_of):
                session.add(
                    WebhookDelivery(
                        id="dlv_" + secrets.token_hex(10),
                        webhook_id=hook.id,
                        event=name,
                        payload={"event": name, "brand": brand, "at": iso_utc(now), "data": payload},
                        state="pending",
                        attempts=0,
                        next_attempt_at=now,
                    )
                )
                queued += 1
    return queued


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(hook: Webhook, timestamp: int, body: bytes) -> str:
    parts = [f"t={timestamp}", f"v1={signature(hook.secret, timestamp, body)}"]
    if hook.previous_secret and hook.previous_valid_until and aware(hook.previous_valid_until) > utcnow():
        parts.append(f"v1={signature(hook.previous_secret, timestamp, body)}")
    return ",".join(parts)


def backoff_seconds(attempts: int, base: float) -> float:
    return min(base * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS) * random.uniform(0.5, 1.5)


class WebhookDeliverer:
    """Delivers due outbox rows on a thread, while this process holds the maintenance lease."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        fetcher: SafeFetcher,
        retry_base_seconds: float = 1.0,
        poll_seconds: float = 0.2,
    ):
        self.sessions = sessions
        self.fetcher = fetcher
        self.retry_base = retry_base_seconds
        self.poll = poll_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    def ensure_running(self) -> None:
        if self._closed:
            return  # the process is shutting down: a last maintenance poll must not restart delivery
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="webhook-deliverer", daemon=True)
            self._thread.start()

    def stop(self, final: bool = False, wait: float = 0.0) -> None:
        """Stop delivering (the lease moved, or with ``final`` the process is closing: for good)."""
        self._closed = self._closed or final
        self._stop.set()
        self._wake.set()
        if wait and self._thread is not None:
            self._thread.join(wait)

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                delivered = self.deliver_due()
            except Exception:  # keep delivering; the rows stay due
                log.exception("Webhook delivery round failed")
                delivered = 0
            if not delivered:
                self._wake.wait(self.poll)
                self._wake.clear()

    def deliver_due(self, limit: int = 50) -> int:
        with self.sessions() as session:
            due = session.execute(
                select(WebhookDelivery, Webhook)
                .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                .where(WebhookDelivery.state == "pending", WebhookDelivery.next_attempt_at <= utcnow())
                .order_by(WebhookDelivery.next_attempt_at)
                .limit(limit)
            ).all()
            session.expunge_all()
        for delivery, hook in due:
            self._attempt(delivery, hook)
        return len(due)

    def _attempt(self, delivery: WebhookDelivery, hook: Webhook) -> None:
        if hook.deleted_at is not None:
            return self._record(delivery.id, "failed", delivery.attempts, None, "the webhook was deleted")
        body = json.dumps({"id": delivery.id, **delivery.payload}, separators=(",", ":")).encode()
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "Counterfeit-Event": delivery.event,
            "Counterfeit-Delivery": delivery.id,
            "Counterfeit-Signature": signature_header(hook, timestamp, body),
        }
        status, error = None, None
        try:
            status = self.fetcher.post(hook.url, body, headers, timeout=5.0)
        except DomainError as exc:
            error = exc.message
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}"
        attempts = delivery.attempts + 1
        if status is not None and 200 <= status < 300:
            return self._record(delivery.id, "delivered", attempts, status, None)
        error = error or f"HTTP {status}"
        if attempts >= MAX_ATTEMPTS:
            return self._record(delivery.id, "failed", attempts, status, error)
        self._record(
            delivery.id,
            "pending",
            attempts,
            status,
            error,
            utcnow() + timedelta(seconds=backoff_seconds(attempts, self.retry_base)),
        )

    def _record(
        self,
        delivery_id: str,
        state: str,
        attempts: int,
        status: int | None,
        error: str | None,
        next_attempt_at=None,
    ) -> None:
        with self.sessions() as session:
            row = session.get(WebhookDelivery, delivery_id)
            row.state, row.attempts, row.last_status, row.last_error = (
                state,
                attempts,
                status,
                (error or None),
            )
            if next_attempt_at is not None:
                row.next_attempt_at = next_attempt_at
            if state == "delivered":
                row.delivered_at = utcnow()
            session.commit()


def delivery_to_dict(r: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": r.id,
        "event": r.event,
        "state": r.state,
        "attempts": r.attempts,
        "last_status": r.last_status,
        "last_error": r.last_error,
        "created_at": iso_utc(r.created_at),
        "delivered_at": iso_utc(r.delivered_at) if r.delivered_at else None,
        "next_attempt_at": iso_utc(r.next_attempt_at) if r.state == "pending" else None,
    }


class WebhookRegistry:
    def __init__(self, sessions: sessionmaker[Session], fetcher: SafeFetcher):
        self.sessions = sessions
        self.fetcher = fetcher

    def create(self, url: str, events: Iterable[str], owner: Principal) -> dict[str, Any]:
        events = sorted(set(events))
        unknown = [e for e in events if e not in EVENTS]
        if not events or unknown:
            raise InvalidInput("invalid_events", f"events must be a non-empty list of: {', '.join(EVENTS)}.")
        self.fetcher.check_target(url)  # public https/http targets only, like image URLs
        hook = Webhook(
            id="whk_" + secrets.token_hex(8),
            brand=owner.brand_scope(),
            platform=owner.platform_scope(),
            url=url,
            events=events,
            secret="whsec_" + secrets.token_urlsafe(32),
            api_key_id=owner.key_id,
        )
        with self.sessions() as session:
            session.add(hook)
            session.commit()
            return {**self.describe(hook), "secret": hook.secret}

    @staticmethod
    def _owned_by(caller: Principal):
        """The SQL condition for the endpoints ``caller`` owns (an admin: every one)."""
        if caller.role is Role.brand:
            return Webhook.brand == caller.brand
        if caller.role is Role.platform:
            return (Webhook.platform == caller.platform) & Webhook.brand.is_(None)
        return Webhook.id.is_not(None)

    def mine(self, caller: Principal) -> list[Webhook]:
        with self.sessions() as session:
            query = select(Webhook).where(Webhook.deleted_at.is_(None), self._owned_by(caller))
            return list(session.scalars(query.order_by(Webhook.created_at)))

    def get(self, webhook_id: str, caller: Principal) -> Webhook:
        with self.sessions() as session:
            hook = session.scalar(
                select(Webhook).where(
                    Webhook.id == webhook_id, Webhook.deleted_at.is_(None), self._owned_by(caller)
                )
            )
        if hook is None:
            raise NotFound("not_found", "No such webhook.")
        return hook

    def delete(self, webhook_id: str, caller: Principal) -> dict[str, Any]:
        self.get(webhook_id, caller)
        with self.sessions() as session:
            hook = session.get(Webhook, webhook_id)
            hook.deleted_at = utcnow()
            session.commit()
            return self.describe(hook)

    def rotate(self, webhook_id: str, caller: Principal, overlap_hours: float) -> dict[str, Any]:
        self.get(webhook_id, caller)
        with self.sessions() as session:
            hook = session.get(Webhook, webhook_id)
            hook.previous_secret, hook.secret = hook.secret, "whsec_" + secrets.token_urlsafe(32)
            hook.previous_valid_until = utcnow() + timedelta(hours=overlap_hours)
            session.commit()
            return {**self.describe(hook), "secret": hook.secret}

    def deliveries(self, webhook_id: str, caller: Principal, limit: int) -> list[dict[str, Any]]:
        self.get(webhook_id, caller)
        with self.sessions() as session:
            rows = session.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.webhook_id == webhook_id)
                .order_by(WebhookDelivery.created_at.desc())
                .limit(limit)
            ).all()
        return [delivery_to_dict(r) for r in rows]

    def ping(self, webhook_id: str, caller: Principal) -> dict[str, Any]:
        """Queue a ``ping`` to the endpoint now (signed like any event): a receiver is tested without waiting
        for a real event."""
        hook = self.get(webhook_id, caller)
        payload = {
            "event": "ping",
            "brand": hook.brand,
            "at": iso_utc(utcnow()),
            "data": {"webhook_id": hook.id},
        }
        return self._queue(hook.id, "ping", payload)

    def redeliver(self, webhook_id: str, delivery_id: str, caller: Principal) -> dict[str, Any]:
        """Send a past delivery's payload again, as a new delivery (a receiver that lost or rejected it)."""
        self.get(webhook_id, caller)
        with self.sessions() as session:
            old = session.get(WebhookDelivery, delivery_id)
        if old is None or old.webhook_id != webhook_id:
            raise NotFound("not_found", "No such delivery of this webhook.")
        if old.state == "pending":
            raise Conflict("delivery_pending", "That delivery is still being tried; wait for it to end.")
        return self._queue(webhook_id, old.event, old.payload)

    def _queue(self, webhook_id: str, event: str, payload: dict[str, Any]) -> dict[str, Any]:
        now = utcnow()
        delivery = WebhookDelivery(
            id="dlv_" + secrets.token_hex(10),
            webhook_id=webhook_id,
            event=event,
            payload=payload,
            state="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        with self.sessions() as session:
            session.add(delivery)
            session.commit()
            return delivery_to_dict(delivery)

    @staticmethod
    def describe(hook: Webhook) -> dict[str, Any]:
        return {
            "id": hook.id,
            "url": hook.url,
            "events": hook.events,
            "brand": hook.brand,
            "created_at": iso_utc(hook.created_at),
            "previous_secret_valid_until": iso_utc(hook.previous_valid_until)
            if hook.previous_valid_until
            else None,
        }
