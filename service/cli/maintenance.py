"""`counterfeit gc`: storage housekeeping (run it from cron or a Kubernetes CronJob)."""
from __future__ import annotations

from datetime import timedelta
from typing import Optional

import typer

from service.cli import _sessions, _settings, app, err


@app.command()
def gc(older_than_days: Optional[float] = typer.Option(None, help="Default COUNTERFEIT_CHECK_IMAGE_RETENTION_DAYS")):
    """Delete kept check images past their retention (never bytes a reference uses)."""
    from service.blobs import BlobStore
    from service.retention import purge_check_images

    settings = _settings()
    days = older_than_days if older_than_days is not None else settings.check_image_retention_days
    removed = purge_check_images(_sessions(), BlobStore(settings.blob_dir), timedelta(days=days))
    err.print(f"Removed {removed} check images older than {days:g} days.")
