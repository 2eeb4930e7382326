"""Request and response models: what the OpenAPI documents is what the API accepts and answers.

Request models refuse unknown fields and coerce nothing (``0`` is not a boolean, ``"1"`` not a
number in JSON); form fields arrive as text, so form models coerce only from text.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import UploadFile
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    StringConstraints,
    create_model,
    model_validator,
)

from index.vector_index import INDEX_TYPES
from service.core.validation import (
    BRAND_SCHEMA,
    CURRENCY_PATTERN,
    HTTP_URL_PATTERN,
    LABEL_SCHEMA,
    MARKETPLACE_PATTERN,
    NO_NUL,
    FormBool,
    json_problem,
)
from service.db.models import Label
from service.exchange.identifier_kinds import IDENTIFIER_KINDS
from service.exchange.webhooks import EVENTS as WEBHOOK_EVENTS

Verdict = Literal["likely_counterfeit", "likely_authentic", "inconclusive", "no_match"]


def _json_number(value: Any) -> Any:
    if isinstance(value, (str, bool)):  # "0.5" and true are not numbers
        raise ValueError("must be a JSON number")
    return value


Number = Annotated[float, BeforeValidator(_json_number)]


# No text we keep has a NUL character, and PostgreSQL can neither store nor compare one.
Text = Annotated[StrictStr, StringConstraints(pattern=NO_NUL)]


class StrictBody(BaseModel):
    """A JSON request body: unknown fields are refused. Fields use strict types (StrictBool,
    StrictStr, Number) so nothing is coerced: ``0`` is not a boolean, ``"0.5"`` not a number; no number is
    infinite or NaN."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        """Text no database stores or UTF-8 JSON renders (NUL, an unpaired surrogate such as JSON "\\ud800")
        is refused in any field, before it reaches the domain (or argon2, which encodes passwords as UTF-8)."""
        problem = json_problem(data)
        if problem:
            raise ValueError(problem)
        return data


def _non_empty_text_fields(schema: dict[str, Any]) -> None:
    """Form fields are never empty (service.api.routes.refuse_empty_form_fields): say so in the OpenAPI."""
    for field in schema.get("properties", {}).values():
        for variant in field.get("anyOf", [field]):
            if variant.get("type") == "string" and variant.get("format") != "binary":
                variant.setdefault("minLength", 1)


class StrictForm(BaseModel):
    """A multipart form: unknown and empty fields are refused, and so are numbers like ``inf`` or ``1e999``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra=_non_empty_text_fields)


# ---- errors -------------------------------------------------------------------------------------
class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable reason, e.g. invalid_metadata")
    message: str = Field(description="What was wrong and how to fix it")
    request_id: str | None = Field(
        None, description="Quote it when reporting a problem; also in X-Request-ID"
    )


class ErrorBody(BaseModel):
    error: ErrorDetail


ERROR_DESCRIPTIONS = {
    400: "Empty image or malformed request",
    401: "Missing, unknown, expired or revoked API key",
    403: "The key's role or brand may not do this",
    404: "No such resource (another brand's resource looks the same)",
    408: "The request body was sent too slowly",
    409: "Conflicts with the current state",
    413: "Body, image or decoded image too large",
    422: "Invalid fields or an image that cannot be decoded",
    429: "Rate limit of this key exceeded (see Retry-After)",
    500: "Unexpected error (JSON, with a request id)",
    503: "At capacity or not ready (see Retry-After)",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses plus the ones every authenticated route can give."""
    codes = sorted({401, 403, 422, 429, 500, *statuses})
    return {code: {"model": ErrorBody, "description": ERROR_DESCRIPTIONS[code]} for code in codes}


# ---- references ---------------------------------------------------------------------------------
class RegisterForm(StrictForm):
    image: UploadFile = Field(description="The image file (JPEG, PNG, WebP, GIF, BMP, TIFF)")
    label: str = Field(description="authentic or counterfeit", json_schema_extra=LABEL_SCHEMA)
    brand: str | None = Field(
        None, description="Defaults to the brand of a brand key", json_schema_extra=BRAND_SCHEMA
    )
    product: str | None = Field(None, json_schema_extra={"maxLength": 200})
    source: str | None = Field(None, json_schema_extra={"maxLength": 500})
    metadata: str | None = Field(None, description="A JSON object (≤ 16 KiB, ≤ 8 levels, finite numbers)")
    share_signals: FormBool = Field(
        False, description="'true' allows sharing this reference's signals (not the image)"
    )


class PdqOut(BaseModel):
    hash: str
    quality: int


class ReferenceOut(BaseModel):
    id: int
    brand: str
    label: Label
    product: str | None
    source: str | None
    sha256: str
    width: int
    height: int
    content_type: str | None = Field(description="The format the stored bytes really are")
    pdq: PdqOut | None
    share_signals: bool
    metadata: dict[str, Any]
    created_at: str


class ReferencePage(BaseModel):
    items: list[ReferenceOut]
    next_cursor: str | None


class Deleted(BaseModel):
    id: int
    deleted: bool


# ---- checks -------------------------------------------------------------------------------------
# k's maximum (COUNTERFEIT_MAX_K) and the batch size are settings: service.app writes them into the OpenAPI.
K_SCHEMA = {"minimum": 1}


class CheckForm(StrictForm):
    image: UploadFile | None = Field(None, description="The photo; or give image_url instead")
    image_url: Text | None = Field(
        None,
        description="An http(s) URL the service fetches the photo from (public "
        "hosts only, at most 3 redirects, size and time capped)",
        max_length=2000,
        json_schema_extra={"pattern": HTTP_URL_PATTERN},
    )  # enforced by the fetcher
    brand: str | None = Field(
        None, description="Brand hint: search only this brand's references", json_schema_extra=BRAND_SCHEMA
    )
    k: int | None = Field(None, description="How many neighbours to consider", json_schema_extra=K_SCHEMA)


class CheckBatchForm(StrictForm):
    images: list[UploadFile] = Field(description="Up to COUNTERFEIT_MAX_BATCH_IMAGES image files")
    brand: str | None = Field(None, json_schema_extra=BRAND_SCHEMA)
    k: int | None = Field(None, json_schema_extra=K_SCHEMA)


# One optional field per seller identifier kind (service/exchange/identifier_kinds: a kind is one module there).
SellerIdentifierFields = create_model(
    "SellerIdentifierFields",
    __base__=StrictForm,
    **{
        kind.field: (Text | None, Field(None, max_length=kind.max_length, description=kind.description))
        for kind in IDENTIFIER_KINDS.values()
    },
)


class ListingCheckForm(SellerIdentifierFields):
    images: list[UploadFile] = Field(description="The listing's photos, up to COUNTERFEIT_MAX_LISTING_IMAGES")
    listing_id: Text | None = Field(None, description="The platform's id of the listing", max_length=200)
    seller_id: Text | None = Field(
        None, description="The platform's id of the seller (needs marketplace)", max_length=200
    )
    marketplace: Text | None = Field(
        None,
        description="Where the listing is; seller ids are per marketplace",
        max_length=100,
        pattern=MARKETPLACE_PATTERN,
    )
    title: Text | None = Field(None, max_length=500)
    price: float | None = Field(None, ge=0, description="Compared with the matched product's reference_price")
    currency: Text | None = Field(None, description="ISO 4217", pattern=CURRENCY_PATTERN)
    url: Text | None = Field(None, max_length=2000, pattern=HTTP_URL_PATTERN)
    brand: str | None = Field(None, json_schema_extra=BRAND_SCHEMA)
    k: int | None = Field(None, json_schema_extra=K_SCHEMA)


class Evidence(BaseModel):
    reference_id: int | None
    brand: str
    label: Label
    product: str | None
    similarity: float | None = Field(
        description="The embedding model's cosine similarity (= embedding_similarity)"
    )
    embedding_similarity: float | None = Field(
        None,
        description="Cosine similarity of the two photos' embeddings from the model the service runs (CLIP, or "
        "the offline EfficientNet backbone: see the answer's model)",
    )
    clip_similarity: float | None = Field(
        deprecated=True,
        description="The 1.x name of embedding_similarity, kept for old clients: the model need not be CLIP",
    )
    pdq_distance: int | None
    region: str | None = Field(
        None,
        description="The region of the checked photo that matched by CLIP: whole, mirror, "
        "centre-80 … (a region other than the whole counts 0.05 below its raw similarity)",
    )
    reference_region: str | None = Field(
        None,
        description="The region of the reference it matched: whole, centre-70, "
        "top-left … (also 0.05 below its raw similarity when not the whole)",
    )
    inliers: int | None = Field(
        None,
        description="Keypoint matches consistent with one geometric transform, where "
        "this candidate was verified by local features (index/local_features.py)",
    )
    inlier_coverage: float | None = Field(
        None, description="Those inliers over the keypoints a copy should show"
    )
    distinctiveness: float | None = Field(
        None,
        description="How far its embedding similarity stands out of the photo's "
        "neighbourhood: minus the mean of the 4 nearest photos of other banks "
        "(scoring/distinctiveness.py)",
    )
    signals: list[str] = Field(
        description="What matched: clip (the embedding model's neighbour — CLIP or the offline backbone, "
        "the name is historical — at or above the model's match similarity and distinctiveness), "
        "pdq (near-duplicate hash), local (verified geometric copy), shared (another "
        "platform's known-fake hash)"
    )
    shared_signal_id: int | None = None
    shared_by: str | None = None


class ModelRef(BaseModel):
    spec: str
    fingerprint: str
    weights_kind: str


class Classifier(BaseModel):
    """The brand's look-alike classifier, where it applied to this photo (scoring/lookalike.py)."""

    brand: str
    version: str
    probability: float = Field(description="Its calibrated probability that the photo shows a counterfeit")
    membership: float = Field(
        description="How far the photo's score as one of the brand's products is above the "
        "classifier's gate (≥ 0: it applies; the gate is a low percentile of the "
        "brand's own held-out references)"
    )
    cv_accuracy: float = Field(description="Cross-validated accuracy on the brand's references")
    cv_auc: float
    references: dict[str, int] = Field(description="References per bank it was fitted on")
    decides_at: dict[str, float] = Field(
        description="It decides counterfeit at or above `counterfeit`, authentic at or below `authentic` (each "
        "no nearer the middle than the brand's thresholds): where its held-out verdicts were right "
        "COUNTERFEIT_LOOKALIKE_MIN_PRECISION of the time; between, the check is inconclusive"
    )
    decided_share: float | None = Field(
        description="The share of the brand's held-out references those bounds decide (None: fitted before them)"
    )


class CheckResult(BaseModel):
    check_id: str
    verdict: Verdict
    counterfeit_probability: float
    brand: str | None
    evidence: list[Evidence]
    model: ModelRef
    scorer: str
    pdq: PdqOut
    regime: str | None = Field(
        None,
        description="What decided: copy (near-copies of references), lookalike (the "
        "brand's classifier), copy+lookalike (both), or null (no evidence: no_match)",
        json_schema_extra={"enum": ["copy", "lookalike", "copy+lookalike", None]},
    )
    classifier: Classifier | None = None


class BatchItem(BaseModel):
    index: int
    filename: str | None
    status: int = Field(description="200, or the status this image alone would have got")
    result: CheckResult | None = None
    error: ErrorDetail | None = None


class BatchResult(BaseModel):
    results: list[BatchItem]


# ---- reviews and policies -----------------------------------------------------------------------
class ReviewBody(StrictBody):
    label: Label
    note: Text | None = Field(None, max_length=1000)


class ListingFactor(BaseModel):
    factor: str = Field(description="photos, seller_risk or low_price")
    logit: float | None = Field(None, description="What it added to the log-odds")
    detail: str


class LinkedSeller(BaseModel):
    marketplace: str
    seller_id: str
    via: list[str] = Field(
        description="The kinds of identifier they share (email, phone, payout_account, shop_url)"
    )


class SharedSellerReport(BaseModel):
    shared_by: str = Field(
        description="The peer platform whose signed feed reported one of this seller's identifiers"
    )
    brand: str
    status: Literal["confirmed", "likely"]
    reason: str
    via: list[str] = Field(description="Kinds of identifier that matched (as keyed hashes, never raw)")
    weight: float = Field(description="How much this issuer counts (COUNTERFEIT_EXCHANGE_PEERS)")
    expires_at: str | None


class SellerOut(BaseModel):
    marketplace: str
    seller_id: str
    risk: float = Field(description="0-1, recency-weighted (see README, Sellers)")
    listings: int
    likely_counterfeit: int
    confirmed_counterfeit: int
    brands: list[str] = Field(description="Brands of its likely or confirmed counterfeit listings")
    first_seen: str | None
    last_seen: str | None
    linked_sellers: list[LinkedSeller] = Field(
        default_factory=list, description="Sellers sharing a keyed identifier; their listings count"
    )
    shared: list[SharedSellerReport] = Field(
        default_factory=list,
        description="What trusted peers' feeds report of its identifiers; counts in risk",
    )


class SellerPage(BaseModel):
    items: list[SellerOut]


class ListingResult(BaseModel):
    listing_check_id: str
    listing_id: str | None
    verdict: Verdict
    counterfeit_probability: float
    brand: str | None
    factors: list[ListingFactor]
    seller: SellerOut | None = Field(description="The seller's record before this listing")
    photos: list[BatchItem]


class ReviewOut(BaseModel):
    id: int
    check_id: str
    label: Label
    brand: str | None
    added_reference_id: int | None
    not_added_because: str | None = None


class PolicyBody(StrictBody):
    counterfeit_threshold: Number | None = Field(
        None,
        description="In (0, 1); null: the global default",
        json_schema_extra={"exclusiveMinimum": 0, "exclusiveMaximum": 1},
    )
    authentic_threshold: Number | None = Field(
        None,
        description="In (0, 1), below counterfeit_threshold",
        json_schema_extra={"exclusiveMinimum": 0, "exclusiveMaximum": 1},
    )
    auto_add_confirmed_counterfeits: StrictBool = False


class EffectiveThresholds(BaseModel):
    counterfeit_threshold: float
    authentic_threshold: float


class PolicyOut(BaseModel):
    brand: str
    counterfeit_threshold: float | None
    authentic_threshold: float | None
    auto_add_confirmed_counterfeits: bool
    effective: EffectiveThresholds


# ---- jobs ---------------------------------------------------------------------------------------
MODEL_SPEC_PATTERN = r"^(open_clip|timm):[^\s@]+(@\S+)?$"


class ReindexBody(StrictBody):
    model: Text | None = Field(
        None,
        max_length=500,
        description="A model spec, backend:architecture@weights "
        "(e.g. open_clip:ViT-B-32@laion2b_s34b_b79k); default: the model being served",
        json_schema_extra={"pattern": MODEL_SPEC_PATTERN},
    )  # enforced by parse_model_spec
    index_type: Text = Field(
        "auto",
        json_schema_extra={"enum": ["auto", *INDEX_TYPES]},
        description="auto: exact flat under 50,000 vectors, HNSW while it fits "
        "COUNTERFEIT_INDEX_MEMORY_GB (deletions are tombstones, compacted past "
        "20 %), IVF-PQ beyond",
    )
    engine: Text = Field("local", json_schema_extra={"enum": ["local", "ray"]})
    ray_address: Text | None = Field(None, max_length=500)


class JobAccepted(BaseModel):
    job_id: str
    state: str


class JobOut(BaseModel):
    id: str
    kind: str
    state: str
    params: dict[str, Any]
    done: int
    total: int
    embedded_this_run: int
    images_per_second: float | None
    eta_seconds: float | None
    failures: list[dict[str, Any]]
    result: dict[str, Any]
    error: str | None
    cancel_requested: bool
    created_at: str
    started_at: str | None
    finished_at: str | None


# ---- scans --------------------------------------------------------------------------------------
class ScanForm(StrictForm):
    feed: UploadFile = Field(description="Listings, one per row: JSONL, CSV or Parquet (see README, Scans)")
    images: UploadFile | None = Field(
        None, description="A ZIP of photos the feed's image_files name (instead of URLs)"
    )
    format: Literal["jsonl", "csv", "parquet"] | None = Field(None, description="Default: from the file name")
    brand: str | None = Field(None, json_schema_extra=BRAND_SCHEMA)
    k: int | None = Field(None, json_schema_extra=K_SCHEMA)


class ScanAccepted(BaseModel):
    scan_id: str
    state: str
    listings: int


class ScanSummary(BaseModel):
    states: dict[str, int] = Field(description="pending / done / failed listings")
    verdicts: dict[str, int]


class ScanOut(JobOut):
    summary: ScanSummary


class ScanResult(BaseModel):
    row: int = Field(description="The listing's row in the feed (1-based); page with after=")
    listing_id: str
    title: str | None = None
    url: str | None = None
    seller_id: str | None
    marketplace: str | None
    state: Literal["pending", "done", "failed"]
    verdict: Verdict | None
    counterfeit_probability: float | None
    brand: str | None
    listing_check_id: str | None
    error: str | None


class ScanResultPage(BaseModel):
    items: list[ScanResult]
    next_after: int | None = Field(description="Pass as after= for the next page; null at the end")


class ScanSeller(BaseModel):
    marketplace: str | None
    seller_id: str
    listings: int
    likely_counterfeit: int
    max_probability: float
    brands: list[str]


class ScanSellerPage(BaseModel):
    items: list[ScanSeller]


# ---- signals ------------------------------------------------------------------------------------
class SignalItem(StrictBody):
    sha256: Text = Field(pattern=r"^[0-9a-f]{64}$")
    pdq: Text = Field(pattern=r"^[0-9a-f]{64}$")
    quality: StrictInt = Field(ge=0, le=100)
    product: Text | None = Field(max_length=200)


class JobPage(BaseModel):
    items: list[JobOut]


class SignalBundle(StrictBody):
    format: Text = Field(json_schema_extra={"enum": ["counterfeit-signals/1"]})
    issuer: Text = Field(max_length=200)
    brand: Text = Field(json_schema_extra=BRAND_SCHEMA)
    created_at: Text = Field(max_length=64)
    signals: list[SignalItem] = Field(max_length=100_000)
    signature: Text = Field(max_length=200)


class FeedEntryOut(BaseModel):
    seq: int = Field(description="Position in the issuer's feed (the cursor)")
    issuer: str
    type: Literal["pdq", "seller"]
    key: str = Field(description="What the entry is about; a later entry of the same key replaces it")
    brand: str
    op: Literal["add", "withdraw"] = Field(description="withdraw: a tombstone, drop what the key said before")
    data: dict[str, Any] | None = Field(
        description="pdq: sha256, pdq, quality, product; seller: kind, key_id, "
        "digest (HMAC-SHA256 under the consortium key), status, reason, expires_at"
    )
    published_at: str
    signature: str = Field(description="Ed25519 over the entry's canonical JSON without this field")


class FeedPage(BaseModel):
    format: Literal["counterfeit-feed/1"]
    issuer: str
    since: int
    next_cursor: int = Field(description="Ask for since=next_cursor next")
    has_more: bool
    served_at: str
    seqs: list[int] = Field(description="The entries' seqs, in order (signed with the envelope)")
    signature: str = Field(
        description="Ed25519 over the envelope's canonical JSON without this field and entries"
    )
    entries: list[FeedEntryOut]


class SignalImportResult(BaseModel):
    issuer: str
    brand: str
    imported: int


# ---- system, audit, keys ------------------------------------------------------------------------
class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready", "starting"]
    index_size: int | None = None


class IndexInfo(BaseModel):
    generation: int
    type: str
    applied_change_seq: int
    size: int | None = Field(
        None, description="All brands' references in the index: admins and platforms only"
    )
    vectors: int | None = Field(
        None, description="Their vectors (whole images and reference regions): admins and platforms only"
    )


class RegionsInfo(BaseModel):
    query: list[str] = Field(description="Regions of each checked photo searched (COUNTERFEIT_QUERY_REGIONS)")
    reference: list[str] = Field(
        description="Regions of each reference indexed (COUNTERFEIT_REFERENCE_REGIONS)"
    )


class Info(BaseModel):
    model: dict[str, Any]
    index: IndexInfo
    regions: RegionsInfo
    references: dict[str, dict[str, int]]
    scorer: str


class AuditEventOut(BaseModel):
    id: int
    at: str
    actor_key_id: str | None
    actor_role: str
    actor_person_id: str | None = Field(description="A person who acted in the workbench (not a key)")
    action: str
    brand: str | None
    target: str | None
    details: dict[str, Any]
    request_id: str | None


class AuditPage(BaseModel):
    items: list[AuditEventOut]
    next_cursor: str | None


class RotateBody(StrictBody):
    overlap_hours: Number = Field(24.0, ge=0, le=24 * 30, description="How long the old key keeps working")


# ---- people (workbench accounts) ----------------------------------------------------------------
class PersonBody(StrictBody):
    username: StrictStr = Field(
        description="3-64 characters: a-z, 0-9 and . _ @ - (lower case)",
        json_schema_extra={"pattern": "^[a-z0-9][a-z0-9._@-]{2,63}$"},
    )
    access: Literal["viewer", "reviewer", "manager"] = Field(
        description="viewer reads; reviewer also decides; manager also adds and disables people"
    )
    role: Literal["brand", "platform", "admin"] | None = Field(
        None, description="The person's tenant kind; default: the calling key's (an admin key must give it)"
    )
    brand: StrictStr | None = Field(
        None, description="A brand's person: its brand", json_schema_extra=BRAND_SCHEMA
    )
    platform: StrictStr | None = Field(
        None, description="A platform's person: its tenant", json_schema_extra=BRAND_SCHEMA
    )
    display_name: StrictStr | None = Field(None, max_length=200, pattern=NO_NUL)
    password: StrictStr | None = Field(
        None, min_length=12, max_length=200, description="Default: a generated one, returned once"
    )


class PersonOut(BaseModel):
    id: str
    username: str
    display_name: str | None
    role: str
    brand: str | None
    platform: str | None
    access: str
    created_at: str
    created_by: str | None
    disabled: bool


class PersonCreated(PersonOut):
    password: str = Field(description="The password (the given or generated one); shown once")


class PeoplePage(BaseModel):
    items: list[PersonOut]


class NewPassword(BaseModel):
    id: str
    password: str = Field(description="A generated password; shown once. The person's sessions ended.")


class RotatedKey(BaseModel):
    id: str
    key: str = Field(description="The new secret; shown once")
    role: str
    brand: str | None
    expires_at: str | None
    previous_key_id: str
    previous_key_expires_at: str


# ---- webhooks -----------------------------------------------------------------------------------
class WebhookBody(StrictBody):
    url: Text = Field(
        max_length=2000, pattern=HTTP_URL_PATTERN, description="Public http(s) endpoint; not redirected"
    )
    events: list[Literal[WEBHOOK_EVENTS]] = Field(min_length=1, max_length=len(WEBHOOK_EVENTS))


class RotateWebhookBody(StrictBody):
    overlap_hours: float = Field(
        24.0, ge=0, le=720, description="How long the previous secret still signs too"
    )


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[str]
    brand: str | None
    created_at: str
    previous_secret_valid_until: str | None
    secret: str | None = Field(None, description="Shown once: at creation and at rotation")


class WebhookPage(BaseModel):
    items: list[WebhookOut]


class DeliveryOut(BaseModel):
    id: str
    event: str
    state: Literal["pending", "delivered", "failed"]
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: str
    delivered_at: str | None
    next_attempt_at: str | None


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]


# ---- complaints ---------------------------------------------------------------------------------
class ComplaintForm(StrictForm):
    platform: str = Field(description="The platform tenant that decides it", json_schema_extra=BRAND_SCHEMA)
    claim: Literal["counterfeit", "image_copy", "trademark"]
    statement: Text = Field(max_length=5000, description="The complainant's statement, in good faith")
    brand: str | None = Field(
        None,
        description="The complainant brand (admin keys; a brand key files for its own)",
        json_schema_extra=BRAND_SCHEMA,
    )
    listing_id: Text | None = Field(None, max_length=200, description="The platform's id of the listing")
    url: Text | None = Field(None, max_length=2000, pattern=HTTP_URL_PATTERN)
    marketplace: Text | None = Field(None, max_length=100, pattern=MARKETPLACE_PATTERN)
    seller_id: Text | None = Field(None, max_length=200)
    title: Text | None = Field(None, max_length=500)
    reference_ids: list[int] | None = Field(
        None, description="The brand's references the complaint relies on"
    )
    images: list[UploadFile] | None = Field(
        None,
        description="Photos of the listing; without them, the platform's own check of listing_id is the evidence",
    )


class TriageFactor(BaseModel):
    factor: Literal["model", "track_record", "seller_risk"]
    value: float | None
    weight: float = Field(description="Its contribution to the score, in log-odds")


class TrackRecordOut(BaseModel):
    upheld: int
    rejected: int
    share: float = Field(description="Share upheld under a Beta(2, 2) prior: a new brand starts at 0.5")


class TriageOut(BaseModel):
    score: float = Field(description="How likely the complaint is upheld, from what was known at filing")
    fast_track_bar: float
    model_probability: float | None
    model_verdict: Verdict | None
    seller_risk: float | None
    track_record: TrackRecordOut
    factors: list[TriageFactor]


class ComplaintListing(BaseModel):
    listing_id: str | None
    url: str | None
    marketplace: str | None
    seller_id: str | None
    title: str | None
    listing_check_id: str | None = Field(description="The platform's own listing check this complaint names")


class EvidencePhotoOut(BaseModel):
    sha256: str
    check_id: str | None


class SlaOut(BaseModel):
    due_at: str
    breached: bool = Field(description="Decided after its due time, or open and past it")


class DecisionOut(BaseModel):
    outcome: Literal["upheld", "rejected"]
    action: str | None
    reason: str | None
    by: str | None
    breached: bool
    added_reference_ids: list[int]


class ComplaintOut(BaseModel):
    id: str
    platform: str
    brand: str
    claim: str
    statement: str
    listing: ComplaintListing
    reference_ids: list[int]
    photos: list[EvidencePhotoOut]
    triage: TriageOut
    lane: Literal["fast", "normal"]
    state: Literal["open", "upheld", "rejected"]
    sla: SlaOut
    decision: DecisionOut | None
    history: list[dict[str, Any]]
    created_at: str
    decided_at: str | None


class ComplaintPage(BaseModel):
    items: list[ComplaintOut]


class DecisionBody(StrictBody):
    outcome: Literal["upheld", "rejected"]
    action: Literal["removed", "restricted", "warned"] | None = Field(
        None, description="Required when upheld"
    )
    reason: Text | None = Field(None, max_length=2000, description="Required when rejected")


class CounterNoticeBody(StrictBody):
    statement: Text = Field(min_length=1, max_length=5000, description="The seller's counter-notice")


class ComplaintPolicyBody(StrictBody):
    fast_track_bar: Number = Field(
        0.8, description="Triage score at or above which a complaint is fast-tracked"
    )
    fast_sla_hours: Number = Field(24.0, description="Hours to decide a fast-tracked complaint")
    normal_sla_hours: Number = Field(168.0, description="Hours to decide any other complaint")


class ComplaintPolicyOut(BaseModel):
    platform: str
    fast_track_bar: float
    fast_sla_hours: float
    normal_sla_hours: float


# ---- test purchases -----------------------------------------------------------------------------
class TestPurchaseForm(SellerIdentifierFields):
    __test__ = False  # not a pytest class, whatever its name

    order_reference: Text = Field(max_length=200, description="The order's reference on the marketplace")
    ordered_on: date
    outcome: Literal["counterfeit_confirmed", "genuine", "not_delivered"]
    examiner_note: Text = Field(max_length=5000, description="What the examiner found, and how")
    received_on: date | None = None
    platform: str | None = Field(
        None,
        description="The platform tenant (a brand key or admin gives it)",
        json_schema_extra=BRAND_SCHEMA,
    )
    brand: str | None = Field(
        None, description="Whose product (a platform key or admin gives it)", json_schema_extra=BRAND_SCHEMA
    )
    listing_id: Text | None = Field(None, max_length=200)
    url: Text | None = Field(None, max_length=2000, pattern=HTTP_URL_PATTERN)
    marketplace: Text | None = Field(None, max_length=100, pattern=MARKETPLACE_PATTERN)
    seller_id: Text | None = Field(None, max_length=200)
    title: Text | None = Field(None, max_length=500)
    share_signals: FormBool = Field(
        False,
        description="Share the confirmed item's photo hashes on the exchange feed (counterfeit_confirmed)",
    )
    images: list[UploadFile] | None = Field(None, description="Photos of the item received")


class TestPurchaseOut(BaseModel):
    __test__ = False

    id: str
    platform: str
    brand: str
    listing: ComplaintListing
    order_reference: str
    ordered_on: str
    received_on: str | None
    outcome: str
    examiner_note: str
    reference_ids: list[int] = Field(description="The counterfeit references its photos became")
    photos: list[EvidencePhotoOut]
    created_at: str


class TestPurchasePage(BaseModel):
    __test__ = False

    items: list[TestPurchaseOut]


# ---- reports ------------------------------------------------------------------------------------
class ReportPeriod(BaseModel):
    start: str
    end: str


class ReportChecks(BaseModel):
    run: int
    flagged: int = Field(description="Checked likely_counterfeit")
    confirmed: int = Field(description="Confirmed counterfeit by a review or an upheld complaint")


class ReportComplaints(BaseModel):
    filed: int
    fast_tracked: int
    upheld: int
    rejected: int
    open: int
    median_hours_to_decision: float | None
    sla_breaches: int = Field(description="Decided after their due time, or open past it")


class ReportSellers(BaseModel):
    actioned: int
    repeat_infringers: int = Field(description="Sellers actioned twice or more in the period")


class ReportScans(BaseModel):
    runs: int
    listings: int = Field(description="Listings of the brand the scans checked")
    flagged: int


class ReportTestPurchases(BaseModel):
    counterfeit_confirmed: int
    genuine: int
    not_delivered: int


class ReportSignals(BaseModel):
    sent: int = Field(description="Entries this deployment's exchange feed published for the brand")
    received: int = Field(description="Signals trusted peers shared about the brand")


class ReportWeek(BaseModel):
    week: str = Field(description="ISO week, e.g. 2026-W49")
    checks: int
    flagged: int
    complaints_filed: int
    complaints_upheld: int


class ReportOut(BaseModel):
    brand: str
    platform: str | None = Field(
        description="The platform tenant; null: every platform (brands' and admins' view)"
    )
    period: ReportPeriod
    generated_at: str
    checks: ReportChecks
    complaints: ReportComplaints
    listings_actioned: int
    sellers: ReportSellers
    scans: ReportScans
    test_purchases: ReportTestPurchases
    shared_signals: ReportSignals
    weekly: list[ReportWeek]


# ---- cases --------------------------------------------------------------------------------------
class NetworkNode(BaseModel):
    id: str
    type: Literal["seller", "peer"]
    marketplace: str | None = None
    seller_id: str | None = None
    hop: int | None = Field(None, description="Links from the seller asked about (sellers)")
    issuer: str | None = Field(None, description="The peer whose feed reported it (peers)")
    brand: str | None = None
    status: Literal["likely", "confirmed"] | None = None


class NetworkEdge(BaseModel):
    source: str
    target: str
    via: list[str] = Field(description="The kinds of keyed identifier the two share (email, phone, ...)")


class SellerNetwork(BaseModel):
    root: str
    hops: int
    nodes: list[NetworkNode]
    edges: list[NetworkEdge]
    truncated: bool


# ---- stored checks and listings -----------------------------------------------------------------
class StoredReview(BaseModel):
    label: Label
    note: str | None
    created_at: str


class StoredCheck(BaseModel):
    check_id: str
    created_at: str
    verdict: Verdict
    counterfeit_probability: float
    brand: str | None
    brand_hint: str | None
    evidence: list[dict[str, Any]] = Field(description="The evidence as it was answered")
    scorer: str
    model_fingerprint: str
    image_sha256: str
    pdq: PdqOut | None
    reviews: list[StoredReview]


class CheckPage(BaseModel):
    items: list[StoredCheck]
    next_cursor: str | None = Field(description="Pass as cursor= for the next (older) page; null at the end")


class ListingPhoto(BaseModel):
    check_id: str
    verdict: Verdict
    counterfeit_probability: float


class ListingRecord(BaseModel):
    listing_check_id: str
    listing_id: str | None
    seller_id: str | None
    marketplace: str | None
    title: str | None
    price: float | None
    currency: str | None
    url: str | None
    brand: str | None
    verdict: str = Field(
        description="likely_counterfeit, likely_authentic, inconclusive, no_match, or confirmed_counterfeit"
    )
    counterfeit_probability: float
    created_at: str
    photos: list[ListingPhoto]


class ScanPage(BaseModel):
    items: list[JobOut]


# ---- calibrations -------------------------------------------------------------------------------
class CalibrationOut(BaseModel):
    version: str
    model_fingerprint: str
    samples: int | None
    thresholds: dict[str, float]
    saved_at: float = Field(description="Unix time it was saved")
    active: bool


class CalibrationPage(BaseModel):
    items: list[CalibrationOut]
    scorer: str = Field(description="The scorer this process's checks use now")
