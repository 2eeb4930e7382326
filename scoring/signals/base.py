"""What every evidence signal sees: the query, the sources it searches, and the facts of a reference."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterable, Mapping, Protocol, Sequence

import numpy as np

from index.local_features import Keypoints, ReferenceKeypoints
from index.pdq import DEFAULT_MAX_DISTANCE, PdqHash, PdqIndex
from index.regions import WHOLE, Region
from index.vector_index import VectorIndex
from scoring import distinctiveness
from scoring.features import Neighbour


class ReferenceFacts(Protocol):
    """What evidence needs of a reference (a stored ``Reference`` row, an evaluation item)."""

    brand: str
    label: Any  # "authentic" | "counterfeit", or an enum whose ``value`` is one of them
    product: str | None


class SharedSignal(Protocol):
    id: int
    brand: str
    product: str | None
    issuer: str


Describe = Callable[[Sequence[int]], Mapping[int, ReferenceFacts]]
KeypointsOf = Callable[[Sequence[int]], Mapping[int, ReferenceKeypoints]]
SharedSearch = Callable[[PdqHash, str | None, int], Iterable[tuple[SharedSignal, int]]]


@dataclass(frozen=True)
class EvidenceQuery:
    """One photo to find evidence about. ``vector`` has one row per query region (``regions``; index.regions),
    or is the whole image's embedding; ``keypoints`` are given where verification is wanted."""

    vector: np.ndarray
    pdq: PdqHash | None
    k: int
    brand_hint: str | None = None
    regions: tuple[Region, ...] = (WHOLE,)
    keypoints: Keypoints | None = None

    @property
    def depth(self) -> int:
        return search_depth(self.k)


def search_depth(k: int) -> int:
    """How many neighbours are searched for a caller's ``k``: distinctiveness reads the ``DEPTH`` nearest."""
    return max(k, distinctiveness.DEPTH)


@dataclass(frozen=True)
class EvidenceSources:
    """The indexes and lookups the signals search. ``describe`` looks references up by id: one deleted between
    search and lookup is simply not evidence any more. A lookup left out (``None``) turns its signal off."""

    vectors: VectorIndex
    hashes: PdqIndex
    describe: Describe
    pdq_max_distance: int = DEFAULT_MAX_DISTANCE
    reference_regions: tuple[Region, ...] = (WHOLE,)
    reference_keypoints: KeypointsOf | None = None
    shared: SharedSearch | None = None  # known-fake hashes other platforms shared
    min_distinctiveness: float = 0.0


class EvidenceSignal(Protocol):
    """One kind of evidence (python-threatexchange's ``SignalType``): how it is searched and what it adds.

    Signals run in ``order``; each gets the neighbours found so far and returns them with its own evidence
    merged in (a new neighbour, or a field of one already found), so a later signal may confirm an earlier
    one's candidates (keypoints verify CLIP's)."""

    name: ClassVar[str]
    order: ClassVar[int]
    description: ClassVar[str]

    def gather(
        self, query: EvidenceQuery, sources: EvidenceSources, found: list[Neighbour]
    ) -> list[Neighbour]: ...


def neighbour(reference_id: int, facts: ReferenceFacts, **evidence: Any) -> Neighbour:
    """A reference as evidence, with the fields the signal that found it sets."""
    evidence.setdefault("clip_similarity", None)
    evidence.setdefault("pdq_distance", None)
    return Neighbour(
        reference_id, facts.brand, getattr(facts.label, "value", facts.label), facts.product, **evidence
    )


def described(sources: EvidenceSources, ids: Sequence[int]) -> Mapping[int, ReferenceFacts]:
    """The facts of the references ``ids`` that still exist (no lookup for none)."""
    return sources.describe(list(ids)) if ids else {}
