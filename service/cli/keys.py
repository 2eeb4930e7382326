"""`counterfeit keys create|list|rotate|revoke`."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer

from service.cli.common import PANELS, _fail, _refused, _sessions, app, err

keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys", rich_help_panel=PANELS.ACCESS)


@keys_app.command("create")
def keys_create(
    role: str = typer.Option(
        ..., help="admin, brand, platform or exchange (a peer platform: reads the feed)"
    ),
    brand: Optional[str] = typer.Option(None, help="The brand a brand key is bound to"),
    platform: Optional[str] = typer.Option(
        None,
        help="The platform (tenant) a platform key belongs to; "
        "default 'default'. Platforms never see each other's data",
    ),
    name: Optional[str] = typer.Option(None, help="A note to recognise the key by"),
    expires_in_days: Optional[float] = typer.Option(None, min=0.0, help="The key stops working after this"),
):
    """Create an API key. Prints only the key on stdout; it is shown once."""
    from datetime import datetime, timedelta, timezone

    from service.core.auth import create_key
    from service.core.errors import DomainError
    from service.core.validation import validate_brand
    from service.db.models import Role

    try:
        parsed_role = Role(role)
        if brand:
            validate_brand(brand)
        if platform:
            validate_brand(platform)  # the same shape as a brand name
        _refuse_a_new_database()
        with _sessions()() as session:
            expires_at = (
                datetime.now(timezone.utc) + timedelta(days=expires_in_days)
                if expires_in_days is not None
                else None
            )
            key, token = create_key(
                session, parsed_role, brand, name, expires_at=expires_at, platform=platform
            )
    except ValueError as exc:
        raise _fail(exc)
    except DomainError as exc:
        raise _refused(exc)
    err.print(
        f"Created {key.role.value} key {key.id}"
        + (f" for brand {brand}" if brand else "")
        + ". Store it now; it is not shown again."
    )
    typer.echo(token)


def _refuse_a_new_database() -> None:
    """A key made into a database that did not exist works nowhere: it is the wrong folder (or a typo in
    COUNTERFEIT_DATA_DIR), not a new deployment — which `counterfeit db upgrade` (or `make serve`) starts."""
    from service.cli.common import _settings

    url = _settings().resolved_database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise _fail(
            f"No database at {url.removeprefix('sqlite:///')}: run this in the service's folder, set "
            "COUNTERFEIT_DATA_DIR to its data directory, or start a new one with `counterfeit db upgrade`."
        )


@keys_app.command("list")
def keys_list():
    """List API keys (never the secrets)."""
    from sqlalchemy import select

    from service.core.timestamps import aware
    from service.db.models import ApiKey

    now = datetime.now(timezone.utc)
    typer.echo("id\trole\tbrand\tplatform\tstate\texpires\tname")
    with _sessions()() as session:
        for key in session.scalars(select(ApiKey).order_by(ApiKey.created_at)):
            expires = aware(key.expires_at)
            state = "revoked" if key.revoked_at else "expired" if expires and expires <= now else "active"
            until = expires.isoformat(timespec="seconds") if expires else "-"
            typer.echo(
                f"{key.id}\t{key.role.value}\t{key.brand or '-'}\t{key.platform or '-'}\t{state}\t{until}\t"
                f"{key.name or ''}"
            )


@keys_app.command("rotate")
def keys_rotate(
    key_id: str, overlap_hours: float = typer.Option(24.0, min=0.0, help="How long the old key keeps working")
):
    """Issue a new key like KEY_ID (printed once on stdout); KEY_ID keeps working for the overlap."""
    from datetime import timedelta

    from service.core.audit import audit_event
    from service.core.auth import OPERATOR, rotate_key
    from service.core.errors import DomainError

    with _sessions()() as session:
        try:
            new, token, old = rotate_key(session, key_id, timedelta(hours=overlap_hours))
        except DomainError as exc:
            raise _refused(exc)
        session.add(
            audit_event(
                OPERATOR, "key.rotate", new.brand, old.id, new_key_id=new.id, overlap_hours=overlap_hours
            )
        )
        session.commit()
        err.print(
            f"Created {new.id} to replace {old.id}, which works until {old.expires_at.isoformat(timespec='seconds')}. "
            "Store the new key now; it is not shown again."
        )
    typer.echo(token)


@keys_app.command("revoke")
def keys_revoke(key_id: str):
    """Revoke a key by its id (key_…)."""
    from service.core.auth import revoke_key

    with _sessions()() as session:
        if not revoke_key(session, key_id):
            raise _fail(f"no active key {key_id}", 1)
    err.print(f"Revoked {key_id}")


@app.command("signals-keygen", rich_help_panel=PANELS.EXCHANGE)
def signals_keygen():
    """A new Ed25519 key pair for signing shared signals: private key on stdout, public key on stderr."""
    from service.exchange.signals import generate_keypair

    private, public = generate_keypair()
    err.print(f"Public key (give it to the platforms that import your bundles): {public}")
    err.print("Set the private key as COUNTERFEIT_SIGNAL_PRIVATE_KEY; it is not shown again.")
    typer.echo(private)
