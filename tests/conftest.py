from __future__ import annotations

import pytest

from service.db.models import Role
from tests.helpers import (
    POSTGRES_URL,
    Keys,
    ThreadedServer,
    create_api_key,
    drop_test_databases,
    make_settings,
)


def pytest_report_header(config):
    return f"database: {'PostgreSQL (' + POSTGRES_URL + ')' if POSTGRES_URL else 'SQLite'}"


def pytest_sessionfinish(session, exitstatus):
    drop_test_databases()


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path / "data")


def _make_keys(settings) -> Keys:
    return Keys(
        admin=create_api_key(settings, Role.admin),
        platform=create_api_key(settings, Role.platform),
        brand_a=create_api_key(settings, Role.brand, "acme"),
        brand_b=create_api_key(settings, Role.brand, "globex"),
    )


@pytest.fixture
def keys(settings) -> Keys:
    return _make_keys(settings)


@pytest.fixture
def keys_for():
    """For tests that start a server with their own settings."""
    return _make_keys


@pytest.fixture
def server(settings, keys):
    running = ThreadedServer(settings).start()
    yield running
    running.stop()


@pytest.fixture
def admin(server, keys):
    with server.client(keys.admin) as client:
        yield client
