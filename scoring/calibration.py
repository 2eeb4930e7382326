"""The calibration artefact a service scores with (``training.calibrate`` fits it) and where it is kept.

The artefact is a small JSON file: logistic-regression coefficients over
:data:`scoring.features.FEATURE_NAMES`, the model fingerprint it was fitted for (features of
another embedding model mean something else, so loading it for another fingerprint is refused),
decision thresholds chosen for a target precision, and fit statistics.
"""

from __future__ import annotations

import json
import re
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
    """Versioned calibrations in a directory; ``ACTIVE`` names the one in use (none: the default scorer) and
    ``HISTORY`` every activation in order, so a bad one is rolled back to the one before."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.pointer = self.directory / "ACTIVE"
        self.history = self.directory / "HISTORY"

    def save(self, artefact: CalibrationArtefact) -> Path:
        path = self.directory / f"{artefact.version}.json"
        artefact.save(path)
        return path

    def save_and_activate(self, artefact: CalibrationArtefact) -> Path:
        path = self.save(artefact)
        self.activate(artefact.version)
        return path

    def activate(self, version: str) -> None:
        if (
            not re.fullmatch(r"[A-Za-z0-9._-]{1,100}", version)
            or not (self.directory / f"{version}.json").exists()
        ):
            raise KeyError(version)
        write_atomic(self.pointer, f"{version}.json\n")
        write_atomic(self.history, "".join(f"{v}\n" for v in [*self._history(), version]))

    def rollback(self) -> str | None:
        """Activate the calibration active before the current one (None: back to the default scorer)."""
        history = self._history()[:-1]
        write_atomic(self.history, "".join(f"{v}\n" for v in history))
        if history:
            write_atomic(self.pointer, f"{history[-1]}.json\n")
            return history[-1]
        self.pointer.unlink(missing_ok=True)
        return None

    def _history(self) -> list[str]:
        return self.history.read_text().split() if self.history.exists() else []

    def versions(self) -> list[dict[str, Any]]:
        """Every saved calibration, newest first, and which one is active."""
        active = self.active_path()
        found = []
        for path in self.directory.glob("*.json"):
            data = json.loads(path.read_text())
            found.append(
                {
                    "version": data["version"],
                    "model_fingerprint": data["model_fingerprint"],
                    "samples": data.get("stats", {}).get("samples"),
                    "thresholds": data["thresholds"],
                    "saved_at": path.stat().st_mtime,
                    "active": active is not None and path.name == active.name,
                }
            )
        return sorted(found, key=lambda v: -v["saved_at"])

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
