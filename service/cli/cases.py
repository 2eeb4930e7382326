"""`counterfeit case verify`: check an enforcement case package's signature and every file in it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from service.cli.common import PANELS, _fail, app, err

case = typer.Typer(
    help="Enforcement case packages (GET /v1/sellers/{marketplace}/{seller}/case).", no_args_is_help=True
)
app.add_typer(case, name="case", rich_help_panel=PANELS.EXCHANGE)


@case.command("verify")
def verify(
    package: Path = typer.Argument(..., exists=True, dir_okay=False, help="The case package (ZIP)."),
    public_key: Optional[str] = typer.Option(
        None,
        help="The issuer's Ed25519 public key (base64), obtained from the issuer; without it only integrity",
    ),
):
    """Exit 0 when the manifest's signature verifies and every file matches it; 1 otherwise (each problem printed)."""
    from service.marketplace.cases import verify_package

    report = verify_package(package.read_bytes(), public_key)
    print(json.dumps(report, indent=2))
    if not report["valid"]:
        raise _fail(f"{package}: NOT valid: " + "; ".join(report["problems"]), code=1)
    if public_key is None:
        err.print(
            "Intact, and signed by the key the package names; pass --public-key to check who issued it.",
            markup=False,
        )
