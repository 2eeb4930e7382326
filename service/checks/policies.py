"""Brand policies: verdict thresholds per brand (falling back to the global default) and flags."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from scoring.scorers import Thresholds
from service.core.audit import audit_event
from service.core.auth import Principal
from service.core.errors import InvalidInput
from service.core.timestamps import utcnow
from service.db.models import BrandPolicy

CACHE_SECONDS = 2.0  # every check reads its brand's policy; edits from other processes show within this


class PolicyStore:
    def __init__(self, sessions: sessionmaker[Session]):
        self.sessions = sessions
        self._cache: dict[str, tuple[float, BrandPolicy | None]] = {}

    def get(self, brand: str) -> BrandPolicy | None:
        cached = self._cache.get(brand)
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        with self.sessions() as session:
            policy = session.get(BrandPolicy, brand)
        self._cache[brand] = (time.monotonic(), policy)
        return policy

    def thresholds(self, brand: str | None, default: Thresholds) -> Thresholds:
        policy = self.get(brand) if brand else None
        if policy is None:
            return default
        return Thresholds(
            policy.counterfeit_threshold if policy.counterfeit_threshold is not None else default.counterfeit,
            policy.authentic_threshold if policy.authentic_threshold is not None else default.authentic,
        )

    def keeps_check_images(self, brand: str | None) -> bool:
        """Checked images are stored only for brands whose confirmed counterfeits join the bank."""
        policy = self.get(brand) if brand else None
        return bool(policy and policy.auto_add_confirmed_counterfeits)

    def put(
        self,
        brand: str,
        counterfeit_threshold: float | None,
        authentic_threshold: float | None,
        auto_add_confirmed_counterfeits: bool,
        actor: Principal,
    ) -> BrandPolicy:
        for name, value in (
            ("counterfeit_threshold", counterfeit_threshold),
            ("authentic_threshold", authentic_threshold),
        ):
            if value is not None and not 0 < value < 1:
                raise InvalidInput("invalid_policy", f"{name} must be between 0 and 1 (exclusive).")
        if (
            counterfeit_threshold is not None
            and authentic_threshold is not None
            and authentic_threshold >= counterfeit_threshold
        ):
            raise InvalidInput("invalid_policy", "authentic_threshold must be below counterfeit_threshold.")
        with self.sessions() as session:
            policy = session.get(BrandPolicy, brand) or BrandPolicy(brand=brand)
            policy.counterfeit_threshold = counterfeit_threshold
            policy.authentic_threshold = authentic_threshold
            policy.auto_add_confirmed_counterfeits = auto_add_confirmed_counterfeits
            policy.updated_at = utcnow()
            session.add(policy)
            session.add(
                audit_event(
                    actor,
                    "policy.update",
                    brand,
                    brand,
                    counterfeit_threshold=counterfeit_threshold,
                    authentic_threshold=authentic_threshold,
                    auto_add_confirmed_counterfeits=auto_add_confirmed_counterfeits,
                )
            )
            session.commit()
        self._cache.pop(brand, None)
        return policy


def policy_to_dict(brand: str, policy: BrandPolicy | None, effective: Thresholds) -> dict[str, Any]:
    return {
        "brand": brand,
        "counterfeit_threshold": policy.counterfeit_threshold if policy else None,
        "authentic_threshold": policy.authentic_threshold if policy else None,
        "auto_add_confirmed_counterfeits": bool(policy and policy.auto_add_confirmed_counterfeits),
        "effective": {
            "counterfeit_threshold": effective.counterfeit,
            "authentic_threshold": effective.authentic,
        },
    }
