"""Index generations: ``<root>/generations/<n>/`` directories and a ``CURRENT`` pointer.

Each generation holds one model's index (``fingerprint.json`` says which model, ``index.npz`` is
the latest snapshot). Switching generations is one atomic rename of ``CURRENT``, so readers see
either the old or the new generation, never a mix.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from index.atomic import write_atomic


@dataclass(frozen=True)
class Generation:
    number: int
    path: Path

    @property
    def snapshot_path(self) -> Path:
        return self.path / "index.npz"

    @property
    def fingerprint_path(self) -> Path:
        return self.path / "fingerprint.json"

    def model_info(self) -> dict[str, Any]:
        return json.loads(self.fingerprint_path.read_text())

    @property
    def fingerprint(self) -> str:
        return self.model_info()["fingerprint"]


class Generations:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.generations_dir = self.root / "generations"
        self.pointer = self.root / "CURRENT"

    def get(self, number: int) -> Generation:
        return Generation(number, self.generations_dir / str(number))

    def current(self) -> Generation | None:
        if not self.pointer.exists():
            return None
        number = int(self.pointer.read_text().strip())
        return Generation(number, self.generations_dir / str(number))

    def all(self) -> list[Generation]:
        if not self.generations_dir.exists():
            return []
        numbers = sorted(int(p.name) for p in self.generations_dir.iterdir() if p.name.isdigit())
        return [Generation(n, self.generations_dir / str(n)) for n in numbers]

    def previous(self) -> Generation | None:
        """The newest generation older than the current one (the rollback target)."""
        current = self.current()
        older = [g for g in self.all() if current is None or g.number < current.number]
        return older[-1] if older else None

    def create(self, model_info: dict[str, Any], after: int = 0) -> Generation:
        """A new, not yet current, generation directory bound to ``model_info`` (with its fingerprint), numbered
        above every local one and above ``after`` (the deployment's current number, which other disks may hold)."""
        existing = self.all()
        number = max(existing[-1].number if existing else 0, after) + 1
        return self.adopt(number, model_info)

    def adopt(self, number: int, model_info: dict[str, Any]) -> Generation:
        """Generation ``number`` as another process made it: its directory, bound to ``model_info``; a local
        directory of that number bound to another model is this disk's stale copy and is replaced."""
        generation = self.get(number)
        if generation.fingerprint_path.exists() and generation.fingerprint != model_info["fingerprint"]:
            shutil.rmtree(generation.path)
        generation.path.mkdir(parents=True, exist_ok=True)
        write_atomic(generation.fingerprint_path, json.dumps(model_info, indent=2, sort_keys=True))
        return generation

    def activate(self, generation: Generation) -> None:
        write_atomic(self.pointer, f"{generation.number}\n")
