"""Brands' look-alike classifiers: fitted by a job after their references change, read by every replica.

The maintenance lease holder looks each poll for brands whose change log moved past what their
classifier was fitted on and that have been quiet for ``COUNTERFEIT_LOOKALIKE_DEBOUNCE_SECONDS``
(a registration burst trains once, at its end), and runs a ``lookalike`` job for them: the stored
embeddings of the served model, with their region vectors (nothing is re-embedded), one fit per brand
(scoring.lookalike_fit: the probe and its membership model, whose negatives are a sample of the other
brands' references and the model's background images),
one row per brand and model fingerprint — a classifier, or why the brand gets none. Replicas
reload the rows that changed; a classifier fitted for another model is never used.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from index.regions import unpack as unpack_regions
from scoring.lookalike import BrandProbe, ProbeSet
from service.core.errors import DomainError
from service.core.timestamps import aware, utcnow
from service.db.models import Change, Embedding, Label, LookalikeProbe, Reference
from service.jobs.launcher import JobLauncher
from service.jobs.store import JobStore
from service.serving.index_sync import latest_change_seq
from service.settings import Settings

log = logging.getLogger(__name__)


class ProbeStore:
    """The trained classifiers of one model fingerprint, reloaded when their rows change."""

    def __init__(self, sessions: sessionmaker[Session]):
        self.sessions = sessions
        self._fingerprint: str | None = None
        self._versions: dict[str, str] = {}
        self._probes = ProbeSet({})
        self._lock = threading.Lock()

    def for_model(self, fingerprint: str) -> ProbeSet:
        if fingerprint != self._fingerprint:
            self.refresh(fingerprint)
        return self._probes

    def refresh(self, fingerprint: str) -> None:
        with self._lock:
            with self.sessions() as session:
                rows = session.execute(
                    select(LookalikeProbe.brand, LookalikeProbe.version).where(
                        LookalikeProbe.model_fingerprint == fingerprint, LookalikeProbe.state == "trained"
                    )
                ).all()
                versions = {brand: version for brand, version in rows}
                if fingerprint == self._fingerprint and versions == self._versions:
                    return
                changed = [
                    b
                    for b, v in versions.items()
                    if self._versions.get(b) != v or fingerprint != self._fingerprint
                ]
                loaded = {
                    row.brand: BrandProbe.from_dict(row.artefact)
                    for row in session.scalars(
                        select(LookalikeProbe).where(
                            LookalikeProbe.model_fingerprint == fingerprint, LookalikeProbe.brand.in_(changed)
                        )
                    )
                }
            keep = (
                {b: p for b, p in self._probes.items() if b in versions and b not in loaded}
                if fingerprint == self._fingerprint
                else {}
            )
            self._probes = ProbeSet(
                {**keep, **loaded}
            )  # replaced whole: readers never see a half-updated set
            self._versions, self._fingerprint = versions, fingerprint


def stale_brands(sessions: sessionmaker[Session], fingerprint: str) -> list[tuple[str, int, datetime]]:
    """Brands whose references changed after their classifier was fitted: (brand, last seq, last change time)."""
    with sessions() as session:
        latest = session.execute(
            select(Change.brand, func.max(Change.seq), func.max(Change.created_at)).group_by(Change.brand)
        ).all()
        fitted = dict(
            session.execute(
                select(LookalikeProbe.brand, LookalikeProbe.trained_through_seq).where(
                    LookalikeProbe.model_fingerprint == fingerprint
                )
            ).all()
        )
    return [(brand, int(seq), aware(at)) for brand, seq, at in latest if seq > fitted.get(brand, 0)]


class ProbeTrainer:
    def __init__(self, settings: Settings, sessions: sessionmaker[Session], jobs: JobStore):
        self.settings = settings
        self.sessions = sessions
        self.jobs = jobs
        self.launcher = JobLauncher(jobs)
        self._settled: tuple[str, int] | None = None  # (fingerprint, change seq) at which nothing was stale

    def start_if_due(self, fingerprint: str, background: np.ndarray) -> str | None:
        """Start a ``lookalike`` job (on a thread) for the brands that are due; its id, or None.

        Runs every poll on the lease holder: while the change log has not moved since every brand was
        last found fitted, it costs one indexed ``max(seq)`` instead of aggregating the whole log."""
        seq = latest_change_seq(self.sessions)
        if self._settled == (fingerprint, seq):
            return None
        stale = stale_brands(self.sessions, fingerprint)
        if not stale:
            self._settled = (fingerprint, seq)
            return None
        quiet_since = utcnow() - timedelta(seconds=self.settings.lookalike_debounce_seconds)
        due = [
            (brand, last) for brand, last, at in stale if at <= quiet_since
        ]  # a burst is fitted once, at its end
        if not due:
            return None
        try:
            job = self.launcher.launch(
                "lookalike",
                {"model_fingerprint": fingerprint, "brands": [b for b, _ in due]},
                lambda job_id: self.run(job_id, fingerprint, due, background),
            )
        except DomainError:  # one is running already; the brands stay due for the next poll
            return None
        return job.id

    def run(self, job_id: str, fingerprint: str, due: list[tuple[str, int]], background: np.ndarray) -> None:
        """Never raises: the job row says what happened."""
        self.jobs.update(job_id, state="running", started_at=utcnow(), total=len(due))
        results: dict[str, Any] = {}
        try:
            for done, (brand, seq) in enumerate(due, 1):
                results[brand] = self.fit(brand, fingerprint, seq, background)
                self.jobs.update(job_id, done=done, result=results)
        except Exception as exc:  # the job must end in a state, whatever went wrong
            log.exception("Look-alike job %s failed", job_id)
            self.jobs.update(
                job_id, state="failed", error=f"{type(exc).__name__}: {exc}", finished_at=utcnow()
            )
        else:
            self.jobs.update(job_id, state="succeeded", result=results, finished_at=utcnow())

    def fit(self, brand: str, fingerprint: str, seq: int, background: np.ndarray) -> dict[str, Any]:
        from scoring.lookalike_fit import MAX_NEGATIVES, Abstained, fit_brand_probe, probe_negatives

        vectors, labels, groups = self._views(Reference.brand == brand, fingerprint)
        # Other brands' references, a random sample: enough to learn "another product", bounded cost.
        others, _, _ = self._views(Reference.brand != brand, fingerprint, limit=MAX_NEGATIVES // 6 + 1)
        outcome = fit_brand_probe(
            brand,
            vectors,
            labels,
            fingerprint,
            groups=groups,
            negatives=probe_negatives(others, background),
            min_per_bank=self.settings.lookalike_min_per_bank,
            min_cv_auc=self.settings.lookalike_min_cv_auc,
            min_precision=self.settings.lookalike_min_precision,
            trained_through_seq=seq,
        )
        with self.sessions() as session:
            row = session.get(LookalikeProbe, (brand, fingerprint)) or LookalikeProbe(
                brand=brand, model_fingerprint=fingerprint
            )
            if isinstance(outcome, Abstained):
                row.state, row.version, row.reason, row.artefact = "abstained", None, outcome.reason, None
                summary = {"state": "abstained", "reason": outcome.reason, "counts": outcome.counts}
            else:
                row.state, row.version, row.reason, row.artefact = (
                    "trained",
                    outcome.version,
                    None,
                    outcome.to_dict(),
                )
                summary = {
                    "state": "trained",
                    "version": outcome.version,
                    "cv_accuracy": outcome.cv_accuracy,
                    "cv_auc": outcome.cv_auc,
                    "counts": outcome.counts,
                }
            row.trained_through_seq, row.updated_at = seq, utcnow()
            session.add(row)
            session.commit()
        log.info("Look-alike classifier for brand %s: %s", brand, summary)
        return summary

    def _views(
        self, which, fingerprint: str, limit: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every stored vector (whole image and regions) of the live references ``which`` selects: the
        vectors, their bank (1: counterfeit) and the reference each belongs to. ``limit``: that many
        references at random."""
        query = (
            select(Embedding.reference_id, Embedding.vector, Embedding.regions, Reference.label)
            .join(Reference, Reference.id == Embedding.reference_id)
            .where(which, Reference.deleted_at.is_(None), Embedding.fingerprint == fingerprint)
        )
        if limit is not None:
            query = query.order_by(func.random()).limit(limit)
        with self.sessions() as session:
            rows = session.execute(query).all()
        vectors, labels, groups = [], [], []
        for reference_id, vector, regions, label in rows:
            whole = np.frombuffer(vector, dtype=np.float32)
            views = np.vstack([whole[None], unpack_regions(regions, len(whole))]) if regions else whole[None]
            vectors.append(views)
            labels += [int(label is Label.counterfeit)] * len(views)
            groups += [reference_id] * len(views)
        if not vectors:
            return np.zeros((0, 1), np.float32), np.zeros(0, int), np.zeros(0, np.int64)
        return np.vstack(vectors), np.array(labels, dtype=int), np.array(groups, dtype=np.int64)
