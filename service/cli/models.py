"""`counterfeit model pull|info`."""

from __future__ import annotations

import json
from typing import Optional

import typer

from service.cli.common import PANELS, _load_model_or_exit, _sessions, _setup_logging, app, err

model_app = typer.Typer(help="Fetch and inspect embedding models.", no_args_is_help=True)
app.add_typer(model_app, name="model", rich_help_panel=PANELS.REFERENCES)


@model_app.command("pull")
def model_pull(spec: Optional[str] = typer.Argument(None, help="Model spec; default COUNTERFEIT_MODEL")):
    """Download the model's weights into the cache (COUNTERFEIT_MODEL_CACHE), so later starts work offline, and
    store its derived artefacts and similarity profile in the database (once per model: every replica reads them)."""
    from service.serving.runner import model_profile

    _setup_logging("warning")
    settings, embedder = _load_model_or_exit(spec)
    profile = model_profile(settings, _sessions(), embedder)
    err.print(
        f"Model {settings.model} is ready (fingerprint {embedder.info.fingerprint()}; "
        f"a copy begins at similarity {profile.min_match_similarity:.2f})."
    )


@model_app.command("info")
def model_info(spec: Optional[str] = typer.Argument(None, help="Model spec; default COUNTERFEIT_MODEL")):
    """Dimension, preprocessing, parameter count, weights file and sha256, device (JSON on stdout)."""
    _setup_logging("warning")
    _, embedder = _load_model_or_exit(spec)
    base = getattr(embedder, "base", embedder)
    weights_file = getattr(base, "weights_file", None)
    typer.echo(
        json.dumps(
            {
                **embedder.info.as_dict(),
                "parameters": base.parameter_count,
                "weights_file": str(weights_file) if weights_file else None,
                "device": str(base.device),
                "batch_size": base.batch_size,
                "fast_preprocessing": base.fast_config is not None,
            },
            indent=2,
        )
    )
