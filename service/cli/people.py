"""`counterfeit people add|list|disable|password`: analysts' workbench accounts (service/core/people.py)."""

from __future__ import annotations

import json
from typing import Optional

import typer

from service.cli.common import PANELS, _refused, _sessions, app, err

people_app = typer.Typer(
    help="People's workbench accounts (passwords, viewer/reviewer/manager access); keys stay for machines.",
    no_args_is_help=True,
)
app.add_typer(people_app, name="people", rich_help_panel=PANELS.ACCESS)


def _people():
    from service.core.people import People

    return People(_sessions())


@people_app.command("add")
def add(
    username: str = typer.Argument(..., help="3-64 characters: a-z, 0-9 and . _ @ -"),
    access: str = typer.Option("reviewer", help="viewer, reviewer or manager (adds the tenant's people)"),
    brand: Optional[str] = typer.Option(None, help="A brand's analyst: the brand"),
    platform: Optional[str] = typer.Option(None, help="A platform's moderator: the platform tenant"),
    admin: bool = typer.Option(False, "--admin", help="The service's own staff: every tenant"),
    display_name: Optional[str] = typer.Option(None, help="The name pages show beside the username"),
):
    """Add a person. Prints only the generated password on stdout; it is shown once."""
    from service.core.errors import DomainError, InvalidInput
    from service.core.people import NewPerson
    from service.core.validation import validate_brand
    from service.db.models import Access, Role

    try:
        if sum((brand is not None, platform is not None, admin)) != 1:
            raise InvalidInput("tenant_required", "Give exactly one of --brand, --platform or --admin.")
        if access not in Access.__members__:
            raise InvalidInput("invalid_access", "--access is viewer, reviewer or manager.")
        role = Role.brand if brand else Role.platform if platform else Role.admin
        new = NewPerson(
            username=username,
            access=Access(access),
            role=role,
            brand=validate_brand(brand) if brand else None,
            platform=validate_brand(platform) if platform else None,
            display_name=display_name,
        )
        person, password = _people().create(new)
    except DomainError as exc:
        raise _refused(exc)
    err.print(f"Added {person.access.value} {person.username} ({person.id}). Store the password now.")
    typer.echo(password)


@people_app.command("list")
def list_people():
    """Every person as JSON (no password hashes)."""
    from service.core.auth import OPERATOR
    from service.core.people import person_view

    typer.echo(json.dumps([person_view(p) for p in _people().list(OPERATOR)], indent=2))


@people_app.command("disable")
def disable(person_id: str):
    """No more logins for PERSON_ID; their open sessions end now."""
    from service.core.errors import DomainError

    try:
        person = _people().disable(person_id)
    except DomainError as exc:
        raise _refused(exc)
    err.print(f"{person.username} can no longer log in.", markup=False)


@people_app.command("password")
def password(person_id: str):
    """A new generated password for PERSON_ID (printed on stdout, shown once); their sessions end."""
    from service.core.errors import DomainError

    try:
        typer.echo(_people().reset_password(person_id))
    except DomainError as exc:
        raise _refused(exc)
