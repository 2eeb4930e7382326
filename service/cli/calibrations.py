"""`counterfeit calibrations list|activate|rollback`: which calibrated scorer running services use."""

from __future__ import annotations

import json

import typer

from service.cli.common import PANELS, _fail, _settings, app, err

calibrations = typer.Typer(
    help="Calibrated scorers (counterfeit train calibrate fits them): list, activate, roll back.",
    no_args_is_help=True,
)
app.add_typer(calibrations, name="calibrations", rich_help_panel=PANELS.EVALUATION)


def _store():
    from scoring.calibration import CalibrationStore

    return CalibrationStore(_settings().data_dir / "calibration")


@calibrations.command("list")
def list_calibrations():
    """Every saved calibration (newest first) as JSON, the active one marked."""
    typer.echo(json.dumps(_store().versions(), indent=2))


@calibrations.command("activate")
def activate(version: str):
    """Make VERSION the scorer running services use (they switch within a poll)."""
    try:
        _store().activate(version)
    except KeyError:
        raise _fail(f"No saved calibration {version!r}: see counterfeit calibrations list.") from None
    err.print(f"Calibration {version} is active.", markup=False)


@calibrations.command("rollback")
def rollback():
    """Go back to the calibration active before this one (or to the default scorer)."""
    previous = _store().rollback()
    err.print(f"Active now: {previous or 'the default scorer (no calibration)'}", markup=False)
