"""SQLAlchemy 2 tables. The database is the source of truth; FAISS indexes are derived from it."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from service.core.timestamps import utcnow

# Ids are 64-bit everywhere (the API takes 1 … 2^63-1). SQLite's INTEGER already is, and must stay
# spelled INTEGER for a primary key to be the rowid; PostgreSQL needs BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class Label(str, enum.Enum):
    authentic = "authentic"
    counterfeit = "counterfeit"


class Role(str, enum.Enum):
    admin = "admin"
    brand = "brand"
    platform = "platform"
    exchange = "exchange"  # a peer platform: reads this platform's signed exchange feed, nothing else


class Reference(Base):
    """A brand's registered reference image: a photo of its genuine product or of a known fake."""

    __tablename__ = "reference_images"
    __table_args__ = (
        # One live reference per (brand, image bytes): makes registration idempotent.
        Index(
            "uq_live_reference",
            "brand",
            "sha256",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index("ix_reference_listing", "brand", "label", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brand: Mapped[str] = mapped_column(String(64), nullable=False)
    label: Mapped[Label] = mapped_column(Enum(Label, native_enum=False, length=16), nullable=False)
    product: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str | None] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    width: Mapped[int] = mapped_column(Integer, nullable=False)
    height: Mapped[int] = mapped_column(Integer, nullable=False)
    content_type: Mapped[str | None] = mapped_column(String(100))
    pdq_hash: Mapped[str | None] = mapped_column(String(64))  # hex, 256 bits
    pdq_quality: Mapped[int | None] = mapped_column(Integer)
    # Cross-platform sharing of known-fake *signals* (embeddings/hashes, never the image bytes)
    # is opt-in per reference; the flag lives with the row so an exporter can filter on it.
    share_signals: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    extra: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, nullable=False, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Embedding(Base):
    """A reference's vector under one model fingerprint; lets an index be rebuilt without re-embedding."""

    __tablename__ = "embeddings"

    reference_id: Mapped[int] = mapped_column(BigId, ForeignKey("reference_images.id"), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(32), primary_key=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)  # float32, little-endian
    # The reference's region vectors (index/regions.py), n × dimension float32, and the preset that cut them;
    # NULL: the whole image only (rows from before regions, or models that decode on their device).
    regions: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    region_preset: Mapped[str | None] = mapped_column(String(16), nullable=True)


class ReferenceKeypointsRow(Base):
    """A reference's SIFT keypoints and its mirror image's (index.local_features), packed; model-independent,
    so computed once at registration and kept across reindexes."""

    __tablename__ = "reference_keypoints"

    reference_id: Mapped[int] = mapped_column(BigId, ForeignKey("reference_images.id"), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class ChangeOp(str, enum.Enum):
    add = "add"
    remove = "remove"


class Change(Base):
    """Append-only change log. Index replicas apply changes with ``seq`` above their snapshot's."""

    __tablename__ = "changes"
    __table_args__ = {"sqlite_autoincrement": True}  # never reuse a sequence number

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    reference_id: Mapped[int] = mapped_column(BigId, nullable=False)
    brand: Mapped[str] = mapped_column(String(64), nullable=False)
    op: Mapped[ChangeOp] = mapped_column(Enum(ChangeOp, native_enum=False, length=8), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class Check(Base):
    """Audit trail: every check a platform made and what we answered."""

    __tablename__ = "checks"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, index=True
    )
    api_key_id: Mapped[str | None] = mapped_column(String(40))
    brand_hint: Mapped[str | None] = mapped_column(String(64))
    brand: Mapped[str | None] = mapped_column(String(64))
    image_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    pdq_hash: Mapped[str | None] = mapped_column(String(64))
    pdq_quality: Mapped[int | None] = mapped_column(Integer)
    features: Mapped[dict[str, float]] = mapped_column(
        JSON, nullable=False, default=dict
    )  # what the scorer saw
    verdict: Mapped[str] = mapped_column(String(32), nullable=False)
    probability: Mapped[float] = mapped_column(Float, nullable=False)
    evidence_ids: Mapped[list[int]] = mapped_column(JSON, nullable=False, default=list)
    model_fingerprint: Mapped[str] = mapped_column(String(32), nullable=False)
    scorer: Mapped[str] = mapped_column(String(64), nullable=False)
    evidence: Mapped[list[dict[str, Any]] | None] = mapped_column(
        JSON
    )  # as answered: what a reviewer is shown


class Access(str, enum.Enum):
    """What a person may do in the workbench, within their tenant (service/core/people.py)."""

    viewer = "viewer"  # reads queues, items, complaints and reports; decides nothing
    reviewer = "reviewer"  # also decides: reviews, complaint decisions, bulk actions
    manager = "manager"  # also manages the tenant's people (a brand's or a platform's admin)


class Person(Base):
    """An analyst's own account: a brand's, a platform tenant's or the service's (role admin).

    API keys stay for machines; people log in to the workbench with a password (argon2id) and every
    decision they take is audited under their own id."""

    __tablename__ = "people"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200), nullable=False)
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=16), nullable=False)
    brand: Mapped[str | None] = mapped_column(String(64), index=True)
    platform: Mapped[str | None] = mapped_column(String(64), index=True)
    access: Mapped[Access] = mapped_column(Enum(Access, native_enum=False, length=16), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(40))  # the key or person that added them
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failed_logins: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ReviewCase(Base):
    """A brand's analysts' case about one listing or one seller: its checks reviewed together, with a status,
    an assignee and notes (service/checks/review_cases.py)."""

    __tablename__ = "review_cases"
    __table_args__ = (
        Index("ux_review_cases_subject", "brand", "subject_kind", "marketplace", "subject", unique=True),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    brand: Mapped[str] = mapped_column(String(64), nullable=False)
    subject_kind: Mapped[str] = mapped_column(String(16), nullable=False)  # listing or seller
    marketplace: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    subject: Mapped[str] = mapped_column(String(200), nullable=False)  # the listing id or the seller id
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="new")
    assignee_id: Mapped[str | None] = mapped_column(String(40))  # a person of the brand
    notes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False, default=list)
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class UiSession(Base):
    """A reviewer's browser session (service/api/ui.py): the cookie holds a random token, stored here hashed.

    It belongs to an API key (machines' and operators' way in) or to a person (``person_id``)."""

    __tablename__ = "ui_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    api_key_id: Mapped[str | None] = mapped_column(String(40))
    person_id: Mapped[str | None] = mapped_column(String(40))
    csrf_token: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class ApiKey(Base):
    """API keys, stored as sha256 of the token (tokens are 256-bit random, so no slow hash is needed)."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=16), nullable=False)
    brand: Mapped[str | None] = mapped_column(String(64))
    # The platform tenant a platform key belongs to: what it creates (webhooks, scans) is that platform's only.
    platform: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # After this moment the key stops working; set at creation or by a rotation's overlap.
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    replaced_by: Mapped[str | None] = mapped_column(String(40))  # the key a rotation issued in its place


class Job(Base):
    """A batch job (reindex). Progress is written as it goes, so any process can report on it."""

    __tablename__ = "jobs"
    __table_args__ = (
        # At most one live job of a kind in the whole cluster: two replicas asked at the same moment
        # cannot both insert one (the second insert fails and is answered 409).
        Index(
            "uq_one_live_job_per_kind",
            "kind",
            unique=True,
            sqlite_where=text("state IN ('queued', 'running')"),
            postgresql_where=text("state IN ('queued', 'running')"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    state: Mapped[str] = mapped_column(
        String(16), nullable=False, index=True
    )  # queued running succeeded failed cancelled
    params: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    total: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    done: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    embedded: Mapped[int] = mapped_column(
        Integer, nullable=False, default=0
    )  # embedded by this run (not resumed)
    images_per_second: Mapped[float | None] = mapped_column(Float)
    failures: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False, default=list)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    error: Mapped[str | None] = mapped_column(String(4000))
    cancel_requested: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    owner: Mapped[str | None] = mapped_column(String(300))  # "host:pid" of the process running it
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class BrandPolicy(Base):
    """Per-brand decision thresholds (None: the global default) and review automation."""

    __tablename__ = "brand_policies"

    brand: Mapped[str] = mapped_column(String(64), primary_key=True)
    counterfeit_threshold: Mapped[float | None] = mapped_column(Float)
    authentic_threshold: Mapped[float | None] = mapped_column(Float)
    # A review confirming a counterfeit adds the checked photo to the brand's known-fake bank at once.
    auto_add_confirmed_counterfeits: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class Listing(Base):
    """A checked marketplace listing: its photos' checks combined, and who sells it (for seller risk)."""

    __tablename__ = "listings"
    __table_args__ = (Index("ix_listings_seller", "marketplace", "seller_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    listing_id: Mapped[str | None] = mapped_column(String(200))  # the platform's own id
    seller_id: Mapped[str | None] = mapped_column(String(200))
    marketplace: Mapped[str | None] = mapped_column(String(100))
    brand: Mapped[str | None] = mapped_column(String(64), index=True)
    verdict: Mapped[str] = mapped_column(String(32), nullable=False)
    probability: Mapped[float] = mapped_column(Float, nullable=False)
    check_ids: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    title: Mapped[str | None] = mapped_column(String(500))
    price: Mapped[float | None] = mapped_column(Float)
    currency: Mapped[str | None] = mapped_column(String(3))
    url: Mapped[str | None] = mapped_column(String(2000))
    api_key_id: Mapped[str | None] = mapped_column(String(40))
    # The platform tenant a listing belongs to when no platform key made it: an upheld complaint's listing.
    platform: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, index=True
    )


class Complaint(Base):
    """A brand's notice about a listing on a platform tenant: triaged, decided, reopened by a counter-notice
    (service/marketplace/complaints.py)."""

    __tablename__ = "complaints"
    __table_args__ = (Index("ix_complaints_queue", "platform", "state", "due_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    platform: Mapped[str] = mapped_column(String(64), nullable=False)  # the tenant that decides it
    brand: Mapped[str] = mapped_column(String(64), nullable=False, index=True)  # the complainant
    claim: Mapped[str] = mapped_column(String(32), nullable=False)
    statement: Mapped[str] = mapped_column(String(5000), nullable=False)
    listing: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)  # listing_id, url, seller, title
    listing_ref: Mapped[str | None] = mapped_column(String(40))  # the platform's own listing check it names
    photo_check_ids: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    reference_ids: Mapped[list[int]] = mapped_column(JSON, nullable=False, default=list)
    triage: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    lane: Mapped[str] = mapped_column(String(16), nullable=False)  # fast | normal
    state: Mapped[str] = mapped_column(String(16), nullable=False)  # open | upheld | rejected
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    decision: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # outcome, action, reason, by, breached
    upheld_listing_ref: Mapped[str | None] = mapped_column(String(40))  # the listing row an uphold added
    upheld_review_ids: Mapped[list[int]] = mapped_column(JSON, nullable=False, default=list)
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False, default=list)
    api_key_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class EvidencePhoto(Base):
    """A photo kept as evidence of a complaint or a test purchase (not subject to check-image retention)."""

    __tablename__ = "evidence_photos"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    owner_id: Mapped[str] = mapped_column(String(40), nullable=False, index=True)  # cmp_… or tp_…
    sha256: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    check_id: Mapped[str | None] = mapped_column(String(40))


class TestPurchase(Base):
    """An order placed to test a listing, and what the examiner found in the item received."""

    __tablename__ = "test_purchases"
    __table_args__ = (Index("ux_test_purchases_order", "platform", "brand", "order_reference", unique=True),)
    __test__ = False  # not a pytest class, whatever its name

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    platform: Mapped[str] = mapped_column(String(64), nullable=False)
    brand: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    listing: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    order_reference: Mapped[str] = mapped_column(String(200), nullable=False)
    ordered_on: Mapped[str] = mapped_column(String(10), nullable=False)  # ISO dates
    received_on: Mapped[str | None] = mapped_column(String(10))
    outcome: Mapped[str] = mapped_column(String(32), nullable=False)
    examiner_note: Mapped[str] = mapped_column(String(5000), nullable=False)
    listing_ref: Mapped[str | None] = mapped_column(String(40))  # the confirmed listing row it added
    reference_ids: Mapped[list[int]] = mapped_column(JSON, nullable=False, default=list)
    api_key_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class PlatformPolicy(Base):
    """A platform tenant's complaint handling: the fast-track bar and the two lanes' service levels."""

    __tablename__ = "platform_policies"

    platform: Mapped[str] = mapped_column(String(64), primary_key=True)
    fast_track_bar: Mapped[float] = mapped_column(Float, nullable=False)
    fast_sla_hours: Mapped[float] = mapped_column(Float, nullable=False)
    normal_sla_hours: Mapped[float] = mapped_column(Float, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class ScanItem(Base):
    """One listing of a catalogue scan (service/jobs/scans.py): pending until checked; its outcome kept for queries."""

    __tablename__ = "scan_items"
    __table_args__ = (Index("ix_scan_items_job_state", "job_id", "state", "row"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(40), nullable=False)
    row: Mapped[int] = mapped_column(Integer, nullable=False)  # position in the feed (1-based)
    listing: Mapped[dict[str, Any]] = mapped_column(
        JSON, nullable=False
    )  # the feed row (identifiers keyed on use)
    state: Mapped[str] = mapped_column(String(16), nullable=False)  # pending | done | failed
    verdict: Mapped[str | None] = mapped_column(String(32))
    probability: Mapped[float | None] = mapped_column(Float)
    brand: Mapped[str | None] = mapped_column(String(64))
    listing_check_id: Mapped[str | None] = mapped_column(String(40))
    error: Mapped[str | None] = mapped_column(String(500))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SellerIdentifier(Base):
    """A listing's seller identifier as a keyed hash (service/exchange/identifiers.py): never the raw value."""

    __tablename__ = "seller_identifiers"
    __table_args__ = (Index("ix_seller_identifiers_digest", "key_id", "digest"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    listing_ref: Mapped[str] = mapped_column(ForeignKey("listings.id"), nullable=False, index=True)
    marketplace: Mapped[str] = mapped_column(String(100), nullable=False)
    seller_id: Mapped[str] = mapped_column(String(200), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # email | phone | payout_account | shop_url
    key_id: Mapped[str] = mapped_column(String(32), nullable=False)
    digest: Mapped[str] = mapped_column(String(64), nullable=False)


class Webhook(Base):
    """An endpoint a brand or platform registered for events (service/exchange/webhooks.py)."""

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    brand: Mapped[str | None] = mapped_column(
        String(64), index=True
    )  # a brand's hook: only its brand's events
    # A platform tenant's hook: only events its own keys' checks, listings and scans caused. Neither set: the
    # operator's (an admin key's) hook, which receives every event it subscribed to.
    platform: Mapped[str | None] = mapped_column(String(64), index=True)
    url: Mapped[str] = mapped_column(String(2000), nullable=False)
    events: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    secret: Mapped[str] = mapped_column(String(100), nullable=False)
    previous_secret: Mapped[str | None] = mapped_column(String(100))  # still signs until previous_valid_until
    previous_valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    api_key_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebhookDelivery(Base):
    """The outbox: written in the same transaction as the event, delivered (and retried) from here."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id"), nullable=False, index=True)
    event: Mapped[str] = mapped_column(String(40), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False)  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LookalikeProbe(Base):
    """A brand's look-alike classifier for one model (scoring.lookalike), or why it abstains.

    Kept in the database, not on one node's disk: every replica scores with the same probe."""

    __tablename__ = "lookalike_probes"

    brand: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_fingerprint: Mapped[str] = mapped_column(String(32), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), nullable=False)  # trained | abstained
    version: Mapped[str | None] = mapped_column(String(40))
    reason: Mapped[str | None] = mapped_column(String(500))  # why it abstains
    trained_through_seq: Mapped[int] = mapped_column(BigInteger, nullable=False)  # change log read up to here
    artefact: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # BrandProbe.to_dict()
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class Review(Base):
    """A confirmed outcome of a check: training data for calibration."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    check_id: Mapped[str] = mapped_column(ForeignKey("checks.id"), nullable=False, index=True)
    label: Mapped[Label] = mapped_column(Enum(Label, native_enum=False, length=16), nullable=False)
    api_key_id: Mapped[str | None] = mapped_column(String(40))
    person_id: Mapped[str | None] = mapped_column(String(40))  # the analyst who decided, in the workbench
    note: Mapped[str | None] = mapped_column(String(1000))
    added_reference_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class SharedSignal(Base):
    """A known-fake signal another platform shared (a PDQ hash, never the image), from a signed bundle."""

    __tablename__ = "shared_signals"
    __table_args__ = (Index("ix_shared_issuer_brand", "issuer", "brand"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    issuer: Mapped[str] = mapped_column(String(200), nullable=False)
    brand: Mapped[str] = mapped_column(String(64), nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)  # lets exact re-uploads match too
    pdq_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    pdq_quality: Mapped[int] = mapped_column(Integer, nullable=False)
    product: Mapped[str | None] = mapped_column(String(200))
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    entry_key: Mapped[str | None] = mapped_column(
        String(200), index=True
    )  # from a pulled feed; None: from a bundle


class FeedEntry(Base):
    """One entry of this platform's exchange feed (service/exchange/feed.py), append-only; ``seq`` is the peers' cursor.

    The latest entry of a ``entry_key`` is its state: ``add`` (with ``data``) or ``withdraw`` (a tombstone)."""

    __tablename__ = "feed_entries"

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    entry_key: Mapped[str] = mapped_column(String(200), nullable=False, index=True)
    type: Mapped[str] = mapped_column(String(16), nullable=False)  # pdq | seller
    brand: Mapped[str] = mapped_column(String(64), nullable=False)
    op: Mapped[str] = mapped_column(String(16), nullable=False)  # add | withdraw
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class SharedSellerSignal(Base):
    """A keyed seller identifier a peer's feed reported (never a raw value): raises local sellers' risk."""

    __tablename__ = "shared_seller_signals"
    __table_args__ = (Index("ix_shared_seller_digest", "key_id", "digest"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    issuer: Mapped[str] = mapped_column(String(200), nullable=False)
    entry_key: Mapped[str] = mapped_column(String(200), nullable=False, index=True)
    brand: Mapped[str] = mapped_column(String(64), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    key_id: Mapped[str] = mapped_column(String(32), nullable=False)
    digest: Mapped[str] = mapped_column(String(64), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # confirmed | likely
    reason: Mapped[str] = mapped_column(String(300), nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)  # the issuer's feed position it came from
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class ExchangeCursor(Base):
    """How far this platform has pulled each peer's feed, and how the last pull went."""

    __tablename__ = "exchange_cursors"

    issuer: Mapped[str] = mapped_column(String(200), primary_key=True)
    cursor: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    last_served_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True)
    )  # replayed older pages are refused
    pulled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    skipped_entries: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))


class AuditEvent(Base):
    """Who changed what: every state-changing action, written in the same transaction as the change."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_brand_id", "brand", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    actor_key_id: Mapped[str | None] = mapped_column(String(40))  # None: the operator's CLI
    actor_role: Mapped[str] = mapped_column(String(16), nullable=False)
    actor_person_id: Mapped[str | None] = mapped_column(String(40))  # a person in the workbench, not a key
    action: Mapped[str] = mapped_column(String(40), nullable=False, index=True)
    brand: Mapped[str | None] = mapped_column(String(64))  # whose data it touched; brands read their own
    target: Mapped[str | None] = mapped_column(String(80))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    request_id: Mapped[str | None] = mapped_column(String(40))


class Lease(Base):
    """Who does the cluster's once-only background work (snapshots, retention GC) until when.

    A replica renews its lease every poll; another takes it over once it has expired (its holder
    died or hangs), so the work is neither done twice nor stopped for longer than a lease."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class ModelArtefact(Base):
    """A model's derived artefacts (index.models.artefacts) and similarity profiles (scoring.profile), written
    once by the first process that needs them and read by every other: every replica, on any CPU or GPU,
    centres with the same stored mean, so all of them name the same embedding space."""

    __tablename__ = "model_artefacts"

    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class RateBucket(Base):
    """A key's token bucket, shared by every replica on PostgreSQL (service.core.ratelimit.SharedTokenBuckets)."""

    __tablename__ = "rate_buckets"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float, nullable=False)
    updated: Mapped[float] = mapped_column(
        Float, nullable=False
    )  # seconds since the epoch, the database's clock
    allowed: Mapped[bool] = mapped_column(Boolean, nullable=False)


class IndexPointer(Base):
    """The current index generation of the whole deployment (service.serving.generation_store): one row, id 1."""

    __tablename__ = "index_pointer"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    model_info: Mapped[dict[str, Any]] = mapped_column(
        JSON, nullable=False
    )  # the generation's fingerprint.json
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
