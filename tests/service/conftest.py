"""Tenants for workflow tests: an admin, platforms A ("default") and B, brands acme and globex (keys over HTTP)."""

from __future__ import annotations

import pytest

from service.db.models import Role
from tests.helpers import create_api_key, make_settings, running


class Tenants:
    def __init__(self, server, settings):
        self.settings = settings
        tokens = {
            "admin": create_api_key(settings, Role.admin),
            "platform_a": create_api_key(settings, Role.platform),  # tenant "default"
            "platform_b": create_api_key(settings, Role.platform, platform="market-b"),
            "acme": create_api_key(settings, Role.brand, "acme"),
            "globex": create_api_key(settings, Role.brand, "globex"),
        }
        self.clients = {name: server.client(token) for name, token in tokens.items()}

    def __getattr__(self, name):
        return self.clients[name]

    def close(self):
        for client in self.clients.values():
            client.close()


@pytest.fixture
def tenants(tmp_path):
    settings = make_settings(
        tmp_path / "data", unsafe_fetch_allow_loopback_for_tests=True, webhook_retry_base_seconds=0.1
    )
    with running(settings) as server:
        world = Tenants(server, settings)
        try:
            yield world
        finally:
            world.close()
