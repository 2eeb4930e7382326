"""Brand policies as a domain service (no HTTP): thresholds fall back to the default per field, a refused
policy writes nothing, and a change is seen at once (the per-brand cache is dropped)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from scoring.scorers import Thresholds
from service.checks.policies import PolicyStore
from service.core.auth import Principal
from service.core.errors import InvalidInput
from service.db.models import AuditEvent, BrandPolicy, Role
from service.db.session import make_engine, make_session_factory

ADMIN = Principal(None, Role.admin, None)
DEFAULT = Thresholds(0.7, 0.3)


@pytest.fixture
def policies(settings):
    engine = make_engine(settings.resolved_database_url)
    yield PolicyStore(make_session_factory(engine))
    engine.dispose()


def _rows(policies: PolicyStore) -> tuple[int, int]:
    with policies.sessions() as session:
        return (
            session.scalar(select(func.count()).select_from(BrandPolicy)),
            session.scalar(select(func.count()).select_from(AuditEvent)),
        )


def test_thresholds_fall_back_per_field_and_a_change_is_seen_at_once(policies):
    assert policies.thresholds("acme", DEFAULT) == DEFAULT and not policies.keeps_check_images("acme")
    policies.put("acme", 0.9, None, True, ADMIN)
    assert policies.thresholds("acme", DEFAULT) == Thresholds(0.9, 0.3)
    assert policies.keeps_check_images("acme") and not policies.keeps_check_images("globex")
    policies.put("acme", None, 0.2, False, ADMIN)
    assert policies.thresholds("acme", DEFAULT) == Thresholds(0.7, 0.2)
    assert not policies.keeps_check_images("acme")
    assert policies.thresholds(None, DEFAULT) == DEFAULT
    assert _rows(policies) == (1, 2)  # one policy, both changes audited


@pytest.mark.parametrize("counterfeit, authentic", [(1.0, None), (None, 0.0), (0.4, 0.6), (0.5, 0.5)])
def test_a_refused_policy_writes_nothing(policies, counterfeit, authentic):
    with pytest.raises(InvalidInput) as refused:
        policies.put("acme", counterfeit, authentic, True, ADMIN)
    assert refused.value.code == "invalid_policy"
    assert _rows(policies) == (0, 0) and policies.thresholds("acme", DEFAULT) == DEFAULT
