"""Push propagation of the change log on PostgreSQL: a trigger NOTIFYs ``counterfeit_changes`` when a change row
commits (migration 0019), and every replica LISTENs on its own connection, so a registration on one replica is
searchable on the others within milliseconds instead of a poll interval. Polling stays the fallback (a lost
connection, a missed notification) and SQLite's only path."""

from __future__ import annotations

import logging
import threading
from typing import Callable

log = logging.getLogger(__name__)
CHANNEL = "counterfeit_changes"


def listen_url(database_url: str) -> str | None:
    """A libpq URL for ``database_url`` if it is PostgreSQL (the psycopg driver takes it as it is), else None."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        return None
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class ChangeListener:
    """A thread on its own connection, calling ``on_change`` for every notification (and once per (re)connect,
    for what committed while it was not listening)."""

    def __init__(self, url: str, on_change: Callable[[], None], reconnect_seconds: float = 1.0):
        self.url = url
        self.on_change = on_change
        self.reconnect_seconds = reconnect_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="change-listener", daemon=True)

    def start(self) -> "ChangeListener":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    self.on_change()
                    while not self._stop.is_set():
                        for _ in connection.notifies(
                            timeout=0.5
                        ):  # returns after the timeout to look at _stop
                            self.on_change()
            except Exception as exc:  # the database went away: poll until it is back
                log.warning("Listening for change notifications failed (%s); retrying", exc)
                self._stop.wait(self.reconnect_seconds)
