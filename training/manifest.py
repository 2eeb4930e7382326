"""An evaluation set's manifest (``manifest.csv``): one row per photo with its role, brand, label and source."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Item:
    path: Path
    role: str  # "reference" | "query"
    brand: str | None
    label: str  # counterfeit | authentic | distractor (queries)
    source: str  # the source image's name; for queries, the reference they copy
    transform: str = ""  # for queries: what was done to the source ("crop+flip"; "new-photo" for look-alikes)


def write_manifest(path: Path, items: list[Item], root: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "role", "brand", "label", "source", "transform"])
        for item in items:
            writer.writerow(
                [
                    item.path.relative_to(root),
                    item.role,
                    item.brand or "",
                    item.label,
                    item.source,
                    item.transform,
                ]
            )


def read_manifest(path: Path) -> list[Item]:
    root = Path(path).parent
    with Path(path).open() as handle:
        return [
            Item(
                root / row["path"],
                row["role"],
                row["brand"] or None,
                row["label"],
                row["source"],
                row.get("transform") or "",
            )
            for row in csv.DictReader(handle)
        ]


def read_directories(references: Path, queries: Path) -> list[Item]:
    """The folder layout without a manifest: labels and sources come from the paths."""
    items = [
        Item(p, "reference", p.parent.parent.name, p.parent.name, p.stem)
        for p in sorted(Path(references).glob("*/*/*"))
        if p.is_file()
    ]
    items += [
        Item(p, "query", None, p.parent.name, p.stem.split("--")[0])
        for p in sorted(Path(queries).glob("*/*"))
        if p.is_file()
    ]
    return items


def read_json_manifest(path: Path) -> list[Item]:
    """A real photo set's ``manifest.json`` (e.g. ../shared/data/sneakers-dev): ``references`` and ``queries``,
    each ``{file, brand, label, product_block}``. Queries are other photos of other products (the look-alike
    regime), so each is a ``new-photo`` query whose source is its product block."""
    import json

    root = Path(path).parent
    manifest = json.loads(Path(path).read_text())
    items = []
    for role in ("reference", "query"):
        for row in manifest[f"{role}s" if role == "reference" else "queries"]:
            items.append(
                Item(
                    root / row["file"],
                    role,
                    row["brand"],
                    row["label"],
                    row["product_block"],
                    "new-photo" if role == "query" else "",
                )
            )
    return items
