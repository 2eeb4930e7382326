"""What every command module shares: the Typer ``app`` they add their commands to, and the helpers that turn
settings, sessions and start-up failures into one clear error line and an exit code."""

from __future__ import annotations

import logging
import sys

import typer
from rich.console import Console

from service.core.errors import (
    Busy,
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    RateLimited,
    TimedOut,
    Unauthenticated,
)
from service.settings import Settings

app = typer.Typer(help="counterfeit-check: is this product photo probably counterfeit?", no_args_is_help=True)


class PANELS:
    """The help's sections, so `counterfeit --help` reads by task (service/cli/__init__.py orders them)."""

    SERVE = "Serve and check"
    REFERENCES = "References, models and indexes"
    JOBS = "Catalogue scans"
    ACCESS = "Keys and people"
    EXCHANGE = "Exchange, hub and cases"
    EVALUATION = "Evaluation, calibration and training"
    MAINTENANCE = "Maintenance"


def _version(show: bool) -> None:
    if show:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"counterfeit-check {version('counterfeit-check')}")
        except PackageNotFoundError:  # run from a source tree that was never installed
            typer.echo("counterfeit-check (not installed)")
        raise typer.Exit()


@app.callback()
def _main(
    show_version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """counterfeit-check: is this product photo probably counterfeit?"""


err = Console(stderr=True, soft_wrap=True)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}


def _fail(message: object, code: int = 2) -> typer.Exit:
    """Print one clear error line (no markup parsing: messages contain brackets) and return the exit."""
    err.print("error:", str(message), style="red", markup=False, highlight=False)
    return typer.Exit(code)


# Exit codes by kind of refusal (sysexits.h where one fits), so scripts can tell "fix your input" from "retry".
EXIT_CODES: dict[type[DomainError], int] = {
    NotFound: 3,
    Conflict: 4,
    Busy: 75,  # EX_TEMPFAIL
    TimedOut: 75,
    RateLimited: 75,
    Forbidden: 77,  # EX_NOPERM
    Unauthenticated: 77,
}


def _refused(error: DomainError) -> typer.Exit:
    """A domain refusal as the CLI says it: its code and message on one line, and an exit code for its kind."""
    code = next((code for kind, code in EXIT_CODES.items() if isinstance(error, kind)), 2)
    return _fail(f"{error.code}: {error.message}", code)


RUNTIME_HELP = (
    "auto, torch, onnx or onnx-int8: what runs the model's forward pass (default COUNTERFEIT_RUNTIME)"
)


def _settings(model: str | None = None, runtime: str | None = None) -> Settings:
    """The environment's settings, with the command line's model and runtime over them."""
    overrides = {"model": model, "runtime": runtime}
    try:
        return Settings(**{name: value for name, value in overrides.items() if value})
    except ValueError as exc:  # pydantic's ValidationError: an unknown runtime, say
        raise _fail(exc) from None


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


def _sessions():
    from service.db.session import SchemaMismatch, make_engine, make_session_factory

    try:
        return make_session_factory(make_engine(_settings().resolved_database_url))
    except SchemaMismatch as exc:
        raise _fail(exc)


def _start_runtime(settings: Settings, persist_snapshots: bool = True):
    """Load model and index, or exit 2 with the operator-facing message (no traceback)."""
    from service.runtime import STARTUP_ERRORS, Runtime

    try:
        return Runtime(settings, persist_snapshots=persist_snapshots)
    except STARTUP_ERRORS as exc:
        raise _fail(exc)


def _load_model_or_exit(spec: str | None, runtime: str | None = None):
    from index.models import ModelIdentityError, ModelSpecError, ModelUnavailableError
    from service.db.session import SchemaMismatch
    from service.serving.model_options import ModelOptions

    settings = _settings(spec)
    try:
        return settings, ModelOptions.from_settings(settings, runtime=runtime).load(settings.model)
    except (ModelSpecError, ModelUnavailableError, ModelIdentityError, SchemaMismatch) as exc:
        raise _fail(exc)
