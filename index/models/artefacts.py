"""A model's derived artefacts, computed once and stored, so its identity is the same on every host.

The centring mean (index.models.centering), the background vectors the look-alike classifiers use as
negatives, and the embeddings of a fixed probe set are *derived* from the weights by running the model.
Float arithmetic differs between CPU instruction sets, thread counts, GPUs and runtimes, so a process
that recomputed them would get a mean a few ULPs away, a different ``centering_sha256`` and so another
fingerprint: a replica on a newer CPU, a GPU node or a restored data directory would then refuse the
index ("run a reindex"). Instead they are computed once per base model, stored, and read by everyone:

1. shipped in this package (``artefacts/<base key>.npz``) for the models the project ships;
2. else from the caller's :class:`ArtefactStore` (the service's database: the first process writes
   them, every other process reads them; a race is settled by the store, first writer wins);
3. else derived here (a library user without a store, or the first process of a new model).

The fingerprint hashes the *stored* mean's bytes, so it names the embedding space, not one machine's
arithmetic. Whether this process's model really computes that space is checked by embedding the probe
images and comparing with the stored probe vectors (cosine ≥ :data:`PROBE_MIN_COSINE`): fp32 on another
CPU gives ≈ 1 − 1e-7, fp16 on a GPU ≈ 1 − 1e-5, and another model or broken preprocessing far less.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from index.embedder import Embedder, EmbedderInfo
from index.models.errors import ModelIdentityError
from index.synthetic import background_set

log = logging.getLogger(__name__)

ARTEFACT_VERSION = 1
PROBE_MIN_COSINE = 0.999
SHIPPED_DIR = Path(__file__).with_name("artefacts")
BACKGROUND_SEED, BACKGROUND_COUNT = 10_000, 48  # the centring set (unchanged since release 1: same means)
PROBE_SEED, PROBE_COUNT = 30_000, 8  # images no other derivation uses


class ArtefactStore(Protocol):
    """Where a fleet keeps derived artefacts: written once, read by every process."""

    def get(self, key: str) -> bytes | None: ...

    def put_if_absent(self, key: str, data: bytes) -> bytes:
        """Store ``data`` under ``key`` unless something is there already; return what is stored."""
        ...


class MemoryArtefactStore(dict):
    """An :class:`ArtefactStore` in this process's memory: one process's loads agree (tests, benchmarks)."""

    def put_if_absent(self, key: str, data: bytes) -> bytes:
        return self.setdefault(key, data)


def base_key(info: EmbedderInfo) -> str:
    """The artefacts' key: everything that defines the model before centring (spec, weights hash,
    preprocessing, dimension, normalisation). It depends on no arithmetic, so every host computes it."""
    canonical = json.dumps(
        asdict(replace(info, centering_sha256=None)), sort_keys=True, separators=(",", ":")
    )
    return "model-artefacts-v%d-%s" % (ARTEFACT_VERSION, hashlib.sha256(canonical.encode()).hexdigest()[:16])


def probe_images():
    return background_set(PROBE_COUNT, (256, 256), seed=PROBE_SEED)


@dataclass(frozen=True)
class ModelArtefacts:
    key: str
    spec: str
    mean: np.ndarray  # (d,) float32: subtracted before normalising
    background: np.ndarray  # (n, d) float32: the base model's unit vectors of the background set
    probes: np.ndarray  # (p, d) float32: the base model's unit vectors of probe_images()

    @property
    def centering_sha256(self) -> str:
        return hashlib.sha256(np.ascontiguousarray(self.mean, dtype=np.float32).tobytes()).hexdigest()

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(
            buffer,
            version=np.array(ARTEFACT_VERSION),
            key=np.array(self.key),
            spec=np.array(self.spec),
            mean=self.mean.astype(np.float32),
            background=self.background.astype(np.float32),
            probes=self.probes.astype(np.float32),
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "ModelArtefacts":
        with np.load(io.BytesIO(data), allow_pickle=False) as stored:
            if int(stored["version"]) != ARTEFACT_VERSION:
                raise ValueError(
                    f"model artefacts of version {int(stored['version'])}, this code reads {ARTEFACT_VERSION}"
                )
            return cls(
                str(stored["key"]),
                str(stored["spec"]),
                stored["mean"],
                stored["background"],
                stored["probes"],
            )


def derive_artefacts(base: Embedder, batch_size: int = 16) -> ModelArtefacts:
    """Run the model over the background and probe sets (seconds on a CPU). Done once per model, anywhere."""
    images = background_set(BACKGROUND_COUNT, (224, 224), seed=BACKGROUND_SEED)
    background = np.concatenate(
        [base.embed(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
    )
    return ModelArtefacts(
        base_key(base.info), base.info.spec, background.mean(axis=0), background, base.embed(probe_images())
    )


def shipped_artefacts(key: str) -> bytes | None:
    path = SHIPPED_DIR / f"{key}.npz"
    return path.read_bytes() if path.is_file() else None


def resolve_artefacts(base: Embedder, store: ArtefactStore | None = None) -> ModelArtefacts:
    """The model's artefacts: shipped, else stored, else derived now (and stored, first writer wins).
    Artefacts this process did not derive itself are verified against its model (:func:`verify_probes`)."""
    key = base_key(base.info)
    data = shipped_artefacts(key)
    source = "shipped with the package"
    if data is None and store is not None:
        data, source = store.get(key), "stored by another process"
    if data is None:
        log.info("No stored artefacts for %s: deriving them (once for this model)", base.info.spec)
        derived = derive_artefacts(base)
        if store is None:
            return derived
        data, source = (
            store.put_if_absent(key, derived.to_bytes()),
            "stored by another process at the same time",
        )
        artefacts = ModelArtefacts.from_bytes(data)
        if artefacts.centering_sha256 == derived.centering_sha256:
            return artefacts  # ours won the race: nothing to verify
    else:
        artefacts = ModelArtefacts.from_bytes(data)
    if artefacts.key != key:
        raise ModelIdentityError(
            f"The artefacts stored under {key} belong to {artefacts.key} ({artefacts.spec})."
        )
    cosine = verify_probes(base, artefacts)
    log.info("Model %s: artefacts %s; probe cosine %.6f", base.info.spec, source, cosine)
    return artefacts


def probe_cosines(base: Embedder, artefacts: ModelArtefacts) -> np.ndarray:
    """Each probe image's cosine between this process's base vector and the stored one."""
    ours = base.embed(probe_images())
    return np.sum(ours * artefacts.probes, axis=1)


def verify_probes(base: Embedder, artefacts: ModelArtefacts) -> float:
    """The lowest probe cosine; below PROBE_MIN_COSINE this model does not compute the stored embedding space."""
    worst = float(np.min(probe_cosines(base, artefacts)))
    if worst < PROBE_MIN_COSINE:
        raise ModelIdentityError(
            f"Model {base.info.spec} does not reproduce its stored embedding space: a probe image's vector is at "
            f"cosine {worst:.5f} from the stored one (at least {PROBE_MIN_COSINE} is needed). The weights, the "
            "preprocessing or the runtime compute something else than the model the index was built with; "
            "check the installed model and libraries (a different model needs its own spec and a reindex)."
        )
    return worst
