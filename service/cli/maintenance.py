"""`counterfeit gc`: storage housekeeping (run it from cron or a Kubernetes CronJob)."""

from __future__ import annotations

from datetime import timedelta
from typing import Optional

import typer

from service.cli.common import PANELS, _sessions, _settings, app, err


@app.command(rich_help_panel=PANELS.MAINTENANCE)
def gc(
    older_than_days: Optional[float] = typer.Option(
        None, help="Default COUNTERFEIT_CHECK_IMAGE_RETENTION_DAYS"
    ),
):
    """Delete kept check images past their retention (never bytes a reference uses), and blobs nothing refers to
    (left by a crash or a refused request) once an hour old."""
    from service.core.blobs import open_blob_store
    from service.jobs.retention import collect_orphan_blobs, purge_check_images

    settings = _settings()
    days = older_than_days if older_than_days is not None else settings.check_image_retention_days
    sessions, blobs = _sessions(), open_blob_store(settings.blob_url, settings.blob_dir)
    removed = purge_check_images(sessions, blobs, timedelta(days=days))
    orphans = collect_orphan_blobs(sessions, blobs)
    err.print(
        f"Removed {removed} check images older than {days:g} days and {orphans} blobs nothing refers to."
    )


@app.command("rehash-pdq", rich_help_panel=PANELS.MAINTENANCE)
def rehash_pdq_command():
    """Recompute every live reference's PDQ hash the reference hasher's way; update those that differ."""
    from index.generations import Generations
    from index.prepare import CpuWorkers
    from service.cli.common import _load_model_or_exit
    from service.core.blobs import open_blob_store
    from service.references.rehash import rehash_pdq
    from service.serving.model_options import ModelOptions

    settings = _settings()
    current = Generations(settings.index_dir).current()  # the served model, as `serve` picks it
    spec = (
        settings.model
        if current is None or "model" in settings.model_fields_set
        else current.model_info()["spec"]
    )
    settings, embedder = _load_model_or_exit(spec)
    draft = (
        ModelOptions.from_settings(settings).limits(embedder).draft_size
    )  # exactly what registration decodes
    workers = CpuWorkers(settings.resolved_cpu_workers, settings.decode_threads)
    try:
        report = rehash_pdq(
            _sessions(), open_blob_store(settings.blob_url, settings.blob_dir), draft, workers
        )
    finally:
        workers.shutdown()
    err.print(
        f"Checked {report.checked} references: {report.changed} PDQ hashes updated, {report.failed} unreadable."
    )
    if report.failed:
        raise typer.Exit(1)


@app.command("backfill-keypoints", rich_help_panel=PANELS.MAINTENANCE)
def backfill_keypoints_command():
    """Compute the keypoints of live references registered before local-feature verification (from their blobs)."""
    from index.prepare import CpuWorkers
    from service.core.blobs import open_blob_store
    from service.references.rehash import backfill_keypoints

    settings = _settings()
    workers = CpuWorkers(settings.resolved_cpu_workers, settings.decode_threads)
    try:
        report = backfill_keypoints(
            _sessions(), open_blob_store(settings.blob_url, settings.blob_dir), workers
        )
    finally:
        workers.shutdown()
    err.print(
        f"{report.missing} references had no keypoints: {report.added} added, {report.failed} unreadable."
    )
    if report.failed:
        raise typer.Exit(1)
