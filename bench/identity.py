"""Does a replica on another device or CPU kind compute the embedding space a CPU process stored?

    python -m bench.identity [--model SPEC] [--device cuda]

A CPU process loads the model and stores its artefacts (centring mean, background and probe vectors;
index.models.artefacts) in an in-memory store, as the first replica of a deployment does in the database;
then the model is loaded on ``--device`` (fp16 autocast on CUDA) with that store, which verifies it: the
probe cosines must be ≥ 0.999, and both fingerprints must be equal (the same index serves both).
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from index.models import load_embedder
from index.models.artefacts import PROBE_MIN_COSINE, MemoryArtefactStore, probe_cosines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="open_clip:ViT-B-32@random")
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    store = MemoryArtefactStore()
    reference = load_embedder(args.model, device="cpu", artefacts=store)
    replica = load_embedder(args.model, device=args.device, artefacts=store)  # raises below PROBE_MIN_COSINE
    cosines = probe_cosines(replica.base, reference.artefacts)
    same = reference.info.fingerprint() == replica.info.fingerprint()
    summary = {
        "model": args.model,
        "device": args.device,
        "probe_cosine_min": round(float(np.min(cosines)), 6),
        "probe_cosine_mean": round(float(np.mean(cosines)), 6),
        "same_fingerprint": same,
    }
    print(json.dumps(summary))
    ok = same and summary["probe_cosine_min"] >= PROBE_MIN_COSINE
    print(
        f"SUMMARY identity {args.device} vs CPU-stored artefacts: probe cosine min {summary['probe_cosine_min']} "
        f"(>= {PROBE_MIN_COSINE} needed), same fingerprint {same}: {'OK' if ok else 'MISMATCH'}"
    )
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
