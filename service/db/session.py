"""Engine and session factory; the schema is brought to the latest Alembic revision on first use.

SQLite gets WAL and full fsync so an acknowledged write survives a crash.
"""
from __future__ import annotations

import contextlib
import fcntl
import threading
from pathlib import Path
from typing import Iterator

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"
FIRST_REVISION = "0001"  # the schema release 1 made with create_all, before migrations existed
_migrated: set[str] = set()  # URLs this process already brought to head
_migrated_lock = threading.Lock()


def make_engine(url: str) -> Engine:
    is_sqlite = url.startswith("sqlite")
    if is_sqlite and ":///" in url:
        Path(url.split(":///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30} if is_sqlite else {})
    if is_sqlite:
        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # noqa: ANN001
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()
    migrate(engine)
    return engine


def migrate(engine: Engine) -> None:
    """Upgrade the schema to the newest revision (once per process and URL; safe across processes)."""
    url = engine.url.render_as_string(hide_password=False)
    with _migrated_lock:
        if url in _migrated:
            return
        with _exclusive(engine):
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            with engine.begin() as connection:
                config.attributes["connection"] = connection
                tables = set(inspect(connection).get_table_names())
                if "reference_images" in tables and "alembic_version" not in tables:
                    command.stamp(config, FIRST_REVISION)  # a release-1 database: adopt it, then upgrade
                command.upgrade(config, "head")
        _migrated.add(url)


@contextlib.contextmanager
def _exclusive(engine: Engine) -> Iterator[None]:
    """One migrating process at a time: a file lock beside a SQLite file, an advisory lock on PostgreSQL."""
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        if not database or database == ":memory:":
            yield
            return
        with open(f"{database}.migrate.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    elif engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(4242001)"))
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(4242001)"))
                connection.commit()
    else:
        yield


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
