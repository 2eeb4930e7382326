"""Catalogue scans: a feed of listings checked in bulk as a job, results kept per listing.

Feed (JSONL, CSV or Parquet; one listing per row): ``listing_id`` and ``image_urls`` (a list; in CSV
separated by spaces or ``|``), optional ``seller_id``, ``marketplace``, ``title``, ``price``,
``currency``, ``url``, ``seller_email``, ``seller_phone``, ``payout_account``, ``shop_url``. The whole
feed is validated when it arrives (a bad row: 422 naming it, nothing written); seller identifiers are
keyed then (service/exchange/identifiers.py) — the raw values are never stored, not even in the scan's rows.

Each listing is checked by exactly the listing path (``ListingChecker``: photos fetched by the safe
fetcher, one batched model pass with whatever else is being checked, listing + seller records), and
its scan row is marked done **in the listing's own transaction**: a scan killed at any moment
resumes (the lease holder adopts a scan whose process died) with exactly the listings that had not
committed, none redone. ``CONCURRENCY`` listings are in flight so their photos share model batches.
One scan runs at a time in the cluster (a second is answered 409, like reindex).
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import logging
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

from pydantic import ConfigDict, Field, ValidationError, create_model
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.core.auth import DEFAULT_PLATFORM, OPERATOR, Principal
from service.core.blobs import BlobStore, sha256_hex
from service.core.errors import DomainError, InvalidInput, TooLarge, not_found
from service.core.fetch import SafeFetcher
from service.core.timestamps import utcnow
from service.core.validation import CURRENCY_PATTERN, HTTP_URL_PATTERN, MARKETPLACE_PATTERN, NO_NUL
from service.db.models import Check, Job, Listing, ScanItem
from service.exchange.identifier_kinds import IDENTIFIER_KINDS, identifier_values
from service.exchange.identifiers import KeyedIdentifier
from service.exchange.webhooks import Event, enqueue
from service.jobs.scan_feed import read_feed
from service.jobs.store import JobStore, job_to_dict
from service.marketplace.listings import ListingChecker, ListingFacts
from service.settings import Settings

log = logging.getLogger(__name__)
CONCURRENCY = (
    64  # listings in flight: enough photos to fill model batches while others fetch, decode or commit
)
PAGE = 1024  # pending listings read at a time


# A feed column per seller identifier kind (service/exchange/identifier_kinds).
FeedIdentifierColumns = create_model(
    "FeedIdentifierColumns",
    **{
        kind.field: (str | None, Field(None, max_length=kind.max_length, pattern=NO_NUL))
        for kind in IDENTIFIER_KINDS.values()
    },
)


class FeedRow(FeedIdentifierColumns):
    """One listing of a scan feed; unknown columns are refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)

    listing_id: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    image_urls: list[str] = Field(default_factory=list)
    image_files: list[str] = Field(default_factory=list, description="names in the uploaded ZIP archive")
    seller_id: str | None = Field(None, max_length=200, pattern=NO_NUL)
    marketplace: str | None = Field(None, max_length=100, pattern=MARKETPLACE_PATTERN)
    title: str | None = Field(None, max_length=500, pattern=NO_NUL)
    price: float | None = Field(None, ge=0)
    currency: str | None = Field(None, pattern=CURRENCY_PATTERN)
    url: str | None = Field(None, max_length=2000, pattern=HTTP_URL_PATTERN)

    def facts(self) -> ListingFacts:
        return ListingFacts(
            self.listing_id,
            self.seller_id,
            self.marketplace,
            self.title,
            self.price,
            self.currency,
            self.url,
            identifier_values(self),
        )


def scan_check_id(job_id: str, item_id: int, photo: int) -> str:
    """A scan photo's check id, derived from where it is in the scan (so a redo derives the same one)."""
    return "chk_" + hashlib.sha256(f"{job_id}:{item_id}:{photo}".encode()).hexdigest()[:32]


class PhotoArchive:
    """The ZIP a scan's feed names photos in. While the feed is validated only the members' names and declared
    sizes are checked (nothing is read or written); once the whole request is accepted, :meth:`store` reads each
    named member (size-capped, so a zip bomb stops at the cap) into the blob store, and :meth:`discard` removes
    what it wrote if the request still fails. Rows keep (name, sha256)."""

    def __init__(self, data: bytes | None, blobs: BlobStore | None, max_image_bytes: int):
        self.blobs = blobs
        self.max_image_bytes = max_image_bytes
        self.zip: zipfile.ZipFile | None = None
        if data is not None:
            try:
                self.zip = zipfile.ZipFile(io.BytesIO(data))
            except zipfile.BadZipFile:
                raise InvalidInput("invalid_archive", "images is not a ZIP archive.") from None
        self.named: dict[str, int] = {}  # member name -> the first row naming it
        self.stored: dict[str, str] = {}  # member name -> sha256, once stored
        self.written: list[str] = []  # blobs this request created (not ones that were there already)

    def check(self, name: str, row: int) -> None:
        if self.zip is None or self.blobs is None:
            raise InvalidInput(
                "invalid_feed", f"row {row}: image_files needs an images archive in the same request"
            )
        try:
            member = self.zip.getinfo(name)
        except KeyError:
            raise InvalidInput("invalid_feed", f"row {row}: {name!r} is not in the images archive") from None
        if member.file_size > self.max_image_bytes:
            raise TooLarge("image_too_large", f"row {row}: {name!r} is over {self.max_image_bytes} bytes")
        self.named.setdefault(name, row)

    def store(self) -> dict[str, str]:
        """Every named member into the blob store; on a bad member, what was written is removed again."""
        try:
            for name, row in self.named.items():
                self.stored[name] = self._store(name, row)
        except Exception:
            self.discard()
            raise
        return self.stored

    def _store(self, name: str, row: int) -> str:
        assert self.zip is not None and self.blobs is not None
        try:
            with self.zip.open(self.zip.getinfo(name)) as handle:
                data = handle.read(self.max_image_bytes + 1)
        except (zipfile.BadZipFile, RuntimeError, OSError, NotImplementedError) as exc:
            raise InvalidInput("invalid_archive", f"row {row}: {name!r} cannot be read ({exc})") from None
        if len(data) > self.max_image_bytes:  # the header lied about its size
            raise TooLarge("image_too_large", f"row {row}: {name!r} is over {self.max_image_bytes} bytes")
        digest = sha256_hex(data)
        if not self.blobs.exists(digest):
            self.written.append(self.blobs.put(data))
        return digest

    def discard(self) -> None:
        """Remove the blobs this request wrote (the request was refused after all)."""
        assert self.blobs is not None or not self.written
        for digest in self.written:
            self.blobs.delete(digest)
        self.written.clear()


@dataclass(frozen=True)
class ScanLimits:
    """How large a scan may be: listings in one feed, photos per listing, bytes per photo."""

    max_listings: int = 100_000
    max_images: int = 10
    max_image_bytes: int = 20 * 1024 * 1024

    @classmethod
    def from_settings(cls, settings: Settings) -> ScanLimits:
        return cls(settings.max_scan_listings, settings.max_listing_images, settings.max_image_bytes)


@dataclass(frozen=True)
class ScanParams:
    brand: str | None
    k: int


class ScanService:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        jobs: JobStore,
        listings: ListingChecker,
        fetcher: SafeFetcher,
        blobs: BlobStore,
        limits: ScanLimits = ScanLimits(),
        settings: Settings | None = None,
        served_model: Callable[[], str] = lambda: "",
        on_event: Callable[[], None] = lambda: None,
    ):
        self.sessions = sessions
        self.jobs = jobs
        self.listings = listings
        self.fetcher = fetcher
        self.blobs = blobs  # photos uploaded in a scan's archive, kept until the scan checks them
        self.limits = limits
        self.settings = settings  # for the Ray engine's actors (model options, fetch limits)
        self.served_model = served_model  # the spec of the model serving now (Ray actors load the same)
        self.on_event = on_event  # wakes the webhook deliverer
        self._fetch_pool = ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="scan-fetch")
        self._closing = threading.Event()

    def close(self) -> None:
        """Stop running scans after their listings in flight; they stay live and the next lease holder adopts them."""
        self._closing.set()

    # ---- creating ------------------------------------------------------------------------------
    def create(
        self,
        data: bytes,
        fmt: str,
        params: ScanParams,
        actor: Principal,
        source: str | None,
        archive_bytes: bytes | None = None,
    ) -> str:
        """Validate the whole feed as a stream (a bad row: 422 naming it), then store the archive's photos it names,
        then its rows and a queued job in one transaction; the job id. A refused request leaves nothing behind."""
        archive = PhotoArchive(archive_bytes, self.blobs, self.limits.max_image_bytes)
        items = [
            self._feed_item(number, record, archive)
            for number, record in read_feed(data, fmt, self.limits.max_listings)
        ]
        if not items:
            raise InvalidInput("invalid_feed", "The feed has no listings.")
        self.jobs.refuse_if_running("scan")  # before the archive's photos are written, not only after
        stored = archive.store()
        for item in items:
            item.listing["image_blobs"] = [
                [name, stored[name]] for name in item.listing.pop("image_files", [])
            ]

        def add_items(session: Session, job: Job) -> None:
            job.total = len(items)
            for item in items:
                item.job_id = job.id
            session.add_all(items)

        try:
            job = self.jobs.create(
                "scan",
                {
                    "listings": len(items),
                    "brand_hint": params.brand,
                    "k": params.k,
                    "source": source,
                    "api_key_id": actor.key_id,
                    "platform": actor.platform_scope(),
                },
                actor,
                add_items,
            )
        except Exception:
            archive.discard()
            raise
        return job.id

    def _feed_item(self, number: int, record: dict[str, Any], archive: PhotoArchive) -> ScanItem:
        try:
            row = FeedRow.model_validate(record)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "row"
            raise InvalidInput("invalid_feed", f"row {number}: {where}: {first['msg']}") from None
        photos = len(row.image_urls) + len(row.image_files)
        if not 1 <= photos <= self.limits.max_images:
            raise InvalidInput(
                "invalid_feed",
                f"row {number}: 1 to {self.limits.max_images} photos (image_urls + image_files)",
            )
        try:
            keyed = self.listings.key_identifiers(row.facts())
        except DomainError as exc:
            raise InvalidInput("invalid_feed", f"row {number}: {exc.message}") from None
        for name in row.image_files:
            archive.check(name, number)
        stored = row.model_dump(exclude_none=True, exclude={kind.field for kind in IDENTIFIER_KINDS.values()})
        stored["keyed_identifiers"] = [[k.kind, k.key_id, k.digest] for k in keyed]  # never the raw values
        return ScanItem(row=number, listing=stored, state="pending")

    # ---- running -------------------------------------------------------------------------------
    def run(
        self,
        job_id: str,
        on_progress: Callable[[dict], None] = lambda job: None,
        engine: str = "local",
        ray_address: str | None = None,
    ) -> None:
        """Check the scan's pending listings until none is left (or it is cancelled). ``engine="ray"``: their
        photos are fetched, prepared and embedded by Ray actors (service/jobs/ray_scan.py); the rest is the same."""
        job = self.jobs.get(job_id)
        params = ScanParams(job.params.get("brand_hint"), int(job.params.get("k", 5)))
        api_key_id = job.params.get("api_key_id")
        self.jobs.update(job_id, state="running", started_at=job.started_at or utcnow(), embedded=0)
        progress = _Progress(self, job_id, on_progress)
        try:
            while not progress.cancelled() and not self._closing.is_set():
                page = self._pending_page(job_id)
                if not page:
                    break
                self._check_pending(page, params, api_key_id, progress, engine, ray_address)
            if progress.cancelled():
                self.jobs.update(
                    job_id, state="cancelled", finished_at=utcnow(), done=self.finished_count(job_id)
                )
                return
            if self._closing.is_set():
                return
            self._complete(job_id, api_key_id)
            self.on_event()
        except Exception as exc:
            log.exception("Scan %s failed", job_id)
            self.jobs.update(job_id, state="failed", error=str(exc)[:4000], finished_at=utcnow())

    def _pending_page(self, job_id: str) -> list[ScanItem]:
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(ScanItem)
                    .where(ScanItem.job_id == job_id, ScanItem.state == "pending")
                    .order_by(ScanItem.row)
                    .limit(PAGE)
                )
            )

    def _check_pending(
        self,
        page: list[ScanItem],
        params: ScanParams,
        api_key_id,
        progress,
        engine: str,
        ray_address: str | None,
    ) -> None:
        """One page of listings, checked here or with their photos prepared and embedded by Ray actors."""
        if engine != "ray":
            asyncio.run(self._check_page(page, params, api_key_id, progress))
            return
        from service.jobs.ray_scan import scan_with_ray

        async def check_batch(prepared: list[tuple[ScanItem, list]]) -> None:
            photos = {item.id: item_photos for item, item_photos in prepared}
            await self._check_page([item for item, _ in prepared], params, api_key_id, progress, photos)

        scan_with_ray(page, self.served_model(), self.settings, self.blobs, check_batch, ray_address)

    def _complete(self, job_id: str, api_key_id: str | None) -> None:
        """The summary as the job's result, and ``scan.completed`` to its owner's webhooks."""
        summary = self.summary(job_id)
        with self.sessions() as session:
            enqueue(session, [Event("scan.completed", None, {"scan_id": job_id, **summary}, api_key_id)])
            session.commit()
        self.jobs.update(
            job_id,
            state="succeeded",
            finished_at=utcnow(),
            result=summary,
            done=self.finished_count(job_id),
        )

    async def _check_page(
        self,
        page: list[ScanItem],
        params: ScanParams,
        api_key_id: str | None,
        progress: _Progress,
        prepared: dict[int, list] | None = None,
    ) -> None:
        """A sliding window of ``CONCURRENCY`` listings in flight (not batch by batch: no waiting on the slowest)."""
        window = asyncio.Semaphore(CONCURRENCY)

        async def one(item: ScanItem) -> None:
            async with window:
                if progress.cancelled() or self._closing.is_set():
                    return
                await self._check_one(item, params, api_key_id, (prepared or {}).get(item.id))
                progress.advance()

        await asyncio.gather(*(one(item) for item in page))

    async def _check_one(
        self, item: ScanItem, params: ScanParams, api_key_id: str | None, prepared: list | None = None
    ) -> None:
        """``prepared``: the photos as the Ray engine fetched and embedded them — (name, bytes, Embedded) or
        the photo's error each; without it the photos are fetched here and embedded by the served model."""
        listing = item.listing
        try:
            if prepared is None:
                prepared = await self._fetch_photos(listing)
            usable = [p for p in prepared if not isinstance(p, BaseException)]
            # The same ids whenever this listing is checked: a scan resumed after a crash that redoes a listing
            # whose check rows (but not the listing) had committed records, announces and queues them once.
            check_ids = [
                scan_check_id(item.job_id, item.id, position)
                for position, p in enumerate(prepared)
                if not isinstance(p, BaseException)
            ]
            if not usable:
                first = prepared[0]  # the listing's own reason: forbidden_address, too_large, not_an_image, …
                raise (
                    first
                    if isinstance(first, DomainError)
                    else InvalidInput("fetch_failed", f"{type(first).__name__}: {first}")
                )
            images = [(name, data) for name, data, _ in usable]
            embedded = [e for _, _, e in usable]
            facts = _facts_of(listing)
            keyed = [
                KeyedIdentifier(kind, key_id, digest)
                for kind, key_id, digest in listing.get("keyed_identifiers", [])
            ]

            missing = len(prepared) - len(images)

            def mark_done(session: Session, answer: dict[str, Any]) -> None:
                _mark_done(session, item.id, answer, missing)

            await self.listings.check(
                images,
                facts,
                params.brand,
                params.k,
                api_key_id,
                keyed_ids=keyed,
                on_stored=mark_done,
                embedded=embedded if any(embedded) else None,
                check_ids=check_ids,
            )
        except DomainError as exc:
            with self.sessions() as session:
                row = session.get(ScanItem, item.id)
                row.state, row.error, row.finished_at = "failed", f"{exc.code}: {exc.message}"[:500], utcnow()
                session.commit()

    async def _fetch_photos(self, listing: dict) -> list:
        """The listing's photos from their URLs (fetched on the fetch pool) and the archive's blobs: (name, bytes,
        None) each, or the exception its fetch raised."""
        loop = asyncio.get_running_loop()
        fetched = await asyncio.gather(
            *(
                loop.run_in_executor(self._fetch_pool, self.fetcher.fetch, url)
                for url in listing["image_urls"]
            ),
            return_exceptions=True,
        )
        prepared = [f if isinstance(f, BaseException) else (f.name, f.data, None) for f in fetched]
        return prepared + [
            (name, self.blobs.get(digest), None) for name, digest in listing.get("image_blobs", [])
        ]

    def finished_count(self, job_id: str) -> int:
        with self.sessions() as session:
            return session.scalar(
                select(func.count(ScanItem.id)).where(ScanItem.job_id == job_id, ScanItem.state != "pending")
            )

    # ---- reading -------------------------------------------------------------------------------
    def _scan_job(self, job_id: str, caller: Principal) -> Job:
        """The scan, if ``caller`` may see it: a platform key only its own platform's scans (404 otherwise)."""
        job = self.jobs.get(job_id)
        owner = job.params.get(
            "platform", DEFAULT_PLATFORM
        )  # scans from before tenants: the default platform's
        if job.kind != "scan" or (caller.platform_scope() is not None and owner != caller.platform_scope()):
            raise not_found("scan")
        return job

    def get(self, job_id: str, caller: Principal = OPERATOR) -> dict[str, Any]:
        job = job_to_dict(self._scan_job(job_id, caller))
        return {
            **job,
            "failures": job["failures"] + self._failed_listings(job_id),
            "summary": self.summary(job_id),
        }

    def _failed_listings(self, job_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """The listings that failed (first ``limit`` by row): a scan's status must not say "no failures"."""
        with self.sessions() as session:
            items = session.scalars(
                select(ScanItem)
                .where(ScanItem.job_id == job_id, ScanItem.state == "failed")
                .order_by(ScanItem.row)
                .limit(limit)
            ).all()
        return [{"row": i.row, "listing_id": i.listing.get("listing_id"), "error": i.error} for i in items]

    def list(self, caller: Principal, limit: int = 50) -> list[dict[str, Any]]:
        """The caller's scans, newest first (a platform key: its own tenant's; an admin: all)."""
        scope = caller.platform_scope()
        with self.sessions() as session:
            jobs = session.scalars(
                select(Job).where(Job.kind == "scan").order_by(Job.created_at.desc())
            ).all()
        mine = [j for j in jobs if scope is None or j.params.get("platform", DEFAULT_PLATFORM) == scope]
        return [job_to_dict(job) for job in mine[:limit]]

    def cancel(self, job_id: str, actor: Principal) -> dict[str, Any]:
        self._scan_job(job_id, actor)
        self.jobs.request_cancel(job_id, actor)
        return self.get(job_id, actor)

    def summary(self, job_id: str) -> dict[str, Any]:
        with self.sessions() as session:
            rows = session.execute(
                select(ScanItem.state, ScanItem.verdict, func.count(ScanItem.id))
                .where(ScanItem.job_id == job_id)
                .group_by(ScanItem.state, ScanItem.verdict)
            ).all()
        verdicts: dict[str, int] = {}
        states: dict[str, int] = {}
        for state, verdict, count in rows:
            states[state] = states.get(state, 0) + count
            if verdict:
                verdicts[verdict] = verdicts.get(verdict, 0) + count
        return {"states": states, "verdicts": verdicts}

    def results(
        self,
        job_id: str,
        verdict: str | None,
        state: str | None,
        after: int,
        limit: int,
        caller: Principal = OPERATOR,
    ) -> list[dict[str, Any]]:
        self._scan_job(job_id, caller)
        with self.sessions() as session:
            query = select(ScanItem).where(ScanItem.job_id == job_id, ScanItem.row > after)
            if verdict:
                query = query.where(ScanItem.verdict == verdict)
            if state:
                query = query.where(ScanItem.state == state)
            return [_item_dict(item) for item in session.scalars(query.order_by(ScanItem.row).limit(limit))]

    def sellers(self, job_id: str, caller: Principal = OPERATOR) -> list[dict[str, Any]]:
        """Per seller: listings scanned, likely counterfeit ones, the highest probability; worst first."""
        by_seller: dict[tuple[str, str], dict[str, Any]] = {}
        for item in self.results(job_id, None, "done", 0, self.limits.max_listings, caller):
            if not item["seller_id"]:
                continue
            entry = by_seller.setdefault(
                (item["marketplace"], item["seller_id"]),
                {
                    "marketplace": item["marketplace"],
                    "seller_id": item["seller_id"],
                    "listings": 0,
                    "likely_counterfeit": 0,
                    "max_probability": 0.0,
                    "brands": set(),
                },
            )
            entry["listings"] += 1
            if item["verdict"] == "likely_counterfeit":
                entry["likely_counterfeit"] += 1
                if item["brand"]:
                    entry["brands"].add(item["brand"])
            entry["max_probability"] = max(entry["max_probability"], item["counterfeit_probability"] or 0.0)
        ranked = sorted(
            by_seller.values(),
            key=lambda e: (-e["likely_counterfeit"], -e["max_probability"], e["seller_id"]),
        )
        return [{**e, "brands": sorted(e["brands"])} for e in ranked]

    def export(self, job_id: str, fmt: str, caller: Principal = OPERATOR) -> bytes:
        rows = self._export_rows(self.results(job_id, None, None, 0, self.limits.max_listings, caller))
        columns = list(EXPORT_COLUMNS)
        if fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            sink = io.BytesIO()
            pq.write_table(pa.Table.from_pylist([{c: r[c] for c in columns} for r in rows]), sink)
            return sink.getvalue()
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue().encode()

    def _export_rows(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each result with the feed's title and URL, the reference that matched best and why, in words."""
        with self.sessions() as session:
            listings = {
                listing.id: listing
                for listing in session.scalars(
                    select(Listing).where(
                        Listing.id.in_([r["listing_check_id"] for r in rows if r["listing_check_id"]])
                    )
                )
            }
            check_ids = [c for listing in listings.values() for c in listing.check_ids]
            checks = {c.id: c for c in session.scalars(select(Check).where(Check.id.in_(check_ids)))}
        out = []
        for row in rows:
            listing = listings.get(row["listing_check_id"])
            photos = [checks[c] for c in (listing.check_ids if listing else []) if c in checks]
            out.append({**row, **_matched(photos, row["verdict"])})
        return out


def _matched(photos: list[Check], verdict: str | None) -> dict[str, Any]:
    """The strongest matched reference among a listing's photos, and the reason in words."""
    matches = sorted(
        (e for check in photos for e in check.evidence or [] if e.get("signals") and e.get("reference_id")),
        key=lambda e: (len(e["signals"]), e.get("similarity") or 0),
        reverse=True,
    )
    if not matches:
        reason = {
            None: "",
            "no_match": "no reference matched",
            "inconclusive": "weak or conflicting evidence",
        }.get(verdict, "judged by the brand's classifier")
        return {
            "matched_reference_id": None,
            "matched_label": None,
            "matched_product": None,
            "reason": reason,
        }
    best = matches[0]
    product = f" ({best['product']})" if best.get("product") else ""
    return {
        "matched_reference_id": best["reference_id"],
        "matched_label": best["label"],
        "matched_product": best.get("product"),
        "reason": f"{' + '.join(best['signals'])} match to {best['label']} reference {best['reference_id']}{product}",
    }


class _Progress:
    """Counts checked listings; writes progress and reads the cancel flag at most once a second."""

    def __init__(self, scans: ScanService, job_id: str, on_progress: Callable[[dict], None]):
        self.scans, self.job_id, self.on_progress = scans, job_id, on_progress
        self.started = time.monotonic()
        self.checked = 0
        self._cancelled = False
        self._next = 0.0

    def cancelled(self) -> bool:
        self._tick()
        return self._cancelled

    def advance(self) -> None:
        self.checked += 1
        self._tick()

    def _tick(self) -> None:
        if time.monotonic() < self._next:
            return
        self._next = time.monotonic() + 1.0
        jobs = self.scans.jobs
        self._cancelled = jobs.cancel_requested(self.job_id)
        jobs.update(
            self.job_id,
            done=self.scans.finished_count(self.job_id),
            embedded=self.checked,
            images_per_second=round(self.checked / max(time.monotonic() - self.started, 1e-9), 2),
        )
        self.on_progress(job_to_dict(jobs.get(self.job_id)))


EXPORT_COLUMNS = (
    "row",
    "listing_id",
    "title",
    "url",
    "seller_id",
    "marketplace",
    "state",
    "verdict",
    "counterfeit_probability",
    "brand",
    "listing_check_id",
    "matched_reference_id",
    "matched_label",
    "matched_product",
    "reason",
    "error",
)


def _item_dict(item: ScanItem) -> dict[str, Any]:
    return {
        "row": item.row,
        "listing_id": item.listing["listing_id"],
        "title": item.listing.get("title"),
        "url": item.listing.get("url"),
        "seller_id": item.listing.get("seller_id"),
        "marketplace": item.listing.get("marketplace"),
        "state": item.state,
        "verdict": item.verdict,
        "counterfeit_probability": item.probability,
        "brand": item.brand,
        "listing_check_id": item.listing_check_id,
        "error": item.error,
    }


def _facts_of(listing: dict) -> ListingFacts:
    """A stored feed row's facts (its identifiers were keyed on arrival and are not among them)."""
    return ListingFacts(
        listing["listing_id"],
        listing.get("seller_id"),
        listing.get("marketplace"),
        listing.get("title"),
        listing.get("price"),
        listing.get("currency"),
        listing.get("url"),
    )


def _mark_done(session: Session, item_id: int, answer: dict[str, Any], missing: int) -> None:
    """The scan item's outcome, in the listing check's own transaction."""
    row = session.get(ScanItem, item_id)
    row.state, row.verdict, row.probability = "done", answer["verdict"], answer["counterfeit_probability"]
    row.brand, row.listing_check_id, row.finished_at = answer["brand"], answer["listing_check_id"], utcnow()
    row.error = None if not missing else f"{missing} image(s) not fetched"
