"""The `counterfeit` command line: serve, keys, register, check."""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from service.settings import Settings

app = typer.Typer(help="counterfeit-check: is this product photo probably counterfeit?", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
model_app = typer.Typer(help="Fetch and inspect embedding models.", no_args_is_help=True)
app.add_typer(model_app, name="model")
index_app = typer.Typer(help="Index generations: list, roll back.", no_args_is_help=True)
app.add_typer(index_app, name="index")
train_app = typer.Typer(help="Fit calibrated scorers.", no_args_is_help=True)
app.add_typer(train_app, name="train")
eval_set_app = typer.Typer(help="Build the offline evaluation set.", no_args_is_help=True)
app.add_typer(eval_set_app, name="eval-set")
err = Console(stderr=True, soft_wrap=True)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}


def _fail(message: object, code: int = 2) -> typer.Exit:
    """Print one clear error line (no markup parsing: messages contain brackets) and return the exit."""
    err.print("error:", str(message), style="red", markup=False, highlight=False)
    return typer.Exit(code)


def _settings(model: str | None = None) -> Settings:
    return Settings(**({"model": model} if model else {}))


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def _sessions():
    from service.db.session import make_engine, make_session_factory

    return make_session_factory(make_engine(_settings().resolved_database_url))


def _start_runtime(settings: Settings, persist_snapshots: bool = True):
    """Load model and index, or exit 2 with the operator-facing message (no traceback)."""
    from service.runtime import STARTUP_ERRORS, Runtime

    try:
        return Runtime(settings, persist_snapshots=persist_snapshots)
    except STARTUP_ERRORS as exc:
        raise _fail(exc)


@app.command()
def serve(host: Optional[str] = None, port: Optional[int] = None, model: Optional[str] = typer.Option(None, help="Model spec")):
    """Run the HTTP service (uvicorn) on the embedded defaults."""
    import uvicorn

    from service.app import create_app

    settings = _settings(model)
    _setup_logging(settings.log_level)
    runtime = _start_runtime(settings)
    uvicorn.run(create_app(runtime=runtime), host=host or settings.host, port=port or settings.port,
                log_level=settings.log_level, timeout_graceful_shutdown=10)


@keys_app.command("create")
def keys_create(role: str = typer.Option(..., help="admin, brand or platform"),
                brand: Optional[str] = typer.Option(None, help="The brand a brand key is bound to"),
                name: Optional[str] = typer.Option(None, help="A note to recognise the key by")):
    """Create an API key. Prints only the key on stdout; it is shown once."""
    from service.auth import create_key
    from service.db.models import Role
    from service.errors import ApiError
    from service.validation import validate_brand

    try:
        parsed_role = Role(role)
        if brand:
            validate_brand(brand)
        with _sessions()() as session:
            key, token = create_key(session, parsed_role, brand, name)
    except (ValueError, ApiError) as exc:
        raise _fail(getattr(exc, "message", exc))
    err.print(f"Created {key.role.value} key {key.id}" + (f" for brand {brand}" if brand else "") + ". Store it now; it is not shown again.")
    typer.echo(token)


@keys_app.command("list")
def keys_list():
    """List API keys (never the secrets)."""
    from sqlalchemy import select

    from service.db.models import ApiKey

    with _sessions()() as session:
        for key in session.scalars(select(ApiKey).order_by(ApiKey.created_at)):
            state = "revoked" if key.revoked_at else "active"
            typer.echo(f"{key.id}\t{key.role.value}\t{key.brand or '-'}\t{state}\t{key.name or ''}")


@keys_app.command("revoke")
def keys_revoke(key_id: str):
    """Revoke a key by its id (key_…)."""
    from service.auth import revoke_key

    with _sessions()() as session:
        if not revoke_key(session, key_id):
            raise _fail(f"no active key {key_id}", 1)
    err.print(f"Revoked {key_id}")


@app.command()
def register(directory: Path = typer.Argument(..., exists=True, file_okay=False),
             brand: str = typer.Option(...), label: str = typer.Option(...),
             product: Optional[str] = None, source: Optional[str] = None):
    """Bulk-import a folder of images as references. Bad files are skipped and listed at the end."""
    from service.errors import ApiError
    from service.registry import NewReference
    from service.validation import validate_brand, validate_label

    _setup_logging("warning")
    try:
        new = NewReference(brand=validate_brand(brand), label=validate_label(label), product=product, source=source)
    except ApiError as exc:
        raise _fail(exc.message)
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    runtime = _start_runtime(_settings(), persist_snapshots=False)
    created = existing = 0
    failures: list[tuple[Path, str]] = []
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err) as bar:
        task = bar.add_task("registering", total=len(files))
        for path in files:
            try:
                _, was_created = runtime.registry.register(new, path.read_bytes())
                created, existing = created + was_created, existing + (not was_created)
            except ApiError as exc:
                failures.append((path, f"{exc.code}: {exc.message}"))
            bar.advance(task)
    runtime.close()
    err.print(f"{created} registered, {existing} already present, {len(failures)} failed")
    for path, reason in failures:
        err.print(f"  failed {path}: {reason}", markup=False, highlight=False)
    raise typer.Exit(1 if failures else 0)


@app.command()
def check(image: Path = typer.Argument(..., exists=True, dir_okay=False), brand: Optional[str] = None,
          k: int = 10):
    """Check one image against the local index and print the JSON result."""
    from service.errors import ApiError

    _setup_logging("warning")
    runtime = _start_runtime(_settings(), persist_snapshots=False)
    try:
        result = runtime.checker.check(image.read_bytes(), brand, k, api_key_id="cli")
    except ApiError as exc:
        raise _fail(exc.message)
    finally:
        runtime.close()
    typer.echo(json.dumps(result, indent=2))


def _load_model_or_exit(spec: str | None):
    from index.models import ModelSpecError, ModelUnavailableError, load_embedder

    settings = _settings(spec)
    try:
        return settings, load_embedder(settings.model, device=settings.device,
                                       cache_dir=str(settings.model_cache) if settings.model_cache else None)
    except (ModelSpecError, ModelUnavailableError) as exc:
        raise _fail(exc)


@model_app.command("pull")
def model_pull(spec: Optional[str] = typer.Argument(None, help="Model spec; default COUNTERFEIT_MODEL")):
    """Download the model's weights into the cache (COUNTERFEIT_MODEL_CACHE), so later starts work offline."""
    _setup_logging("warning")
    settings, embedder = _load_model_or_exit(spec)
    err.print(f"Model {settings.model} is ready (fingerprint {embedder.info.fingerprint()}).")


@model_app.command("info")
def model_info(spec: Optional[str] = typer.Argument(None, help="Model spec; default COUNTERFEIT_MODEL")):
    """Dimension, preprocessing, parameter count, weights file and sha256, device (JSON on stdout)."""
    _setup_logging("warning")
    _, embedder = _load_model_or_exit(spec)
    base = getattr(embedder, "base", embedder)
    weights_file = getattr(base, "weights_file", None)
    typer.echo(json.dumps({
        **embedder.info.as_dict(),
        "parameters": base.parameter_count,
        "weights_file": str(weights_file) if weights_file else None,
        "device": str(base.device),
        "batch_size": base.batch_size,
        "fast_preprocessing": base.fast_config is not None,
    }, indent=2))


@app.command()
def reindex(model: Optional[str] = typer.Option(None, help="Model spec; default COUNTERFEIT_MODEL"),
            index_type: str = typer.Option("auto", help="auto, flat, ivf or ivf-pq"),
            engine: str = typer.Option("local", help="local or ray"),
            ray_address: Optional[str] = typer.Option(None, help="An existing Ray cluster (default: start one locally)")):
    """Re-embed every reference into a new index generation and swap it in (resumes a killed run)."""
    import threading
    import time

    from service.blobs import BlobStore
    from service.errors import ApiError
    from service.jobs import JobStore
    from service.reindex import Reindexer, ReindexParams, params_dict

    _setup_logging("warning")
    settings = _settings(model)
    try:
        params = ReindexParams(settings.model, index_type, engine, ray_address).validate()
        jobs = JobStore(_sessions())
        job = jobs.create("reindex", params_dict(params))
    except (ValueError, ApiError) as exc:
        raise _fail(getattr(exc, "message", exc)) from None
    err.print(f"Reindex job {job.id}: model {params.model}, engine {engine}")
    worker = threading.Thread(target=Reindexer(settings, jobs.sessions, BlobStore(settings.blob_dir), jobs).run,
                              args=(job.id, params))
    worker.start()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                  TimeRemainingColumn(), console=err) as bar:
        task = bar.add_task("embedding", total=None, rate="")
        while worker.is_alive():
            state = jobs.get(job.id)
            bar.update(task, completed=state.done, total=state.total or None,
                       rate=f"{state.images_per_second or 0:.1f} img/s")
            time.sleep(0.3)
        state = jobs.get(job.id)
        bar.update(task, completed=state.done, total=state.total or None, rate=f"{state.images_per_second or 0:.1f} img/s")
    for failure in state.failures:
        err.print(f"  failed reference {failure['reference_id']}: {failure['reason']}", markup=False)
    if state.state != "succeeded":
        raise _fail(f"reindex {state.state}: {state.error or ''}", 1)
    err.print(f"Generation {state.result['generation']} is live: {state.result['size']} vectors, "
              f"{state.result['index_type']} index, recall@10 {state.result['recall_at_10']}, "
              f"{state.embedded} embedded now ({state.total - state.embedded - len(state.failures)} reused).")
    typer.echo(json.dumps(state.result))


@index_app.command("list")
def index_list():
    """Index generations on disk; * marks the current one."""
    from index.generations import Generations

    generations = Generations(_settings().index_dir)
    current = generations.current()
    for generation in generations.all():
        mark = "*" if current and generation.number == current.number else " "
        info = generation.model_info()
        typer.echo(f"{mark} {generation.number}\t{info['spec']}\t{info['fingerprint']}")


@index_app.command("rollback")
def index_rollback():
    """Make the previous generation current again (with its model); running services follow."""
    from index.generations import Generations

    generations = Generations(_settings().index_dir)
    previous = generations.previous()
    if previous is None:
        raise _fail("there is no older generation to roll back to", 1)
    generations.activate(previous)
    err.print(f"Generation {previous.number} ({previous.model_info()['spec']}) is current again.")


def _eval_items(manifest: Optional[Path], references: Optional[Path], queries: Optional[Path]):
    from training.dataset import read_directories, read_manifest

    if manifest:
        return read_manifest(manifest)
    if references and queries:
        return read_directories(references, queries)
    raise _fail("give --manifest, or both --references and --queries")


@eval_set_app.command("build")
def eval_set_build(out: Path = typer.Argument(..., help="Folder to write references/, queries/ and manifest.csv"),
                   seed: int = 0, procedural: int = 60, copies: int = 3):
    """Build a seeded evaluation set from packaged photos and procedural product images."""
    from collections import Counter

    from training.dataset import build_eval_set

    items = build_eval_set(out, seed=seed, procedural=procedural, copies=copies)
    counts = Counter(f"{i.role}s {i.label}" for i in items)
    err.print(", ".join(f"{n} {k}" for k, n in sorted(counts.items())) + f" in {out}")


@app.command("eval")
def evaluate(manifest: Optional[Path] = typer.Option(None, exists=True, dir_okay=False),
             references: Optional[Path] = typer.Option(None, exists=True, file_okay=False),
             queries: Optional[Path] = typer.Option(None, exists=True, file_okay=False),
             model: Optional[str] = typer.Option(None, help="Model spec; default COUNTERFEIT_MODEL"),
             calibration: Optional[Path] = typer.Option(None, exists=True, dir_okay=False, help="Calibration artefact to evaluate too"),
             out: Path = typer.Option(Path("eval-report"), help="Where report.json and the plots go")):
    """Evaluate matching and scoring on a labelled set: ROC-AUC, verdict precision/recall, ECE, µAP, distractors."""
    from training.calibrate import CalibrationArtefact, CalibrationMismatch
    from training.evaluate import evaluate_set
    from training.plots import write_plots
    from training.scoring import Thresholds

    _setup_logging("warning")
    items = _eval_items(manifest, references, queries)
    settings, embedder = _load_model_or_exit(model)
    artefact = None
    if calibration:
        try:
            artefact = CalibrationArtefact.load(calibration, embedder.info.fingerprint())
        except CalibrationMismatch as exc:
            raise _fail(exc) from None
    report, outcomes, names = evaluate_set(items, embedder, settings.min_match_similarity, settings.score_temperature,
                                           Thresholds(settings.counterfeit_threshold, settings.authentic_threshold), artefact)
    out.mkdir(parents=True, exist_ok=True)
    plots = write_plots(outcomes, names, out)
    report["plots"] = [p.name for p in plots]
    (out / "report.json").write_text(json.dumps(report, indent=2))
    for name, row in report["scorers"].items():
        err.print(f"{name:>11}: ROC-AUC {row['roc_auc']}, ECE {row['ece']}, distractors inconclusive "
                  f"{row['distractor_inconclusive_rate']}, counterfeit precision/recall "
                  f"{row['verdicts']['likely_counterfeit']['precision']}/{row['verdicts']['likely_counterfeit']['recall']}")
    err.print(f"copy-match µAP {report['copy_match_micro_ap']}; report in {out / 'report.json'}")
    typer.echo(json.dumps(report))


@train_app.command("calibrate")
def train_calibrate(manifest: Optional[Path] = typer.Option(None, exists=True, dir_okay=False,
                                                             help="Fit on an evaluation set instead of the review log"),
                    model: Optional[str] = typer.Option(None, help="Model spec; default COUNTERFEIT_MODEL"),
                    target_precision: float = typer.Option(0.95, help="Precision the verdict thresholds must reach"),
                    activate: bool = typer.Option(True, help="Make it the scorer running services use"),
                    brand_policies: bool = typer.Option(True, help="Also set per-brand thresholds where reviews allow")):
    """Fit a calibrated scorer from confirmed outcomes (reviews) or a labelled set; save it, versioned."""
    from training.calibrate import fit_calibration
    from training.calibration_store import CalibrationStore

    _setup_logging("warning")
    settings = _settings(model)
    if manifest:
        from training.evaluate import run_pipeline, training_examples

        _, embedder = _load_model_or_exit(model)
        fingerprint = embedder.info.fingerprint()
        features, labels = training_examples(run_pipeline(_eval_items(manifest, None, None), embedder,
                                                          settings.min_match_similarity))
        brands: list = []
    else:
        from service.reviews import review_training_examples

        fingerprint, features, labels, brands = review_training_examples(_sessions(), settings)
    try:
        artefact = fit_calibration(features, labels, fingerprint, target_precision)
    except ValueError as exc:
        raise _fail(exc) from None
    if brands and activate and brand_policies:
        _apply_brand_thresholds(artefact, features, labels, brands, target_precision)
    store = CalibrationStore(settings.data_dir / "calibration")
    path = store.save_and_activate(artefact) if activate else store.directory / f"{artefact.version}.json"
    if not activate:
        artefact.save(path)
    err.print(f"Calibration {artefact.version} from {artefact.stats['samples']} outcomes -> {path}"
              + (" (active)" if activate else ""))
    typer.echo(str(path))


def _apply_brand_thresholds(artefact, features, labels, brands, target_precision: float) -> None:
    from service.policies import PolicyStore
    from training.calibrate import brand_thresholds

    policies = PolicyStore(_sessions())
    for brand, thresholds in brand_thresholds(artefact, features, labels, brands, target_precision).items():
        current = policies.get(brand)
        policies.put(brand, thresholds.counterfeit, thresholds.authentic,
                     bool(current and current.auto_add_confirmed_counterfeits))
        err.print(f"  brand {brand}: likely_counterfeit at p >= {thresholds.counterfeit:.3f}, "
                  f"likely_authentic at p <= {thresholds.authentic:.3f}")
