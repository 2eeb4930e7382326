"""The calibration artefact a service scores with (``training.calibrate`` fits it) and where it is kept.

The artefact is a small JSON file: logistic-regression coefficients over
:data:`scoring.features.FEATURE_NAMES`, the model fingerprint it was fitted for (features of
another embedding model mean something else, so loading it for another fingerprint is refused),
decision thresholds chosen for a target precision, and fit statistics.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from index.atomic import atomic_writer, write_atomic
from scoring.features import FEATURE_NAMES
from scoring.scorers import CalibratedScorer


class CalibrationMismatch(ValueError):
    pass


@dataclass(frozen=True)
class CalibrationArtefact:
    version: str
    model_fingerprint: str
    feature_names: tuple[str, ...]
    coefficients: tuple[float, ...]
    intercept: float
    thresholds: dict[str, float]
    stats: dict[str, Any] = field(default_factory=dict)

    def scorer(self) -> CalibratedScorer:
        return CalibratedScorer(self.version, self.coefficients, self.intercept)

    def save(self, path: Path) -> None:
        with atomic_writer(Path(path), "w") as handle:
            json.dump(asdict(self), handle, indent=2)

    @classmethod
    def load(cls, path: Path, model_fingerprint: str) -> "CalibrationArtefact":
        data = json.loads(Path(path).read_text())
        artefact = cls(
            **{
                **data,
                "feature_names": tuple(data["feature_names"]),
                "coefficients": tuple(data["coefficients"]),
            }
        )
        if artefact.model_fingerprint != model_fingerprint:
            raise CalibrationMismatch(
                f"calibration {artefact.version} was fitted for model fingerprint {artefact.model_fingerprint}, "
                f"not {model_fingerprint}; refit it (`counterfeit train calibrate`) for the current model"
            )
        if artefact.feature_names != FEATURE_NAMES:
            raise CalibrationMismatch(
                f"calibration {artefact.version} uses other features: {artefact.feature_names}"
            )
        return artefact


class CalibrationStore:
    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.pointer = self.directory / "ACTIVE"

    def save_and_activate(self, artefact: CalibrationArtefact) -> Path:
        path = self.directory / f"{artefact.version}.json"
        artefact.save(path)
        write_atomic(self.pointer, path.name + "\n")
        return path

    def active_path(self) -> Path | None:
        if not self.pointer.exists():
            return None
        return self.directory / self.pointer.read_text().strip()

    def stamp(self) -> float | None:
        """Changes whenever another calibration is activated (for cheap polling)."""
        return self.pointer.stat().st_mtime_ns if self.pointer.exists() else None

    def load_active(self, model_fingerprint: str) -> CalibrationArtefact | None:
        path = self.active_path()
        return CalibrationArtefact.load(path, model_fingerprint) if path else None
