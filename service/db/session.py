"""Engine and session factory, and the schema's revision.

A new, empty database is created at the newest revision on first use. An existing one must be at
exactly the revision this code knows: an older one is upgraded only by ``counterfeit db upgrade``
(an operator's decision, once, not each replica on start), a newer one was written by a newer
release. Either way :class:`SchemaMismatch` says what to run.

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
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"
FIRST_REVISION = "0001"  # the schema release 1 made with create_all, before migrations existed
_checked: set[str] = set()  # URLs this process found (or made) at the newest revision
_checked_lock = threading.Lock()


class SchemaMismatch(RuntimeError):
    """The database's schema revision is not the one this code was written for."""


def make_engine(url: str, check_schema: bool = True) -> Engine:
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

    if check_schema:
        try:
            ensure_schema(engine)
        except Exception:
            engine.dispose()
            raise
    return engine


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The database's revision; ``FIRST_REVISION`` for a release-1 database (tables, no version); None if empty."""
    with engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        if "alembic_version" in tables:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return FIRST_REVISION if "reference_images" in tables else None


def ensure_schema(engine: Engine) -> None:
    """Create an empty database at the newest revision; refuse one at any other revision."""
    url = engine.url.render_as_string(hide_password=False)
    with _checked_lock:
        if url in _checked:
            return
        head = head_revision()
        current = current_revision(engine)
        if current is None:
            migrate(engine)  # a new database: nothing to decide, create it at the newest revision
        elif current != head:
            try:
                ScriptDirectory.from_config(_config()).get_revision(current)
                known = True
            except CommandError:
                known = False
            where = engine.url.render_as_string(hide_password=True)
            if known:
                raise SchemaMismatch(
                    f"The database {where} is at schema revision {current}; this release needs {head}. "
                    "Back it up, then run `counterfeit db upgrade` (once, from one machine) and start again."
                )
            raise SchemaMismatch(
                f"The database {where} is at schema revision {current}, which this release does not know "
                f"(it needs {head}): it was upgraded by a newer counterfeit-check. Run that release."
            )
        _checked.add(url)


def migrate(engine: Engine) -> tuple[str | None, str]:
    """Upgrade the schema to the newest revision; safe when several processes try at once.

    Returns ``(revision before, revision after)``."""
    with _exclusive(engine):
        before = current_revision(engine)
        config = _config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            if before == FIRST_REVISION and "alembic_version" not in inspect(connection).get_table_names():
                command.stamp(config, FIRST_REVISION)  # a release-1 database: adopt it, then upgrade
            command.upgrade(config, "head")
    return before, head_revision()


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
