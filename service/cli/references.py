"""`counterfeit register DIR` (bulk import) and `counterfeit check IMAGE`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from service.cli.common import (
    IMAGE_SUFFIXES,
    PANELS,
    _refused,
    _settings,
    _setup_logging,
    _start_runtime,
    app,
    err,
)


@app.command(rich_help_panel=PANELS.REFERENCES)
def register(
    directory: Path = typer.Argument(..., exists=True, file_okay=False),
    brand: str = typer.Option(...),
    label: str = typer.Option(...),
    product: Optional[str] = None,
    source: Optional[str] = None,
):
    """Bulk-import a folder of images as references. Bad files are skipped and listed at the end."""
    from service.core.errors import DomainError
    from service.core.validation import validate_brand, validate_label
    from service.references.registry import NewReference

    _setup_logging("warning")
    try:
        new = NewReference(
            brand=validate_brand(brand), label=validate_label(label), product=product, source=source
        )
    except DomainError as exc:
        raise _refused(exc)
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    runtime = _start_runtime(_settings(), persist_snapshots=False)
    created = existing = 0
    failures: list[tuple[Path, str]] = []
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
    ) as bar:
        task = bar.add_task("registering", total=len(files))
        for path in files:
            try:
                _, was_created = runtime.registry.register(new, path.read_bytes())
                created, existing = created + was_created, existing + (not was_created)
            except DomainError as exc:
                failures.append((path, f"{exc.code}: {exc.message}"))
            bar.advance(task)
    runtime.close()
    err.print(f"{created} registered, {existing} already present, {len(failures)} failed")
    for path, reason in failures:
        err.print(f"  failed {path}: {reason}", markup=False, highlight=False)
    raise typer.Exit(1 if failures else 0)


@app.command(rich_help_panel=PANELS.SERVE)
def check(
    image: Path = typer.Argument(..., exists=True, dir_okay=False), brand: Optional[str] = None, k: int = 10
):
    """Check one image against the local index and print the JSON result."""
    from service.core.errors import DomainError

    _setup_logging("warning")
    runtime = _start_runtime(_settings(), persist_snapshots=False)
    try:
        result = runtime.checker.check(image.read_bytes(), brand, k, api_key_id="cli")
    except DomainError as exc:
        raise _refused(exc)
    finally:
        runtime.close()
    typer.echo(json.dumps(result, indent=2))
