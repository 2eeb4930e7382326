"""`counterfeit db upgrade|current`: the database schema's revision."""

from __future__ import annotations

import typer

from service.cli.common import PANELS, _settings, app, err

db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db", rich_help_panel=PANELS.MAINTENANCE)


@db_app.command("current")
def db_current():
    """Print the database's schema revision and the one this release needs (exit 1 if they differ)."""
    from service.db.session import current_revision, head_revision, make_engine

    engine = make_engine(_settings().resolved_database_url, check_schema=False)
    try:
        current, head = current_revision(engine), head_revision()
    finally:
        engine.dispose()
    typer.echo(f"database: {current or 'empty'}\nthis release: {head}")
    raise typer.Exit(0 if current == head else 1)


@db_app.command("upgrade")
def db_upgrade():
    """Upgrade the database schema to this release's revision (back it up first). Safe to run twice."""
    from service.db.session import make_engine, migrate

    engine = make_engine(_settings().resolved_database_url, check_schema=False)
    try:
        before, after = migrate(engine)
    finally:
        engine.dispose()
    err.print(
        f"Schema upgraded from {before or 'an empty database'} to {after}."
        if before != after
        else f"Schema already at {after}."
    )
