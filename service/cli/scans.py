"""`counterfeit scan FEED`: check a catalogue feed in bulk here, with progress (same job as POST /v1/scans)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from service.cli.common import (
    PANELS,
    RUNTIME_HELP,
    _fail,
    _refused,
    _settings,
    _setup_logging,
    _start_runtime,
    app,
    err,
)


@app.command(rich_help_panel=PANELS.JOBS)
def scan(
    feed: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="JSONL, CSV or Parquet, a listing per row"
    ),
    brand: Optional[str] = typer.Option(None, help="Check against this brand's references only"),
    k: Optional[int] = typer.Option(None, help="Evidence per photo (default COUNTERFEIT_DEFAULT_K)"),
    format: Optional[str] = typer.Option(None, help="jsonl, csv or parquet (default: from the file name)"),
    images: Optional[Path] = typer.Option(
        None, exists=True, dir_okay=False, help="A ZIP of the photos the feed's image_files name"
    ),
    engine: str = typer.Option("local", help="local, or ray: Ray actors fetch, prepare and embed the photos"),
    ray_address: Optional[str] = typer.Option(None, help="An existing Ray cluster (default: a local one)"),
    runtime: Optional[str] = typer.Option(None, help=RUNTIME_HELP),
):
    """Scan a feed of listings; prints the scan id and its counts. Results: GET /v1/scans/{id}/results."""
    from service.core.auth import OPERATOR
    from service.core.errors import DomainError
    from service.core.validation import validate_brand
    from service.jobs.scan_feed import feed_format
    from service.jobs.scans import ScanParams

    _setup_logging("warning")
    settings = _settings(runtime=runtime)
    if engine not in ("local", "ray"):
        raise _fail("--engine: local or ray")
    try:
        fmt = feed_format(feed.name, format)
        params = ScanParams(validate_brand(brand) if brand else None, k or settings.default_k)
    except DomainError as exc:
        raise _refused(exc)
    runtime = _start_runtime(settings, persist_snapshots=False)
    try:
        scan_id = runtime.scans.create(
            feed.read_bytes(), fmt, params, OPERATOR, feed.name, images.read_bytes() if images else None
        )
    except DomainError as exc:
        runtime.close()
        raise _refused(exc)
    err.print(f"Scan {scan_id}", markup=False, highlight=False)
    with Progress(
        TextColumn("scanning"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err
    ) as bar:
        task = bar.add_task("scan", total=runtime.jobs.get(scan_id).total)
        runtime.scans.run(
            scan_id,
            on_progress=lambda job: bar.update(task, completed=job["done"]),
            engine=engine,
            ray_address=ray_address,
        )
    result = runtime.scans.get(scan_id)
    runtime.close()
    typer.echo(json.dumps({"scan_id": scan_id, "state": result["state"], **result["summary"]}))
    raise typer.Exit(0 if result["state"] == "succeeded" else 1)
