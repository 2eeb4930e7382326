"""Review feedback: confirmed outcomes of checks, optionally fed straight into the known-fake bank."""

from __future__ import annotations

from typing import Any, Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from index.generations import Generations
from scoring.features import FEATURE_NAMES
from service.checks.policies import PolicyStore
from service.core.audit import audit_event
from service.core.auth import Principal
from service.core.blobs import BlobStore
from service.core.errors import Conflict, DomainError, not_found
from service.db.models import Check, Label, Review
from service.exchange.webhooks import Event, enqueue
from service.references.registry import NewReference, ReferenceRegistry
from service.settings import Settings


class ReviewService:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        blobs: BlobStore,
        registry: ReferenceRegistry,
        policies: PolicyStore,
        on_event: Callable[[], None] = lambda: None,
    ):
        self.sessions = sessions
        self.blobs = blobs
        self.registry = registry
        self.policies = policies
        self.on_event = on_event  # wakes the webhook deliverer

    def review(self, check_id: str, label: Label, principal: Principal, note: str | None) -> dict[str, Any]:
        with self.sessions() as session:
            check = session.get(Check, check_id)
        scope = principal.brand_scope()
        if check is None or (scope is not None and check.brand != scope):
            raise not_found("check")  # a brand cannot tell another brand's checks from missing ones
        added, reason = self.bank_if_opted_in(check, label, principal)
        with self.sessions() as session:
            review = self.record(session, check, label, principal, note, added)
            session.commit()
        self.on_event()
        return {
            "id": review.id,
            "check_id": check.id,
            "label": label.value,
            "brand": check.brand,
            "added_reference_id": added,
            **({"not_added_because": reason} if reason else {}),
        }

    def bank_if_opted_in(
        self, check: Check, label: Label, principal: Principal
    ) -> tuple[int | None, str | None]:
        """A confirmed counterfeit joins its brand's known-fake bank when the brand's policy says so: the new
        reference's id, or why it was not added (None, None: the policy does not add)."""
        policy = self.policies.get(check.brand) if check.brand else None
        if label is Label.counterfeit and policy and policy.auto_add_confirmed_counterfeits:
            return self._add_to_bank(check, principal)
        return None, None

    @staticmethod
    def record(
        session: Session,
        check: Check,
        label: Label,
        principal: Principal,
        note: str | None,
        added: int | None,
    ) -> Review:
        """The review, its audit row and (for a counterfeit) its event, in the caller's transaction."""
        review = Review(
            check_id=check.id,
            label=label,
            api_key_id=principal.key_id,
            person_id=principal.person_id,
            note=note,
            added_reference_id=added,
        )
        session.add(review)
        session.add(
            audit_event(
                principal, "check.review", check.brand, check.id, label=label.value, added_reference_id=added
            )
        )
        if label is Label.counterfeit:  # announced from the outbox, committed with the review
            enqueue(
                session,
                [
                    Event(
                        "review.confirmed",
                        check.brand,
                        {"check_id": check.id, "label": label.value, "added_reference_id": added},
                        check.api_key_id,
                    )
                ],
            )
        session.flush()  # the review's id
        return review

    def _add_to_bank(self, check: Check, principal: Principal) -> tuple[int | None, str | None]:
        if not self.blobs.exists(check.image_sha256):
            return None, (
                "the checked image was not kept: the brand's policy did not add confirmed "
                "counterfeits to the bank when the check was made, or its retention expired"
            )
        try:
            reference, _ = self.registry.register(
                NewReference(brand=check.brand, label=Label.counterfeit, source=f"review:{check.id}"),
                self.blobs.get(check.image_sha256),
                principal,
            )
        except DomainError as exc:  # e.g. the same photo is registered as authentic
            return None, exc.message
        return reference.id, None


def review_training_examples(
    sessions: sessionmaker[Session], settings: Settings
) -> tuple[str, list[list[float]], list[int], list[str | None]]:
    """Features, confirmed labels and brands of reviewed checks made with the current index's model."""
    current = Generations(settings.index_dir).current()
    if current is None:
        raise Conflict("no_index", "There is no index yet, so no model to calibrate for.")
    fingerprint = current.fingerprint
    with sessions() as session:
        rows = session.execute(
            select(Check.features, Review.label, Check.brand)
            .join(Review, Review.check_id == Check.id)
            .where(Check.model_fingerprint == fingerprint)
        ).all()
    usable = [row for row in rows if row[0] and set(FEATURE_NAMES) <= row[0].keys()]
    return (
        fingerprint,
        [[features[name] for name in FEATURE_NAMES] for features, _, _ in usable],
        [int(label is Label.counterfeit) for _, label, _ in usable],
        [brand for _, _, brand in usable],
    )
