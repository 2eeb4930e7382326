"""A model's similarity profile: where "a copy" begins in *its* embedding space.

Centred cosine similarities mean different things per backbone: CLIP puts transformed copies of a
photo above 0.9 and unrelated photos near 0, an ImageNet classifier's pooled features put copies
around 0.6–0.9. One global ``min_match_similarity`` therefore fits one model at best. The profile
derives it from data (``training.profile``): the similarity of unrelated image pairs and of
transformed copies to their source, both on fixed, seeded offline images, for that model.

A profile is bound to the model fingerprint it was derived for: the service uses a stored or
shipped one only for that fingerprint and derives a new one for any other model.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from index.atomic import atomic_writer

PROFILE_VERSION = 2  # 2: min_distinctiveness (scoring.distinctiveness)
SHIPPED = Path(__file__).with_name("profiles.json")  # derived here for the backbones this project runs offline


@dataclass(frozen=True)
class ModelProfile:
    model_fingerprint: str
    model: str
    min_match_similarity: float
    min_distinctiveness: float = 0.0  # how far a CLIP match must stand out of its neighbourhood (scoring.distinctiveness)
    stats: dict[str, Any] = field(default_factory=dict)  # the distributions it was derived from
    version: int = PROFILE_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ProfileStore:
    """Derived profiles under ``<data dir>/profiles/<fingerprint>.json``, then the shipped ones."""

    def __init__(self, directory: Path, shipped: Path | None = None):
        self.directory = Path(directory)
        self.shipped = shipped or SHIPPED

    def get(self, fingerprint: str) -> ModelProfile | None:
        path = self.directory / f"{fingerprint}.json"
        candidates = [json.loads(path.read_text())] if path.exists() else []
        if self.shipped.exists():
            candidates.append(json.loads(self.shipped.read_text()).get(fingerprint))
        for data in candidates:
            if data and data.get("version") == PROFILE_VERSION and data.get("model_fingerprint") == fingerprint:
                return ModelProfile(**data)
        return None

    def save(self, profile: ModelProfile) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{profile.model_fingerprint}.json"
        with atomic_writer(path, "w") as handle:
            json.dump(profile.to_dict(), handle, indent=2)
        return path
