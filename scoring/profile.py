"""A model's similarity profile: where "a copy" begins in *its* embedding space.

Centred cosine similarities mean different things per backbone: CLIP puts transformed copies of a
photo above 0.9 and unrelated photos near 0, an ImageNet classifier's pooled features put copies
around 0.6–0.9. One global ``min_match_similarity`` therefore fits one model at best. The profile
derives it from data (``scoring.profile_fit``): the similarity of unrelated image pairs and of
transformed copies to their source, both on fixed, seeded offline images, for that model.

A profile is bound to the model fingerprint it was derived for: the service uses a stored or
shipped one only for that fingerprint and derives a new one for any other model — once per deployment:
it is stored with the model's other derived artefacts (index.models.artefacts.ArtefactStore, the
service's database), so every replica scores with the same bar whatever its CPU.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from index.models.artefacts import ArtefactStore

PROFILE_VERSION = 2  # 2: min_distinctiveness (scoring.distinctiveness)
SHIPPED = Path(__file__).with_name(
    "profiles.json"
)  # derived here for the backbones this project runs offline


@dataclass(frozen=True)
class ModelProfile:
    model_fingerprint: str
    model: str
    min_match_similarity: float
    min_distinctiveness: float = (
        0.0  # how far a CLIP match must stand out of its neighbourhood (scoring.distinctiveness)
    )
    stats: dict[str, Any] = field(default_factory=dict)  # the distributions it was derived from
    version: int = PROFILE_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def profile_key(fingerprint: str) -> str:
    return f"profile-v{PROFILE_VERSION}-{fingerprint}"


class ProfileStore:
    """Profiles stored in the deployment's artefact store (derived there once), then the shipped ones."""

    def __init__(self, store: ArtefactStore | None, shipped: Path | None = None):
        self.store = store
        self.shipped = shipped or SHIPPED

    def get(self, fingerprint: str) -> ModelProfile | None:
        stored = self.store.get(profile_key(fingerprint)) if self.store is not None else None
        candidates = [json.loads(stored)] if stored is not None else []
        if self.shipped.exists():
            candidates.append(json.loads(self.shipped.read_text()).get(fingerprint))
        for data in candidates:
            if (
                data
                and data.get("version") == PROFILE_VERSION
                and data.get("model_fingerprint") == fingerprint
            ):
                return ModelProfile(**data)
        return None

    def save(self, profile: ModelProfile) -> ModelProfile:
        """Store ``profile`` unless one is stored for its model already; the stored one is returned."""
        if self.store is None:
            return profile
        data = json.dumps(profile.to_dict(), sort_keys=True).encode()
        return ModelProfile(
            **json.loads(self.store.put_if_absent(profile_key(profile.model_fingerprint), data))
        )
