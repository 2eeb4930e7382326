"""Schema migrations: a release-1 database is adopted and upgraded in place; the migrated schema is
exactly what the models declare (a model change without a migration fails here)."""
from __future__ import annotations

import sqlite3

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from service.db.models import Base
from service.db.session import make_engine

RELEASE_1_API_KEYS = """CREATE TABLE api_keys (id VARCHAR(40) NOT NULL, key_hash VARCHAR(64) NOT NULL,
    role VARCHAR(16) NOT NULL, brand VARCHAR(64), name VARCHAR(200), created_at DATETIME NOT NULL,
    revoked_at DATETIME, PRIMARY KEY (id), UNIQUE (key_hash))"""


def test_a_release_1_database_is_upgraded_in_place(tmp_path):
    path = tmp_path / "counterfeit.db"
    legacy = sqlite3.connect(path)
    legacy.execute("CREATE TABLE reference_images (id INTEGER PRIMARY KEY)")  # release 1 made its tables with create_all
    legacy.execute(RELEASE_1_API_KEYS)
    legacy.execute("INSERT INTO api_keys VALUES ('key_1', 'abc', 'admin', NULL, 'ops', '2026-01-01 00:00:00', NULL)")
    legacy.commit()
    legacy.close()
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0002"
        assert connection.execute(text("SELECT id, name, expires_at FROM api_keys")).all() == [("key_1", "ops", None)]
        assert connection.execute(text("SELECT count(*) FROM audit_events")).scalar() == 0
    engine.dispose()


def test_migrations_build_exactly_the_models_schema(tmp_path):
    make_engine(f"sqlite:///{tmp_path / 'fresh.db'}").dispose()
    engine = create_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)
    engine.dispose()
    assert differences == [], differences
