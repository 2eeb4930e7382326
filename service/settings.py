"""The one settings object. Every field can be set as an environment variable ``COUNTERFEIT_<NAME>``."""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ExchangePeer(BaseModel):
    """A platform whose signed exchange feed this one pulls (``counterfeit exchange pull``), and how far it is trusted.

    Its signing key is the one named for the same issuer in ``trusted_signal_issuers``: one place decides whose
    signatures count."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(pattern=r"^https?://[^\s]+$", description="The peer service's base URL.")
    api_key: SecretStr = Field(description="The exchange key the peer issued to this platform.")
    enabled: bool = True
    weight: float = Field(
        1.0, ge=0, le=1, description="How much this issuer's seller signals count in seller risk."
    )
    types: list[Literal["pdq", "seller"]] = Field(
        ["pdq", "seller"], description="Entry types taken from this issuer."
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COUNTERFEIT_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("data"), description="SQLite file, image blobs and index files live here.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default sqlite:///<data_dir>/counterfeit.db."
    )
    model: str = Field(
        "open_clip:ViT-B-32@laion2b_s34b_b79k", description="Model spec backend:architecture@weights."
    )
    model_cache: Path | None = Field(None, description="Where downloaded model weights are cached.")
    device: str = Field("auto", description="auto, cpu, cuda, cuda:1 …")
    runtime: Literal["auto", "torch", "onnx", "onnx-int8"] = Field(
        "auto",
        description="What runs the model's forward pass: onnx (ONNX Runtime; the export is verified against torch "
        "and cached by model identity), torch, or auto (ONNX Runtime on CPU where the model exports and verifies, "
        "torch otherwise). Both embed into the same space: switching needs no reindex. onnx-int8: weights quantised "
        "to int8 (measured in docs/operations.md); its own fingerprint if its vectors move beyond cosine 0.999.",
    )
    batch_size: int | None = Field(
        None,
        ge=1,
        description="Most images per model forward pass (requests are batched "
        "together); default 256 on a GPU, 32 on CPU.",
    )
    device_decode: Literal["auto", "on", "off"] = Field(
        "auto", description="Decode JPEGs on the model's device (nvJPEG on CUDA); auto: on CUDA only."
    )
    cpu_workers: int | None = Field(
        None,
        ge=0,
        description="Worker processes for decoding, PDQ and resizing "
        "(default: one per core, one fewer when the model runs on the CPU; 0: threads "
        "in the serving process).",
    )
    decode_min_side: int = Field(
        512,
        ge=64,
        le=4096,
        description="Uploads are decoded (JPEG draft scaling) to at least "
        "this many pixels a side; PDQ is hashed from that image. 512: hashes within 20 bits of a "
        "full-size decode's (median 2); 384 halves PDQ's CPU time for median 6, max 38 bits.",
    )
    benchmark_null_forward: bool = Field(
        False,
        description="BENCHMARKS ONLY: skip the model's forward pass "
        "(vectors are meaningless) to measure how fast the pipeline feeds a model.",
    )
    query_regions: Literal["whole", "default", "wide"] = Field(
        "default",
        description="Regions of each checked photo embedded beside it (index/regions.py): whole — the "
        "image only; default — also its 80 % centre (screenshots and padded copies); wide — also its mirror image, "
        "60 % centre and a screenshot-shaped box. Each region is one more model input per check; made by the CPU "
        "workers (with device decoding on, checks embed the whole image only).",
    )
    reference_regions: Literal["whole", "default"] = Field(
        "default",
        description="Regions of each reference embedded beside it (index/regions.py) and kept in the "
        "index as more vectors of that reference: default — its 70 % centre and four 70 % corners (listing photos "
        "that are large crops of it); whole — none. Applies to references embedded from then on; `counterfeit "
        "reindex` embeds older ones again. Six vectors a reference: mind the index's memory at millions.",
    )
    local_features: bool = Field(
        True,
        description="Verify the top CLIP candidates of each check with SIFT keypoints "
        "and RANSAC (index/local_features.py) when no PDQ near-duplicate matched: a geometric "
        "copy (screenshot, big crop, pad, overlay, mirror image) counts as a match even where its "
        "embedding fell below the match similarity. Keypoints of references are computed at "
        "registration (`counterfeit backfill-keypoints` for older ones).",
    )
    batch_max_wait_ms: float = Field(
        5.0, ge=0, description="How long the first queued image waits for others to join its batch."
    )
    embed_queue_size: int = Field(
        256, ge=1, description="Images waiting for the model before requests get 503."
    )
    decode_threads: int = Field(
        4,
        ge=1,
        description="Threads dispatching uploads to the CPU workers, searching and "
        "scoring (decoding too when cpu_workers is 0).",
    )
    max_batch_images: int = Field(32, ge=1, description="Most images in one POST /v1/check/batch.")
    fetch_timeout_seconds: float = Field(
        10.0, gt=0, description="Fetching an image_url: the whole download, redirects included."
    )
    unsafe_fetch_allow_loopback_for_tests: bool = Field(
        False,
        description="TESTS ONLY: let image_url fetch from loopback addresses (a local test server). Never private ranges or metadata.",
    )
    webhook_retry_base_seconds: float = Field(
        1.0,
        gt=0,
        description="First webhook retry after about this long; doubling per attempt (with jitter), at most an hour.",
    )
    ui_session_hours: float = Field(8, gt=0, le=720, description="How long a review-page login lasts.")
    blob_url: str = Field(
        "",
        description="Where images are kept: empty for <data dir>/blobs, or s3://bucket/prefix "
        "(the standard AWS_* variables configure the client: AWS_ENDPOINT_URL, keys, region); the "
        "local directory is then this replica's cache.",
    )
    max_scan_listings: int = Field(100_000, ge=1, description="Most listings in one scan feed.")
    max_scan_upload_bytes: int = Field(
        512 * 1024 * 1024, gt=0, description="Largest POST /v1/scans body (feed and image archive together)."
    )
    max_listing_images: int = Field(10, ge=1, description="Most photos in one POST /v1/listings/check.")

    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"
    bootstrap_admin_key: str | None = Field(
        None, description="If set, this token is ensured to exist as an admin key."
    )

    max_image_bytes: int = Field(20 * 1024 * 1024, gt=0)
    max_image_pixels: int = Field(50_000_000, gt=0)
    max_json_bytes: int = Field(
        1024 * 1024, gt=0, description="Largest JSON request body (signal bundles included)."
    )
    decode_memory_mb: int = Field(
        512, ge=64, description="Memory all concurrent image decodes may hold together."
    )
    decode_wait_seconds: float = Field(
        10.0, ge=0, description="How long a decode waits for that memory before 503."
    )
    max_inflight_checks: int = Field(
        256,
        ge=1,
        description="Check requests admitted at once; more get 503 (their body is dropped unparsed).",
    )
    body_idle_timeout_seconds: float = Field(
        15.0, gt=0, description="A request body that sends nothing for this long gets 408."
    )
    body_total_timeout_seconds: float = Field(
        120.0, gt=0, description="A request body not complete after this long gets 408."
    )
    keep_alive_timeout_seconds: int = Field(
        5, ge=1, description="uvicorn: idle keep-alive connections are closed after this."
    )

    # Controls a public API needs.
    metrics_token: SecretStr | None = Field(
        None, description="Bearer token for GET /metrics (admin keys work too)."
    )
    cors_allow_origins: list[str] = Field(
        default_factory=list, description="JSON list of origins allowed by CORS; empty: CORS off."
    )
    rate_limit_admin: float = Field(50, ge=0, description="Requests per second per admin key (0: unlimited).")
    rate_limit_brand: float = Field(20, ge=0, description="Requests per second per brand key (0: unlimited).")
    rate_limit_platform: float = Field(
        500, ge=0, description="Requests per second per platform key (0: unlimited)."
    )
    rate_limit_burst_seconds: float = Field(
        2.0, gt=0, description="A key may burst this many seconds' worth of requests."
    )
    default_k: int = Field(10, ge=1)
    max_k: int = Field(100, ge=1)

    # Scoring v1 thresholds (see service/scoring.py); similarities are centred cosines in [-1, 1].
    min_match_similarity: float | None = Field(
        None,
        description="Below this no reference matches (a copy). Unset: the served model's profile (scoring/profile.py), derived from data for each model.",
    )
    min_distinctiveness: float | None = Field(
        None,
        ge=0,
        description="How far a CLIP match must stand out of the query's neighbourhood to be a copy by CLIP alone (scoring/distinctiveness.py). Unset: the model's profile, or 0 (off) where COUNTERFEIT_MIN_MATCH_SIMILARITY overrides the profile.",
    )
    score_temperature: float = Field(
        0.05, gt=0, description="Softness of the counterfeit-vs-authentic margin."
    )
    pdq_max_distance: int = Field(
        31, ge=0, le=256, description="PDQ hashes within this Hamming distance match (of 256 bits)."
    )
    counterfeit_threshold: float = Field(0.7, description="probability >= this: likely_counterfeit.")
    authentic_threshold: float = Field(0.3, description="probability <= this: likely_authentic.")
    # The look-alike regime (scoring/lookalike.py): a classifier per brand over its two banks.
    lookalike_min_per_bank: int = Field(
        8,
        ge=2,
        description="A brand gets a look-alike classifier once both its banks hold this many embedded references.",
    )
    lookalike_min_cv_auc: float = Field(
        0.8,
        ge=0.5,
        le=1.0,
        description="Below this cross-validated ROC-AUC the classifier abstains: its banks cannot be told apart.",
    )
    lookalike_min_precision: float = Field(
        0.9,
        ge=0.5,
        le=1.0,
        description="Where only the brand's classifier speaks, it decides only as far from the middle as its "
        "held-out verdicts were right this often; between, the check is inconclusive.",
    )
    lookalike_debounce_seconds: float = Field(
        30.0,
        ge=0,
        description="A brand's classifier is refitted once its references stop changing for this long.",
    )

    generation_swap_jitter_seconds: float = Field(
        5.0,
        ge=0,
        description="Replicas switch to a new index generation within this, at random, not all at once.",
    )
    lease_seconds: float = Field(
        30.0, gt=0, description="How long a replica holds the lease for once-only background work."
    )
    gc_interval_seconds: float = Field(
        3600.0, gt=0, description="How often the lease holder deletes kept check images past retention."
    )
    snapshot_every_changes: int = Field(
        1000, ge=1, description="Write an index snapshot after this many changes."
    )
    change_poll_seconds: float = Field(
        1.0, gt=0, description="How often the change log is tailed for other writers."
    )
    reindex_shard_size: int = Field(256, ge=1, description="References embedded per committed reindex shard.")
    keep_generations: int = Field(3, ge=2, description="Index generations kept on disk (for rollback).")
    index_memory_gb: float = Field(4.0, gt=0, description="Above this, reindex compresses vectors (IVF-PQ).")
    check_image_retention_days: float = Field(
        30, gt=0, description="`counterfeit gc` deletes kept check images older than this."
    )
    signal_issuer: str = Field(
        "counterfeit-check", description="This platform's name in exported signal bundles."
    )
    signal_private_key: str | None = Field(
        None, description="Ed25519 key (base64) that signs exported bundles."
    )
    consortium_keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        description='JSON {"key id": "secret (≥ 32 bytes)"}: the keys seller identifiers are HMACed under (service/exchange/identifiers.py). Rotate by adding the new key, then removing the old one after the overlap.',
    )
    default_phone_region: str | None = Field(
        None,
        pattern=r"^[A-Z]{2}$",
        description="Region for seller phone numbers given without a country code (e.g. DE); unset: E.164 only.",
    )
    trusted_signal_issuers: dict[str, str] = Field(
        default_factory=dict,
        description='JSON {"issuer": "<Ed25519 public key, base64>"} accepted on import.',
    )
    exchange_peers: dict[str, ExchangePeer] = Field(
        default_factory=dict,
        description='JSON {"issuer": {"url": …, '
        '"api_key": …, "enabled": true, "weight": 1.0, "types": ["pdq", "seller"]}}: '
        "feeds `counterfeit exchange pull` reads.",
    )
    exchange_seller_ttl_days: float = Field(
        180,
        gt=0,
        description="A seller entry this platform publishes expires this "
        "long after the seller's last counterfeit listing.",
    )
    exchange_page_size: int = Field(500, ge=1, le=5000, description="Most entries per feed page.")
    exchange_max_page_age_seconds: float = Field(
        600, gt=0, description="A pulled page signed longer ago than this is refused (a replay)."
    )
    torch_threads: int | None = Field(None, description="CPU threads for the model; default all cores.")

    @cached_property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'counterfeit.db'}"

    @property
    def resolved_cpu_workers(self) -> int:
        from index.prepare import default_worker_count

        if self.cpu_workers is not None:
            return self.cpu_workers
        cores = default_worker_count()
        if self.device == "cpu" or (self.device == "auto" and not _cuda_available()):
            return max(1, cores - 1)  # the model's own threads need a core when it runs on the CPU
        return cores

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    def consortium_key_bytes(self) -> dict[str, bytes]:
        return {key_id: secret.get_secret_value().encode() for key_id, secret in self.consortium_keys.items()}

    @field_validator("consortium_keys")
    @classmethod
    def _strong_consortium_keys(cls, keys: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for key_id, secret in keys.items():
            if not re.fullmatch(r"[A-Za-z0-9._-]{1,32}", key_id):
                raise ValueError(f"consortium key id {key_id!r}: 1-32 letters, digits, '.', '_' or '-'")
            if len(secret.get_secret_value().encode()) < 32:
                raise ValueError(f"consortium key {key_id!r} is shorter than 32 bytes: too easy to guess")
        return keys


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()
