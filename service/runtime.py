"""Wires settings into the running pieces; shared by the HTTP app and the CLI."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import numpy as np
from sqlalchemy import func, select

from index.generations import Generations
from index.images import DecodeBudget
from index.models import ModelIdentityError, ModelSpecError, ModelUnavailableError
from index.prepare import CpuWorkers
from scoring.calibration import CalibrationStore
from service.api.ui_sessions import UiSessions
from service.checks.active_scoring import ActiveScoring
from service.checks.check_log import CheckWriter
from service.checks.checker import Checker
from service.checks.history import CheckHistory
from service.checks.lookalike import ProbeStore, ProbeTrainer
from service.checks.policies import PolicyStore
from service.checks.review_cases import ReviewCases
from service.checks.review_queue import ReviewQueue
from service.checks.reviews import ReviewService
from service.core.audit import AuditLog
from service.core.auth import ensure_key
from service.core.blobs import open_blob_store
from service.core.fetch import SafeFetcher
from service.core.leases import Leases, process_identity
from service.core.metrics import Metrics
from service.core.people import People
from service.core.ratelimit import SharedTokenBuckets, TokenBuckets
from service.db.models import ApiKey, Role
from service.db.session import SchemaMismatch, make_engine, make_session_factory
from service.exchange.feed import FeedPublisher
from service.exchange.identifiers import IdentifierKeying
from service.exchange.signals import SharedSignalIndex, SignalSharing
from service.exchange.webhooks import WebhookDeliverer, WebhookRegistry
from service.jobs.launcher import JobLauncher
from service.jobs.lease_duties import LeaseHolderDuties
from service.jobs.scans import ScanLimits, ScanService
from service.jobs.store import JobStore
from service.marketplace.cases import CaseBuilder
from service.marketplace.complaints import ComplaintService
from service.marketplace.listings import ListingChecker
from service.marketplace.purchases import TestPurchases
from service.marketplace.reports import Reports
from service.marketplace.sellers import SellerRecords
from service.references.registry import ReferenceRegistry
from service.serving.follower import GenerationFollower
from service.serving.generation_store import GenerationStore
from service.serving.index_sync import IndexModelMismatch
from service.serving.memory import return_large_allocations_to_os
from service.serving.model_options import ModelOptions
from service.serving.runner import Serving, ServingSlot, open_serving
from service.settings import Settings

log = logging.getLogger(__name__)
# Misconfiguration the operator must fix; reported as one clear message, never a traceback.
STARTUP_ERRORS = (
    ModelSpecError,
    ModelUnavailableError,
    ModelIdentityError,
    IndexModelMismatch,
    SchemaMismatch,
)
MAINTENANCE_LEASE = "maintenance"


class Runtime:
    def __init__(self, settings: Settings, persist_snapshots: bool = True):
        self.settings = settings
        self.persist_snapshots = persist_snapshots
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self._open_storage()
        self._bootstrap_keys()
        self._configure_torch()
        self.metrics = Metrics()
        self._start_workers()
        self._start_serving()
        self._start_domain_services()

    def _open_storage(self) -> None:
        """The database, blobs and index generations; the leases, jobs, audit log and rate limits kept in them."""
        settings = self.settings
        self.engine = make_engine(settings.resolved_database_url)
        self.sessions = make_session_factory(self.engine)
        self.blobs = open_blob_store(settings.blob_url, settings.blob_dir)
        self.generations = Generations(settings.index_dir)
        # Once-only background work (snapshots, retention GC) is done by the holder of a lease; the CLI never competes.
        self.leases = Leases(self.sessions, process_identity(), settings.lease_seconds)
        self.is_leader = self.persist_snapshots and self.leases.hold(MAINTENANCE_LEASE)
        self.jobs = JobStore(self.sessions)
        self.launcher = JobLauncher(self.jobs)  # every background job starts (or is adopted) through it
        self.audit = AuditLog(self.sessions)
        self.people = People(self.sessions)
        self.review_queue = ReviewQueue(self.sessions)
        self.review_cases = ReviewCases(self.sessions, self.review_queue)
        # Shared by every replica on PostgreSQL; on SQLite, per process.
        self.rate_limits = (
            SharedTokenBuckets(self.engine) if self.engine.dialect.name == "postgresql" else TokenBuckets()
        )

    def _start_workers(self) -> None:
        """CPU worker processes and dispatch threads, the fetcher, webhooks and the check log's group commit."""
        settings = self.settings
        return_large_allocations_to_os()
        # CPU-heavy image work in worker processes (one per core by default); each dispatching thread
        # waits on one worker, so there are enough threads to keep every worker busy.
        self.workers = CpuWorkers(
            settings.resolved_cpu_workers, settings.decode_threads, initializer=return_large_allocations_to_os
        )
        self.pool = ThreadPoolExecutor(
            settings.decode_threads + 2 * settings.resolved_cpu_workers, thread_name_prefix="dispatch"
        )
        self.fetcher = SafeFetcher(
            settings.max_image_bytes,
            settings.fetch_timeout_seconds,
            allow_loopback=settings.unsafe_fetch_allow_loopback_for_tests,
        )
        self.webhooks = WebhookRegistry(self.sessions, self.fetcher)
        self.deliverer = WebhookDeliverer(self.sessions, self.fetcher, settings.webhook_retry_base_seconds)
        self.check_log = CheckWriter(self.sessions, self.metrics, on_commit=self.deliverer.wake)
        self.decode_budget = DecodeBudget(settings.decode_memory_mb << 20, settings.decode_wait_seconds)

    def _start_serving(self) -> None:
        """The model and index generation this replica answers with (the deployment's current one, adopted)."""
        settings = self.settings
        # The deployment's current generation (a reindex on another disk moves it): adopted, with its snapshot.
        self.generation_store = GenerationStore(self.sessions, self.generations, self.blobs)
        self.generation_store.adopt_current()
        embedder = ModelOptions.from_settings(settings).load(self._model_to_serve())
        self.slot = ServingSlot(self._open_serving(embedder))
        if self.generation_store.pointer() is None:  # the first process of this deployment (or of release 3)
            self.generation_store.publish(self.slot.current.index_sync.generation)
        self.follower = GenerationFollower(
            settings=settings,
            store=self.generation_store,
            generations=self.generations,
            slot=self.slot,
            open_serving=self._open_serving,
        )

    def _start_domain_services(self) -> None:
        """References, policies, reviews, signals, the feed, scoring, checks, listings, sellers, scans."""
        self.registry = ReferenceRegistry(self.sessions, self.blobs, self.slot)
        self.policies = PolicyStore(self.sessions)
        self.reviews = ReviewService(
            sessions=self.sessions,
            blobs=self.blobs,
            registry=self.registry,
            policies=self.policies,
            on_event=self.deliverer.wake,
        )
        self._start_exchange()
        self._start_checks()
        self._start_workflows()
        self._start_jobs()
        self.ui_sessions = UiSessions(
            self.sessions, self.people, timedelta(hours=self.settings.ui_session_hours)
        )

    def _start_exchange(self) -> None:
        """Signals shared with other platforms, and this platform's signed feed."""
        settings = self.settings
        self.shared_signals = SharedSignalIndex()
        self.shared_signals.load(self.sessions)
        self.signal_sharing = SignalSharing(
            sessions=self.sessions,
            issuer=settings.signal_issuer,
            private_key=settings.signal_private_key,
            trusted=settings.trusted_signal_issuers,
            index=self.shared_signals,
        )
        self.feed = FeedPublisher(
            sessions=self.sessions,
            issuer=settings.signal_issuer,
            private_key=settings.signal_private_key,
            seller_ttl_days=settings.exchange_seller_ttl_days,
            page_size=settings.exchange_page_size,
        )

    def _start_checks(self) -> None:
        """Scoring and calibration, the checker, listings and sellers, review-page sessions, scans."""
        settings = self.settings
        self.scoring = ActiveScoring(
            settings=settings,
            calibrations=CalibrationStore(settings.data_dir / "calibration"),
            policies=self.policies,
            slot=self.slot,
        )
        self.probes = ProbeStore(self.sessions)
        self.probe_trainer = ProbeTrainer(settings, self.sessions, self.jobs)
        self.checker = Checker(
            slot=self.slot,
            registry=self.registry,
            blobs=self.blobs,
            scorer=lambda: self.scoring.scorer,  # the active calibration can change while serving
            thresholds=self.scoring.thresholds_for,
            keep_image=self.policies.keeps_check_images,
            shared=self.shared_signals,
            pdq_max_distance=settings.pdq_max_distance,
            pool=self.pool,
            workers=self.workers,
            check_log=self.check_log,
            metrics=self.metrics,
            probes=self.probes.for_model,
        )
        self.sellers = SellerRecords(
            self.sessions,
            {
                issuer: peer.weight
                for issuer, peer in settings.exchange_peers.items()
                if peer.enabled and "seller" in peer.types
            },
        )
        self.listings = ListingChecker(
            sessions=self.sessions,
            checker=self.checker,
            registry=self.registry,
            sellers=self.sellers,
            thresholds=self.scoring.thresholds_for,
            keying=IdentifierKeying(settings.consortium_key_bytes(), settings.default_phone_region),
            on_event=self.deliverer.wake,
        )

    def _start_workflows(self) -> None:
        """Complaints, test purchases, transparency reports and case packages: brands and platforms working together."""
        settings = self.settings
        self.complaints = ComplaintService(
            sessions=self.sessions,
            blobs=self.blobs,
            listings=self.listings,
            reviews=self.reviews,
            registry=self.registry,
            metrics=self.metrics,
            default_k=settings.default_k,
            on_event=self.deliverer.wake,
        )
        self.metrics.complaints_overdue.set_function(self.complaints.overdue_count)
        self.reports = Reports(self.sessions)
        self.check_history = CheckHistory(self.sessions)
        self.cases = CaseBuilder(
            sessions=self.sessions,
            blobs=self.blobs,
            sellers=self.sellers,
            issuer=settings.signal_issuer,
            private_key=settings.signal_private_key,
            shared_weights=self.sellers.shared_weights,
        )
        self.test_purchases = TestPurchases(
            sessions=self.sessions,
            blobs=self.blobs,
            registry=self.registry,
            listings=self.listings,
            on_event=self.deliverer.wake,
        )

    def _start_jobs(self) -> None:
        """Scans, and the duties the maintenance lease holder does for the deployment."""
        settings = self.settings
        self.scans = ScanService(
            sessions=self.sessions,
            jobs=self.jobs,
            listings=self.listings,
            fetcher=self.fetcher,
            blobs=self.blobs,
            limits=ScanLimits.from_settings(settings),
            settings=settings,
            served_model=lambda: self.serving.runner.info.spec,
            on_event=self.deliverer.wake,
        )
        self.duties = LeaseHolderDuties(
            settings=settings,
            sessions=self.sessions,
            blobs=self.blobs,
            jobs=self.jobs,
            launcher=self.launcher,
            slot=self.slot,
            scans=self.scans,
        )

    def _background_vectors(self) -> np.ndarray:
        """The served model's background images, embedded at load: look-alike negatives (scoring.lookalike_fit)."""
        embedder = self.serving.runner.embedder
        return getattr(embedder, "background_vectors", np.zeros((0, embedder.info.dimension), np.float32))

    def _open_serving(self, embedder) -> Serving:
        return open_serving(
            self.settings,
            sessions=self.sessions,
            blobs=self.blobs,
            metrics=self.metrics,
            embedder=embedder,
            budget=self.decode_budget,
            persist_snapshots=self._may_snapshot,
        )

    def _may_snapshot(self) -> bool:
        return self.is_leader

    def maintain(self) -> None:
        """Each poll: refresh what the lease holder fitted or pulled; renew (or take over) the maintenance
        lease, and as its holder fit look-alike classifiers, deliver webhooks and do the deployment's duties."""
        fingerprint = self.serving.runner.info.fingerprint()
        self.probes.refresh(fingerprint)  # every replica scores with the classifiers the leader fitted
        # A feed pull (another process) may have changed the shared signals.
        self.shared_signals.refresh_if_changed(self.sessions)
        if not self.persist_snapshots:
            return
        self.is_leader = self.leases.hold(MAINTENANCE_LEASE)
        if self.is_leader:
            self.probe_trainer.start_if_due(fingerprint, self._background_vectors())
            self.deliverer.ensure_running()  # the outbox is delivered by one process: the lease holder
            self.duties.run()
        else:
            self.deliverer.stop()

    def start_scan(self, job_id: str) -> None:
        self.launcher.start(self.jobs.get(job_id), self.scans.run)

    @property
    def serving(self) -> Serving:
        return self.slot.current

    def _model_to_serve(self) -> str:
        """An explicitly configured model must match the index (else: refused, reindex); otherwise the index's model."""
        current = self.generations.current()
        if current is None or "model" in self.settings.model_fields_set:
            return self.settings.model
        return current.model_info()["spec"]

    def follow_generation(self) -> bool:
        return self.follower.follow()

    def _configure_torch(self) -> None:
        if self.settings.torch_threads:
            import torch

            torch.set_num_threads(self.settings.torch_threads)

    def _bootstrap_keys(self) -> None:
        with self.sessions() as session:
            if self.settings.bootstrap_admin_key:
                ensure_key(session, self.settings.bootstrap_admin_key, Role.admin, name="bootstrap")
            elif not session.scalar(
                select(func.count()).select_from(ApiKey).where(ApiKey.role == Role.admin)
            ):
                log.warning(
                    "No admin API key exists yet. Create one with: counterfeit keys create --role admin "
                    "(or set COUNTERFEIT_BOOTSTRAP_ADMIN_KEY)."
                )

    def close(self) -> None:
        self.scans.close()
        self.deliverer.stop(
            final=True, wait=10
        )  # what is not delivered stays in the outbox for the next lease holder
        self.slot.current.close()  # the leader's last snapshot
        if self.is_leader:
            self.leases.release(MAINTENANCE_LEASE)  # another replica takes over at its next poll
        self.pool.shutdown(wait=True)
        self.check_log.close()  # commits what is queued
        self.workers.shutdown()
        self.engine.dispose()
