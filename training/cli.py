"""`counterfeit eval-set build|lookalike`, `counterfeit eval` and `counterfeit train calibrate|finetune`: offline
commands, added to the service's command line as a plugin (entry point group ``counterfeit.cli``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from service.cli.common import (
    PANELS,
    _fail,
    _load_model_or_exit,
    _sessions,
    _settings,
    _setup_logging,
    app,
    err,
)

train_app = typer.Typer(
    help="Fit calibrated scorers; fine-tune the backbone on the banks.", no_args_is_help=True
)
app.add_typer(train_app, name="train", rich_help_panel=PANELS.EVALUATION)
eval_set_app = typer.Typer(help="Build the offline evaluation set.", no_args_is_help=True)
app.add_typer(eval_set_app, name="eval-set", rich_help_panel=PANELS.EVALUATION)


def _eval_items(manifest: Optional[Path], references: Optional[Path], queries: Optional[Path]):
    from training.manifest import read_directories, read_json_manifest, read_manifest

    if (
        manifest
    ):  # manifest.csv (eval-set build / lookalike) or manifest.json (a real set: ../shared/data/sneakers-dev)
        try:
            return read_json_manifest(manifest) if manifest.suffix == ".json" else read_manifest(manifest)
        except (KeyError, ValueError) as exc:
            raise _fail(f"{manifest} is not an evaluation manifest: {exc!r} missing or malformed") from None
    if references and queries:
        return read_directories(references, queries)
    raise _fail("give --manifest, or both --references and --queries")


@eval_set_app.command("build")
def eval_set_build(
    out: Path = typer.Argument(..., help="Folder to write references/, queries/ and manifest.csv"),
    seed: int = 0,
    procedural: int = 60,
    copies: int = 3,
):
    """Build a seeded evaluation set from packaged photos and procedural product images."""
    from collections import Counter

    from training.dataset import build_eval_set

    items = build_eval_set(out, seed=seed, procedural=procedural, copies=copies)
    counts = Counter(f"{_plural(i.role)} {i.label}" for i in items)
    err.print(", ".join(f"{n} {k}" for k, n in sorted(counts.items())) + f" in {out}")


def _plural(role: str) -> str:
    return {"query": "queries"}.get(role, role + "s")  # "96 queries", not "96 querys"


@eval_set_app.command("lookalike")
def eval_set_lookalike(
    out: Path = typer.Argument(..., help="Folder to write the photos and manifest.csv"),
    seed: int = 0,
    brands: int = 6,
    per_bank: int = 40,
    queries: int = 6,
    distractor_brands: int = 4,
):
    """Build a seeded look-alike set: genuine designs, counterfeit variants, and new photos of each."""
    from collections import Counter

    from training.lookalike_set import lookalike_set, write_lookalike_set

    photos = lookalike_set(
        brands=brands,
        per_bank=per_bank,
        queries_per_design=queries,
        distractor_brands=distractor_brands,
        seed=seed,
    )
    manifest = write_lookalike_set(out, photos)
    counts = Counter(f"{_plural(p.role)} {p.label}" for p in photos)
    err.print(", ".join(f"{n} {k}" for k, n in sorted(counts.items())) + f" in {manifest}")


@app.command("eval", rich_help_panel=PANELS.EVALUATION)
def evaluate(
    manifest: Optional[Path] = typer.Option(None, exists=True, dir_okay=False),
    references: Optional[Path] = typer.Option(None, exists=True, file_okay=False),
    queries: Optional[Path] = typer.Option(None, exists=True, file_okay=False),
    model: Optional[str] = typer.Option(None, help="Model spec; default COUNTERFEIT_MODEL"),
    calibration: Optional[Path] = typer.Option(
        None, exists=True, dir_okay=False, help="Calibration artefact to evaluate too"
    ),
    regions: Optional[str] = typer.Option(
        None, help="Query regions (whole, default, wide); default COUNTERFEIT_QUERY_REGIONS"
    ),
    reference_regions: Optional[str] = typer.Option(
        None, help="Reference regions (whole, default); default COUNTERFEIT_REFERENCE_REGIONS"
    ),
    out: Path = typer.Option(Path("eval-report"), help="Where report.json and the plots go"),
):
    """Evaluate matching and scoring on a labelled set: ROC-AUC, verdict precision/recall, ECE, µAP, distractors."""
    from scoring.calibration import CalibrationArtefact, CalibrationMismatch
    from scoring.scorers import Thresholds
    from training.evaluate import evaluate_set
    from training.plots import write_plots

    _setup_logging("warning")
    items = _eval_items(manifest, references, queries)
    settings, embedder = _load_model_or_exit(model)
    artefact = None
    if calibration:
        try:
            artefact = CalibrationArtefact.load(calibration, embedder.info.fingerprint())
        except CalibrationMismatch as exc:
            raise _fail(exc) from None
    from index.regions import query_regions
    from index.regions import reference_regions as reference_presets
    from service.serving.runner import copy_bar_for

    try:
        searched = query_regions(regions or settings.query_regions)
        indexed = reference_presets(reference_regions or settings.reference_regions)
    except ValueError as exc:
        raise _fail(exc) from None
    min_match, min_distinct = copy_bar_for(settings, _sessions(), embedder)
    report, outcomes, names = evaluate_set(
        items,
        embedder,
        min_match,
        settings.score_temperature,
        Thresholds(settings.counterfeit_threshold, settings.authentic_threshold),
        artefact,
        searched,
        indexed,
        settings.local_features,
        min_distinct,
        settings.lookalike_min_cv_auc,
        settings.lookalike_min_precision,
    )
    out.mkdir(parents=True, exist_ok=True)
    plots = write_plots(outcomes, names, out)
    report["plots"] = [p.name for p in plots]
    (out / "report.json").write_text(json.dumps(report, indent=2))
    _print_report(report, names, out)


def _print_report(report: dict, names: list[str], out: Path) -> None:
    """Each scorer's headline figures, each transform family's, and where the report went (stderr)."""
    for name, row in report["scorers"].items():
        err.print(
            f"{name:>11}: 3-way {row['three_way_accuracy']}, decided precision {row['decided']['precision']} "
            f"at coverage {row['decided']['coverage']}, ROC-AUC {row['roc_auc']}, ECE {row['ece']}, distractors inconclusive "
            f"{row['distractor_inconclusive_rate']}, counterfeit precision/recall "
            f"{row['verdicts']['likely_counterfeit']['precision']}/{row['verdicts']['likely_counterfeit']['recall']}"
        )
    for family, row in report["per_transform"].items():
        err.print(
            f"  {family:>11}: {row['queries']:4d} queries, top-1 {row['top1']}, "
            + ", ".join(f"{name} {row[name + '_three_way']}" for name in names)
        )
    listings = report.get("listings", {})
    for aggregation in ("by-evidence", "noisy-or"):
        if aggregation in listings:
            row = listings[aggregation]
            err.print(
                f"  listings ({listings['listings']}, {aggregation}): ROC-AUC {row['roc_auc']}, decided precision "
                f"{row['decided']['precision']} at coverage {row['decided']['coverage']}, ECE {row['ece']}"
            )
    err.print(
        f"regimes {report['regimes']}; copy-match µAP {report['copy_match_micro_ap']}; report in {out / 'report.json'}"
    )
    typer.echo(json.dumps(report))


@train_app.command("calibrate")
def train_calibrate(
    manifest: Optional[Path] = typer.Option(
        None, exists=True, dir_okay=False, help="Fit on an evaluation set instead of the review log"
    ),
    model: Optional[str] = typer.Option(None, help="Model spec; default COUNTERFEIT_MODEL"),
    target_precision: float = typer.Option(0.95, help="Precision the verdict thresholds must reach"),
    activate: bool = typer.Option(
        False, help="Also make it the scorer running services use (else: counterfeit calibrations activate)"
    ),
    brand_policies: bool = typer.Option(True, help="Also set per-brand thresholds where reviews allow"),
):
    """Fit a calibrated scorer from confirmed outcomes (reviews) or a labelled set; save it, versioned."""
    from scoring.calibration import CalibrationStore
    from training.calibrate import fit_calibration

    _setup_logging("warning")
    settings = _settings(model)
    if manifest:
        from index.regions import query_regions, reference_regions
        from service.serving.runner import copy_bar_for
        from training.evaluate import run_pipeline, training_examples

        _, embedder = _load_model_or_exit(model)
        fingerprint = embedder.info.fingerprint()
        # The service's regions, so the features are those a check will have.
        min_match, min_distinct = copy_bar_for(settings, _sessions(), embedder)
        features, labels = training_examples(
            run_pipeline(
                _eval_items(manifest, None, None),
                embedder,
                min_match,
                min_distinctiveness=min_distinct,
                regions=query_regions(settings.query_regions),
                reference_regions=reference_regions(settings.reference_regions),
            )
        )
        brands: list = []
    else:
        from service.checks.reviews import review_training_examples

        fingerprint, features, labels, brands = review_training_examples(_sessions(), settings)
    try:
        artefact = fit_calibration(features, labels, fingerprint, target_precision)
    except ValueError as exc:
        raise _fail(exc) from None
    if brands and activate and brand_policies:
        _apply_brand_thresholds(artefact, features, labels, brands, target_precision)
    store = CalibrationStore(settings.data_dir / "calibration")
    path = store.save_and_activate(artefact) if activate else store.save(artefact)
    err.print(
        f"Calibration {artefact.version} from {artefact.stats['samples']} outcomes -> {path}"
        + (
            " (active)"
            if activate
            else f" (not active: counterfeit calibrations activate {artefact.version})"
        )
    )
    typer.echo(str(path))


def _apply_brand_thresholds(artefact, features, labels, brands, target_precision: float) -> None:
    from service.checks.policies import PolicyStore
    from service.core.auth import OPERATOR
    from training.calibrate import brand_thresholds

    policies = PolicyStore(_sessions())
    for brand, thresholds in brand_thresholds(artefact, features, labels, brands, target_precision).items():
        current = policies.get(brand)
        policies.put(
            brand,
            thresholds.counterfeit,
            thresholds.authentic,
            bool(current and current.auto_add_confirmed_counterfeits),
            OPERATOR,
        )
        err.print(
            f"  brand {brand}: likely_counterfeit at p >= {thresholds.counterfeit:.3f}, "
            f"likely_authentic at p <= {thresholds.authentic:.3f}"
        )


def _finetune_photos(settings, manifest: Optional[Path], limit: Optional[int], seed: int) -> list:
    """The photos to fine-tune on: an evaluation set's references, or the service's; at most ``limit``."""
    if manifest:
        from PIL import Image

        images = [
            Image.open(item.path).convert("RGB")
            for item in _eval_items(manifest, None, None)
            if item.role == "reference"
        ]
    else:
        images = _service_reference_photos(settings, limit, seed)
    if limit is not None and len(images) > limit:
        import numpy as np

        images = [images[i] for i in np.random.default_rng(seed).choice(len(images), limit, replace=False)]
    return images


@train_app.command("finetune")
def train_finetune(
    out: Path = typer.Option(..., dir_okay=False, help="Weights file to write (a state dict)"),
    manifest: Optional[Path] = typer.Option(
        None,
        exists=True,
        dir_okay=False,
        help="Train on an evaluation set's references instead of the service's",
    ),
    model: Optional[str] = typer.Option(None, help="Model spec to start from; default COUNTERFEIT_MODEL"),
    epochs: int = typer.Option(6, min=1),
    batch_size: int = typer.Option(32, min=2),
    learning_rate: float = typer.Option(1e-4, min=0.0),
    seed: int = 0,
    limit: Optional[int] = typer.Option(None, min=2, help="At most this many reference photos (random)"),
):
    """Fine-tune the backbone on the banks' photos (metric learning against their own transformed copies);
    serve the result with `counterfeit reindex --model timm:<architecture>@<out>`."""
    from index.models.spec import parse_model_spec
    from training.finetune import finetune, save_weights

    _setup_logging("warning")
    # torch: training changes the weights in place, which an exported ONNX forward would not follow.
    settings, embedder = _load_model_or_exit(model, runtime="torch")
    spec = parse_model_spec(settings.model)
    base = getattr(embedder, "base", embedder)
    if spec.backend != "timm" or not hasattr(base, "model"):
        raise _fail(f"fine-tuning writes timm weights files; {settings.model!r} is not a timm model")
    images = _finetune_photos(settings, manifest, limit, seed)
    try:
        report = finetune(
            base,
            images,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            seed=seed,
            progress=lambda epoch, loss: err.print(f"epoch {epoch + 1}/{epochs}: loss {loss:.4f}"),
        )
    except ValueError as exc:
        raise _fail(exc) from None
    path = save_weights(base, out.resolve())
    err.print(
        f"Fine-tuned {spec.architecture} on {report.images} photos in {report.seconds} s "
        f"({report.trainable_parameters:,} parameters trained) -> {path}"
    )
    err.print(f"Serve it with: counterfeit reindex --model timm:{spec.architecture}@{path}")
    typer.echo(
        json.dumps({"weights": str(path), "model": f"timm:{spec.architecture}@{path}", **report.__dict__})
    )


def _service_reference_photos(settings, limit: Optional[int], seed: int) -> list:
    """The live references' photos from the blob store (a random ``limit`` of them)."""
    import numpy as np
    from sqlalchemy import select

    from index.images import ImageRejected, decode_image
    from service.core.blobs import open_blob_store
    from service.db.models import Reference

    with _sessions()() as session:
        digests = list(session.scalars(select(Reference.sha256).where(Reference.deleted_at.is_(None))))
    if limit is not None and len(digests) > limit:
        digests = [digests[i] for i in np.random.default_rng(seed).choice(len(digests), limit, replace=False)]
    blobs, images = open_blob_store(settings.blob_url, settings.blob_dir), []
    for digest in digests:
        try:
            images.append(
                decode_image(blobs.get(digest), settings.max_image_bytes, 1 << 62, draft_size=(512, 512))
            )
        except (OSError, ImageRejected) as exc:  # a missing or corrupt blob: skipped, as reindex does
            err.print(f"skipped reference photo {digest[:12]}: {exc}")
    return images
