"""Where calibration artefacts live: ``<dir>/<version>.json`` plus an ``ACTIVE`` pointer file."""
from __future__ import annotations

from pathlib import Path

from index.atomic import write_atomic
from training.calibrate import CalibrationArtefact


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
