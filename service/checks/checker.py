"""The check path: prepare (decode + PDQ + pixels, in a CPU worker process) → embed (batched) →
CLIP search + PDQ lookup → score → audit row (group-committed) → answer.

``check_async`` is the request path. The event loop only awaits: a dispatch thread checks the
header limits, reserves decode memory and hands the bytes to a CPU worker process; the model
runs on the batching runner's thread; search and scoring run on the thread pool; the audit row
joins the next group commit and the answer waits for that commit, so a check id a caller holds
is always in the database.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from index.images import admit
from index.local_features import MAX_SIDE, Keypoints, detect
from index.pdq import PdqHash
from index.prepare import CpuWorkers, Prepared, PrepareSpec
from index.regions import WHOLE, EncodedRegion, Region, reference_regions
from scoring.evidence import gather_evidence
from scoring.features import Neighbour
from scoring.lookalike import BrandProbe, look_alike
from scoring.scorers import Scorer, Thresholds, score
from scoring.signals import EvidenceQuery, EvidenceSources
from scoring.signals.keypoints import verification_skipped
from service.checks.check_log import CheckWriter
from service.core.blobs import BlobStore, BlobStoreUnavailable, sha256_hex
from service.core.errors import Busy, DomainError, InvalidInput, overloaded
from service.core.metrics import Metrics
from service.db.models import Check
from service.exchange.signals import SharedSignalIndex
from service.references.registry import ReferenceRegistry
from service.serving.embedding import EmbedFailed, QueueFull
from service.serving.runner import Serving, ServingSlot
from service.serving.uploads import prepare_upload, rejections_as_errors

log = logging.getLogger(__name__)


@contextmanager
def embed_failures_as_http() -> Iterator[None]:
    try:
        yield
    except EmbedFailed as exc:  # the device decoder and Pillow both refused bytes the worker could read
        raise InvalidInput("corrupt_image", f"The image data could not be decoded: {exc}") from None


@dataclass
class Evaluated:
    answer: dict[str, Any]
    check: Check


@dataclass(frozen=True)
class Embedded:
    """A photo already embedded and hashed elsewhere, with the fingerprint of the model that did it."""

    vector: np.ndarray  # the whole photo's embedding, or one row per query region (the whole photo's first)
    pdq: PdqHash
    fingerprint: str


class Checker:
    def __init__(
        self,
        *,
        slot: ServingSlot,
        registry: ReferenceRegistry,
        blobs: BlobStore,
        scorer: Callable[[], Scorer],
        thresholds: Callable[[str | None], Thresholds],
        keep_image: Callable[[str | None], bool],
        shared: SharedSignalIndex,
        pdq_max_distance: int,
        pool: Executor,
        workers: CpuWorkers,
        check_log: CheckWriter,
        metrics: Metrics,
        probes: Callable[[str], Mapping[str, BrandProbe]] = lambda fingerprint: {},
    ):
        self.slot = slot
        self.registry = registry
        self.blobs = blobs
        self.scorer = scorer  # a callable: the active calibration can change while serving
        self.thresholds = thresholds  # brand -> its policy's thresholds (or the global default)
        self.keep_image = keep_image  # brand -> whether its policy wants checked images kept
        self.shared = shared  # known-fake hashes other platforms shared
        self.pdq_max_distance = pdq_max_distance
        self.pool = pool  # threads: dispatch to workers, search, scoring
        self.workers = workers  # processes (or threads): decoding, PDQ, resizing
        self.check_log = check_log
        self.metrics = metrics
        self.probes = probes  # model fingerprint -> brand -> its look-alike classifier

    def knows_brand(self, brand: str) -> bool:
        """Whether a brand hint can find anything: the brand has references here, or peers shared its signals."""
        return brand in self.slot.current.index_sync.index.brands() or brand in self.shared.brands()

    def check(self, data: bytes, brand_hint: str | None, k: int, api_key_id: str | None) -> dict[str, Any]:
        """Blocking variant (CLI)."""
        with self.slot.use() as serving:
            futures, pdq, gray = self._dispatch(serving, data)
            keypoints = detect(gray) if self._wants_keypoints(serving, gray, pdq, brand_hint, k) else None
            with embed_failures_as_http():
                vectors, pdq = self._vectors_and_pdq([f.result() for f in futures], pdq)
            evaluated = self.evaluate(serving, data, pdq, vectors, brand_hint, k, api_key_id, keypoints)
        self.check_log.write(evaluated.check).result()
        return evaluated.answer

    async def check_async(
        self,
        data: bytes,
        brand_hint: str | None,
        k: int,
        api_key_id: str | None,
        embedded: Embedded | None = None,
        check_id: str | None = None,
    ) -> dict[str, Any]:
        """``embedded``: the photo's vector and PDQ hash, when another pipeline (a Ray scan) already made them
        with the served model; the rest — search, scoring, the audit row — is the same. ``check_id``: the id to
        record it under, for work that may be redone after a crash (a scan): a stored id is not recorded twice."""
        loop = asyncio.get_running_loop()
        with self.slot.use() as serving:  # one model and one index generation for the whole request
            if embedded is not None:
                if embedded.fingerprint != serving.runner.info.fingerprint():
                    raise Busy(
                        "model_changed", "The photo was embedded with another model than the one served."
                    )
                vectors, pdq, keypoints = np.atleast_2d(embedded.vector), embedded.pdq, None
            else:
                futures, pdq, gray = await loop.run_in_executor(self.pool, self._dispatch, serving, data)
                # Keypoints are detected while the model runs, on the loop's default executor: not on
                # ``self.pool``, whose threads may be waiting for it (evaluate runs there).
                detecting = (
                    loop.run_in_executor(None, self._detect, gray)
                    if self._wants_keypoints(serving, gray, pdq, brand_hint, k)
                    else None
                )
                started = time.perf_counter()
                with embed_failures_as_http():
                    results = await asyncio.gather(*(asyncio.wrap_future(f) for f in futures))
                    vectors, pdq = self._vectors_and_pdq(results, pdq)
                self.metrics.stage_seconds.labels("model_wait").observe(time.perf_counter() - started)
                keypoints = await detecting if detecting is not None else None
            evaluated = await loop.run_in_executor(
                self.pool,
                self.evaluate,
                serving,
                data,
                pdq,
                vectors,
                brand_hint,
                k,
                api_key_id,
                keypoints,
                check_id,
            )
        await asyncio.wrap_future(self.check_log.write(evaluated.check))
        return evaluated.answer

    async def check_many(
        self,
        images: list[tuple[str | None, bytes]],
        brand_hint: str | None,
        k: int,
        api_key_id: str | None,
        request_id: str | None,
        embedded: list[Embedded | None] | None = None,
        check_ids: list[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Each (file name, bytes) checked like one ``check_async`` (together they share model passes); per
        photo its result, or the status and error it alone would have got — one bad photo fails only itself."""
        made = embedded or [None] * len(images)
        ids = check_ids or [None] * len(images)
        outcomes = await asyncio.gather(
            *(
                self.check_async(data, brand_hint, k, api_key_id, e, check_id)
                for (_, data), e, check_id in zip(images, made, ids)
            ),
            return_exceptions=True,
        )
        items = []
        for index, ((filename, _), outcome) in enumerate(zip(images, outcomes)):
            if isinstance(outcome, QueueFull):
                outcome = overloaded(str(outcome))
            if isinstance(outcome, DomainError):
                items.append(
                    {
                        "index": index,
                        "filename": filename,
                        "status": outcome.status,
                        "error": {"code": outcome.code, "message": outcome.message, "request_id": request_id},
                    }
                )
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                items.append({"index": index, "filename": filename, "status": 200, "result": outcome})
        return items

    def _wants_keypoints(
        self, serving: Serving, gray: np.ndarray | None, pdq: PdqHash | None, brand_hint: str | None, k: int
    ) -> bool:
        """Whether to detect the upload's keypoints: not when its hash (known before the model runs on the CPU
        path) already matches a reference, since evidence then skips verification (``scoring.signals.keypoints``). A
        re-uploaded brand photo, the commonest copy, thus costs no keypoint detection (≈ 23 ms of CPU)."""
        if gray is None:
            return False
        if pdq is None:  # hashed on the device, with the vector: not known yet
            return True
        return not verification_skipped(self._sources(serving), pdq, k, brand_hint)

    def _detect(self, gray: np.ndarray) -> Keypoints:
        started = time.perf_counter()
        keypoints = detect(gray)
        self.metrics.stage_seconds.labels("keypoints").observe(time.perf_counter() - started)
        return keypoints

    def _dispatch(
        self, serving: Serving, data: bytes
    ) -> tuple[list[Future], PdqHash | None, np.ndarray | None]:
        """Blocking part before the model (run on a thread): queue the upload for the model.

        On a GPU the header is checked here and the model side decodes (nvJPEG, once per upload), cuts
        the query regions from the decoded pixels, embeds and hashes (PDQ as tensor ops): the whole
        image's future gives ``(vector, pdq)``, each other region's ``(vector, None)``; meanwhile a CPU worker makes
        the small grayscale image keypoints are detected on (:meth:`_keypoint_image`). Otherwise a CPU worker decodes, hashes,
        resizes and cuts the query regions first: a future per region gives its vector (the runner batches
        them with everyone else's); the hash and the small grayscale image keypoints are detected on come
        back with them here."""
        if serving.runner.embedder.decodes_on_device:
            self._admit(serving, data)
            regions = serving.prepare_spec.regions
            futures = serving.runner.submit_many(
                [data] + [EncodedRegion(data, region) for region in regions[1:]], want_pdq=True
            )
            return (
                futures,
                None,
                self._keypoint_image(serving, data) if serving.prepare_spec.keypoints else None,
            )
        prepared = self._prepare(serving, data)
        return serving.runner.submit_many(prepared.model_inputs), prepared.pdq, prepared.keypoint_image

    @staticmethod
    def _vectors_and_pdq(results: list[Any], pdq: PdqHash | None) -> tuple[np.ndarray, PdqHash]:
        """One row per region searched (the whole image first), and the upload's hash."""
        if (
            pdq is None
        ):  # decoded on the device: ``(vector, pdq)`` per region, the hash with the whole image's
            return np.stack([vector for vector, _ in results]), results[0][1]
        return np.stack(results), pdq

    @staticmethod
    def _regions(serving: Serving, vectors: np.ndarray) -> tuple[Region, ...]:
        regions = serving.prepare_spec.regions
        return regions if len(vectors) == len(regions) else (WHOLE,)

    def _keypoint_image(self, serving: Serving, data: bytes) -> np.ndarray | None:
        """For models that decode on their device: a CPU decode just for keypoints, made while the device
        decodes and embeds. JPEG DCT scaling decodes straight to ``MAX_SIDE`` (an eighth of a large photo's
        pixels), so it costs a fraction of the full decode that path avoids."""
        spec = replace(
            serving.prepare_spec,
            draft_size=(MAX_SIDE, MAX_SIDE),
            pixels=None,
            want_model_input=False,
            want_pdq=False,
        )
        return self._prepare(serving, data, spec).keypoint_image

    def _prepare(self, serving: Serving, data: bytes, spec: PrepareSpec | None = None) -> Prepared:
        started = time.perf_counter()
        prepared = prepare_upload(data, serving.limits, self.workers, spec or serving.prepare_spec)
        for stage, seconds in (prepared.seconds or {}).items():
            self.metrics.stage_seconds.labels(stage).observe(seconds)
        self.metrics.stage_seconds.labels("prepare_wait").observe(time.perf_counter() - started)
        return prepared

    @staticmethod
    def _admit(serving: Serving, data: bytes) -> None:
        """Byte and pixel limits from the header alone (the device decodes; no CPU decode memory is reserved)."""
        limits = serving.limits
        with rejections_as_errors():
            admit(data, limits.max_bytes, limits.max_pixels, limits.draft_size)

    def evaluate(
        self,
        serving: Serving,
        data: bytes,
        pdq: PdqHash | None,
        vectors: np.ndarray,
        brand_hint: str | None,
        k: int,
        api_key_id: str | None,
        keypoints: Keypoints | None = None,
        check_id: str | None = None,
    ) -> Evaluated:
        """``vectors``: one row per query region searched, the whole image's first; ``keypoints``: the upload's,
        where local-feature verification is on."""
        assert pdq is not None  # workers always hash uploads
        started = time.perf_counter()
        neighbours = self._search(serving, vectors, pdq, k, brand_hint, keypoints)
        searched = time.perf_counter()
        self.metrics.search_seconds.observe(searched - started)
        self.metrics.stage_seconds.labels("search").observe(searched - started)
        scorer = self.scorer()
        first_guess = neighbours[0].brand if neighbours else brand_hint
        probes = self.probes(serving.runner.info.fingerprint())
        lookalike = look_alike(probes, vectors, brand_hint)
        result = score(
            scorer,
            neighbours,
            brand_hint,
            serving.min_match_similarity,
            self.thresholds(brand_hint or first_guess),
            lookalike,
        )
        digest = sha256_hex(data)
        self._keep_if_wanted(data, result.brand, digest)
        check = Check(
            id=check_id or "chk_" + uuid.uuid4().hex,
            api_key_id=api_key_id,
            brand_hint=brand_hint,
            brand=result.brand,
            image_sha256=digest,
            pdq_hash=pdq.hex,
            pdq_quality=pdq.quality,
            features=result.features.values,
            verdict=result.verdict,
            probability=result.probability,
            evidence_ids=[n.reference_id for n in neighbours if n.shared_by is None],
            model_fingerprint=serving.runner.info.fingerprint(),
            scorer=scorer.name,
        )
        self.metrics.stage_seconds.labels("score").observe(time.perf_counter() - searched)
        check.evidence = [self._evidence(n, serving.min_match_similarity) for n in neighbours]
        answer = self._answer(check, result, serving, scorer.name, pdq, lookalike)
        return Evaluated(answer, check)

    def _search(self, serving: Serving, vectors, pdq: PdqHash, k: int, brand_hint: str | None, keypoints):
        """The evidence: every signal (scoring.signals) over the served generation's indexes."""
        query = EvidenceQuery(vectors, pdq, k, brand_hint, self._regions(serving, vectors), keypoints)
        return gather_evidence(self._sources(serving), query)

    def _sources(self, serving: Serving) -> EvidenceSources:
        sync = serving.index_sync
        return EvidenceSources(
            vectors=sync.index,
            hashes=sync.pdq,
            describe=self.registry.by_ids,
            pdq_max_distance=self.pdq_max_distance,
            reference_regions=reference_regions(sync.reference_regions),
            reference_keypoints=self.registry.keypoints,
            shared=self.shared.search,
            min_distinctiveness=serving.min_distinctiveness,
        )

    def _keep_if_wanted(self, data: bytes, brand: str | None, digest: str) -> None:
        """Only where a confirming review may add the photo to the known-fake bank (the brand's policy)."""
        if not self.keep_image(brand):
            return
        try:
            self.blobs.put(data, durable=False)
        except BlobStoreUnavailable:  # the check still answers; only this photo cannot join the bank later
            log.warning("Could not keep check image %s: the image store is unavailable", digest)

    @staticmethod
    def _answer(
        check: Check, result, serving: Serving, scorer: str, pdq: PdqHash, lookalike
    ) -> dict[str, Any]:
        """The check's answer: verdict, evidence, the model and scorer that gave it, the look-alike classifier."""
        return {
            "check_id": check.id,
            "verdict": result.verdict,
            "counterfeit_probability": result.probability,
            "brand": result.brand,
            "evidence": check.evidence,
            "model": {
                "spec": serving.runner.info.spec,
                "fingerprint": serving.runner.info.fingerprint(),
                "weights_kind": serving.runner.info.weights_kind,
            },
            "scorer": scorer,
            "pdq": {"hash": pdq.hex, "quality": pdq.quality},
            "regime": result.features.regime,
            "classifier": None
            if lookalike is None
            else {
                "brand": lookalike.brand,
                "version": lookalike.version,
                "probability": lookalike.probability,
                "membership": lookalike.membership,
                "cv_accuracy": lookalike.cv_accuracy,
                "cv_auc": lookalike.cv_auc,
                "references": lookalike.counts,
                "decides_at": {
                    "counterfeit": lookalike.decides_counterfeit_at,
                    "authentic": lookalike.decides_authentic_at,
                },
                "decided_share": lookalike.decided_share,
            },
        }

    @staticmethod
    def _evidence(neighbour: Neighbour, min_match_similarity: float) -> dict[str, Any]:
        signals = [
            name
            for name, on in (
                ("clip", neighbour.clip_match(min_match_similarity)),
                ("pdq", neighbour.pdq_distance is not None),
                ("local", neighbour.local_match),
                ("shared", neighbour.shared_by is not None),
            )
            if on
        ]
        item = {
            "reference_id": None if neighbour.shared_by else neighbour.reference_id,
            "brand": neighbour.brand,
            "label": neighbour.label,
            "product": neighbour.product,
            "similarity": neighbour.clip_similarity,
            "embedding_similarity": neighbour.clip_similarity,
            "clip_similarity": neighbour.clip_similarity,  # the 1.x name: the model need not be CLIP
            "pdq_distance": neighbour.pdq_distance,
            "region": neighbour.region,
            "reference_region": neighbour.reference_region,
            "inliers": neighbour.inliers,
            "inlier_coverage": neighbour.inlier_coverage,
            "distinctiveness": neighbour.distinctiveness,
            "signals": signals,
        }
        if neighbour.shared_by:
            item |= {"shared_signal_id": neighbour.reference_id, "shared_by": neighbour.shared_by}
        return item
