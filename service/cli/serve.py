"""`counterfeit serve`."""

from __future__ import annotations

from typing import Optional

import typer

from service.cli.common import PANELS, _settings, _setup_logging, _start_runtime, app


@app.command(rich_help_panel=PANELS.SERVE)
def serve(
    host: Optional[str] = None,
    port: Optional[int] = None,
    model: Optional[str] = typer.Option(None, help="Model spec"),
):
    """Run the HTTP service (uvicorn) on the embedded defaults."""
    import uvicorn

    from service.app import create_app

    settings = _settings(model)
    _setup_logging(settings.log_level)
    runtime = _start_runtime(settings)
    uvicorn.run(
        create_app(runtime=runtime),
        host=host or settings.host,
        port=port or settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=10,
        # Idle keep-alive connections are closed; slow *bodies* are timed out by service.api.middleware.BodyGuard.
        timeout_keep_alive=settings.keep_alive_timeout_seconds,
    )
