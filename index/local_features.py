"""Local-feature verification: is the query a geometric copy of a reference, whatever CLIP thinks?

One global descriptor cannot say *where* a product sits in a picture, so a screenshot (the photo
shrunk inside an app's chrome), a big crop, a pad or a large overlay moves the embedding below the
match similarity while the photo's pixels are still there. Keypoints can: SIFT keypoints of the
query are matched to those of each of the top-k CLIP candidates (Lowe's ratio test on RootSIFT
descriptors), and RANSAC fits a similarity transform (rotation, uniform scale, translation) to the
matches. A copy has many matches that agree on one transform.

Four checks keep unrelated photos out (the last one, needing labels, is applied in scoring.features):

* **inliers** — matches consistent with the fitted transform, at least ``MIN_INLIERS``;
* **shown** — the share of the reference's area that the transform puts inside the query, at least
  ``MIN_SHOWN``. A listing photo that copies a reference shows most of it; unrelated products drawn
  alike (a symmetric emblem, the same template) match on one *detail*, and the fitted transform then
  blows that detail up to the whole query (measured: 2 of 12 other brands' product photos had 11–15
  inliers, showing 4–5 % of the reference's area; copies show ≥ 40 %);
* **coverage** — inliers over the keypoints that *should* be visible: the reference's keypoints that
  the transform maps inside the query, or the query's own, whichever is fewer. A reference whose
  picture contains another image (a product shot over a stock photo) otherwise verifies against that
  image alone (generated copy set: distractors' best inliers up to 370 without coverage, ≤ 16 with);
* **dominance** — no candidate of the other label has ``DOMINANCE`` times the inliers (see there).

What it cannot do: verification proves that most of the *picture* is a copy, not the product. Two
products shot on the same richly textured backdrop verify against each other when the backdrop's
keypoints outnumber the product's (measured: a 240 px product on a 512 × 400 coffee photo). Such a
match is evidence about the photo, which the scorer weighs like a PDQ near-duplicate.

Mirror-aware: a reference stores the keypoints of its mirror image too (computed once, at
registration), so the query is described once per check and a flipped re-upload still verifies.
The thresholds live here, with the signal; they do not depend on the embedding model.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from PIL import Image

MAX_SIDE = 384  # keypoints are detected on the image reduced to this (384 beat 512 and 256 on the copy set)
MAX_KEYPOINTS = 500
# SIFT's default (0.04) leaves flat packaging prints with 0–20 keypoints; 0.02 finds enough to verify
# them (copy set seed 0: 3-way 0.892 → 0.913; 0.01 adds nothing).
CONTRAST_THRESHOLD = 0.02
RATIO = 0.8  # Lowe's ratio test
RANSAC_PIXELS = 8.0
MIN_INLIERS = 10  # generated copy set: 1 of 48 distractors' best candidate reaches it (16 at most)
MIN_COVERAGE = 0.15
MIN_SHOWN = 0.25  # a copy shows much of the reference (a 60 % crop: 0.36 of its area); one detail far less
MAX_SCALE_CHANGE = 5.0  # a transform that shrinks or grows more than this is a degenerate fit
TOP_K = 5  # candidates verified per check (by CLIP similarity)
# Plus the references whose PDQ hash is nearest, when close but beyond a PDQ match: a sticker or a caption
# moves a copy's embedding out of CLIP's top 10 yet leaves its hash far closer than an unrelated photo's
# (unrelated hashes differ in ~128 of 256 bits; copy set seed 0, emoji copies CLIP lost: 34–76).
PDQ_CANDIDATES = 3
PDQ_CANDIDATE_DISTANCE = 90
# A verified copy counts for its label only with at least 1/DOMINANCE times the inliers of any candidate
# of the other label: a copy of one photo matches it far better than any other photo, while a new photo of
# an artwork both banks hold (20–35 inliers against each of its photos) is contradictory evidence.
DOMINANCE = 0.5
FORMAT = 1


@dataclass(frozen=True)
class Keypoints:
    """One image's keypoints: positions (n × 2, pixels of the reduced image), SIFT descriptors (n × 128,
    uint8 as SIFT makes them) and the reduced image's size (height, width)."""

    points: np.ndarray
    descriptors: np.ndarray
    size: tuple[int, int]

    def __len__(self) -> int:
        return len(self.points)

    @cached_property
    def root_sift(self) -> np.ndarray:
        """The descriptors as RootSIFT, made once however many candidates they are matched against."""
        return _root_sift(self.descriptors)


@dataclass(frozen=True)
class ReferenceKeypoints:
    """A reference's keypoints and its mirror image's, stored with the reference."""

    plain: Keypoints
    mirrored: Keypoints

    def to_bytes(self) -> bytes:
        return struct.pack("<B", FORMAT) + _pack(self.plain) + _pack(self.mirrored)

    @classmethod
    def from_bytes(cls, data: bytes) -> "ReferenceKeypoints":
        if not data or data[0] != FORMAT:
            raise ValueError(
                f"local features of format {data[0] if data else None}; this release reads {FORMAT}"
            )
        plain, offset = _unpack(data, 1)
        mirrored, _ = _unpack(data, offset)
        return cls(plain, mirrored)


@dataclass(frozen=True)
class Verification:
    inliers: int
    coverage: float
    mirrored: bool  # the query matched the reference's mirror image
    shown: float = 0.0  # share of the reference's area the transform puts inside the query

    @property
    def verified(self) -> bool:
        return self.inliers >= MIN_INLIERS and self.coverage >= MIN_COVERAGE and self.shown >= MIN_SHOWN


NOT_VERIFIED = Verification(0, 0.0, False)


def keypoint_image(image: Image.Image) -> np.ndarray:
    """The grayscale image keypoints are detected on (at most ``MAX_SIDE`` a side): small enough to pass
    between processes, so a CPU worker makes it and the serving process detects while the model runs."""
    gray = image.convert("L")
    scale = MAX_SIDE / max(gray.size)
    if scale < 1:
        gray = gray.resize(
            (max(1, round(gray.width * scale)), max(1, round(gray.height * scale))), Image.BILINEAR
        )
    return np.asarray(gray)


def detect(gray: np.ndarray) -> Keypoints:
    """SIFT keypoints of a :func:`keypoint_image` (OpenCV releases the GIL: threads run it in parallel)."""
    import cv2

    cv2.setNumThreads(1)  # called in worker processes and pool threads; they are the parallelism
    sift = cv2.SIFT_create(nfeatures=MAX_KEYPOINTS, contrastThreshold=CONTRAST_THRESHOLD)
    found, descriptors = sift.detectAndCompute(gray, None)
    if descriptors is None or not found:
        return Keypoints(np.zeros((0, 2), np.float32), np.zeros((0, 128), np.uint8), gray.shape[:2])
    found, descriptors = found[:MAX_KEYPOINTS], descriptors[:MAX_KEYPOINTS]
    return Keypoints(
        np.array([k.pt for k in found], np.float32),
        np.clip(np.rint(descriptors), 0, 255).astype(np.uint8),
        gray.shape[:2],
    )


def query_keypoints(image: Image.Image) -> Keypoints:
    return detect(keypoint_image(image))


def reference_keypoints(image: Image.Image) -> ReferenceKeypoints:
    gray = keypoint_image(image)
    return ReferenceKeypoints(detect(gray), detect(np.ascontiguousarray(gray[:, ::-1])))


def _root_sift(descriptors: np.ndarray) -> np.ndarray:
    """RootSIFT (Arandjelović & Zisserman): L1-normalise, square-root; Euclidean on it is Hellinger on SIFT."""
    values = descriptors.astype(np.float32)
    return np.sqrt(values / (values.sum(axis=1, keepdims=True) + 1e-7))


def verify(query: Keypoints, reference: ReferenceKeypoints) -> Verification:
    """The better of the query against the reference and against its mirror image."""
    plain = _verify(query, reference.plain, False)
    mirrored = _verify(query, reference.mirrored, True)
    return max(plain, mirrored, key=lambda v: (v.verified, v.inliers))


@dataclass(frozen=True)
class Fit:
    """A similarity transform (query → reference) fitted to the ratio-test matches, and which agree with it."""

    transform: np.ndarray
    query_points: np.ndarray  # the matched points, query side
    reference_points: np.ndarray  # and reference side
    inliers: np.ndarray  # bool per match: agrees with the transform


def fit(query: Keypoints, reference: Keypoints) -> Fit | None:
    """The RANSAC fit a verification rests on (None: too few matches, or a scale change no copy makes).
    The workbench draws its inliers (service/checks/match_picture.py)."""
    import cv2

    if len(query) < 3 or len(reference) < 3:
        return None
    query_index, train_index = _ratio_matches(query, reference)
    if len(query_index) < 4:
        return None
    source = query.points[query_index]
    target = reference.points[train_index]
    transform, inlier_mask = cv2.estimateAffinePartial2D(
        source, target, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PIXELS
    )
    if transform is None or inlier_mask is None:
        return None
    scale = float(np.sqrt(abs(np.linalg.det(transform[:, :2]))))
    if not 1 / MAX_SCALE_CHANGE < scale < MAX_SCALE_CHANGE:
        return None
    return Fit(transform, source, target, inlier_mask.ravel().astype(bool))


def _verify(query: Keypoints, reference: Keypoints, mirrored: bool) -> Verification:
    found = fit(query, reference)
    if found is None:
        return NOT_VERIFIED
    transform, inlier_mask = found.transform, found.inliers
    inliers = int(inlier_mask.sum())
    # The reference's keypoints that the transform puts inside the query: what a copy should show.
    inverse = np.linalg.inv(np.vstack([transform, [0.0, 0.0, 1.0]]))
    projected = reference.points @ inverse[:2, :2].T + inverse[:2, 2]
    height, width = query.size
    visible = int(
        (
            (projected[:, 0] >= 0)
            & (projected[:, 0] < width)
            & (projected[:, 1] >= 0)
            & (projected[:, 1] < height)
        ).sum()
    )
    return Verification(
        inliers,
        round(inliers / max(min(visible, len(query)), 1), 4),
        mirrored,
        round(_shown(transform, query.size, reference.size), 4),
    )


def _ratio_matches(query: Keypoints, reference: Keypoints) -> tuple[np.ndarray, np.ndarray]:
    """Lowe's ratio test on the two nearest reference descriptors of each query descriptor (Euclidean on
    RootSIFT): ``(query indices, reference indices)`` of the matches that pass, in query order.

    What ``cv2.BFMatcher(NORM_L2).knnMatch(k=2)`` gives, from one matrix product: the distances come from the
    dot products (‖q‖² + ‖r‖² − 2 q·r), a single BLAS call instead of OpenCV's per-pair loop and 500 Python
    match objects."""
    q, r = query.root_sift, reference.root_sift
    # Per row, the squared distance less the query's own ‖q‖² (the same for the whole row: ranks alike).
    partial = (r * r).sum(axis=1)[None, :] - 2.0 * (q @ r.T)
    rows = np.arange(len(q))
    best = partial.argmin(axis=1)
    nearest = partial[rows, best]
    partial[rows, best] = np.inf
    runner_up = partial.min(axis=1)
    own = (q * q).sum(axis=1)
    first, second = np.sqrt(np.maximum(nearest + own, 0.0)), np.sqrt(np.maximum(runner_up + own, 0.0))
    good = np.flatnonzero(first < RATIO * second)
    return good, best[good]


def _shown(transform: np.ndarray, query_size: tuple[int, int], reference_size: tuple[int, int]) -> float:
    """The share of the reference's area inside the query's frame mapped by ``transform`` (query → reference)."""
    import cv2

    height, width = query_size
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
    frame = corners @ transform[:, :2].T.astype(np.float32) + transform[:, 2].astype(np.float32)
    ref_height, ref_width = reference_size
    box = np.array([[0, 0], [ref_width, 0], [ref_width, ref_height], [0, ref_height]], np.float32)
    area, _ = cv2.intersectConvexConvex(frame, box)
    return float(area) / (ref_width * ref_height)


def _pack(keypoints: Keypoints) -> bytes:
    height, width = keypoints.size
    n = len(keypoints)
    return (
        struct.pack("<IHH", n, height, width)
        + keypoints.points.astype("<f4").tobytes()
        + keypoints.descriptors.astype(np.uint8).tobytes()
    )


def _unpack(data: bytes, offset: int) -> tuple[Keypoints, int]:
    n, height, width = struct.unpack_from("<IHH", data, offset)
    offset += 8
    points = np.frombuffer(data, "<f4", n * 2, offset).reshape(n, 2).astype(np.float32)
    offset += n * 8
    descriptors = np.frombuffer(data, np.uint8, n * 128, offset).reshape(n, 128)
    return Keypoints(points, descriptors, (height, width)), offset + n * 128
