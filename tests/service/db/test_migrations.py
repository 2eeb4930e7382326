"""Schema migrations: a new database is created at the newest revision; a release-1 database (or any
older revision) is refused until `counterfeit db upgrade`, which upgrades it in place; a database from
a newer release is refused; the migrated schema is exactly what the models declare. On SQLite and,
in make test's second pass, on PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from service.db.models import Base
from service.db.session import SchemaMismatch, head_revision, make_engine, migrate
from tests.service.cli.test_cli import run_cli


def _release_1_database(url: str) -> None:
    """What release 1 (create_all, before migrations) left: revision 0001's tables, no version table, a key."""
    from alembic import command

    from service.db.session import _config

    engine = make_engine(url, check_schema=False)
    config = _config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.execute(text("DROP TABLE alembic_version"))
        connection.execute(
            text(
                "INSERT INTO api_keys (id, key_hash, role, name, created_at) "
                "VALUES ('key_1', 'abc', 'admin', 'ops', '2026-01-01 00:00:00')"
            )
        )
    engine.dispose()


def test_a_release_1_database_is_refused_until_db_upgrade_then_upgraded_in_place(settings):
    _release_1_database(settings.resolved_database_url)
    with pytest.raises(SchemaMismatch, match="counterfeit db upgrade"):
        make_engine(settings.resolved_database_url)
    for command in (("keys", "list"), ("serve", "--port", "1")):  # the service refuses before it listens
        refused = run_cli(settings, *command)
        assert refused.returncode == 2 and "counterfeit db upgrade" in refused.stderr, refused.stderr[-2000:]
        assert "Traceback" not in refused.stderr
    current = run_cli(settings, "db", "current")
    assert current.returncode == 1 and "database: 0001" in current.stdout
    upgraded = run_cli(settings, "db", "upgrade")
    assert upgraded.returncode == 0 and f"from 0001 to {head_revision()}" in upgraded.stderr, upgraded.stderr
    assert run_cli(settings, "db", "current").returncode == 0
    assert "already" in run_cli(settings, "db", "upgrade").stderr
    engine = make_engine(settings.resolved_database_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT id, name, expires_at FROM api_keys")).all() == [
            ("key_1", "ops", None)
        ]
        assert connection.execute(text("SELECT count(*) FROM audit_events")).scalar() == 0
    engine.dispose()
    assert "key_1" in run_cli(settings, "keys", "list").stdout


def test_a_database_from_a_newer_release_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'newer.db'}"
    engine = make_engine(url, check_schema=False)
    migrate(engine)
    engine.dispose()
    raw = create_engine(url)
    with raw.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    raw.dispose()
    with pytest.raises(SchemaMismatch, match="newer counterfeit-check"):
        make_engine(url)


def test_migrations_build_exactly_the_models_schema(settings):
    make_engine(settings.resolved_database_url).dispose()  # SQLite, or PostgreSQL on make test's second pass
    engine = create_engine(settings.resolved_database_url)
    with engine.connect() as connection:
        differences = compare_metadata(
            MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata
        )
    engine.dispose()
    assert differences == [], differences
