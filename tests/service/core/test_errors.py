"""Domain errors by kind, and how each edge says them: HTTP status and headers, CLI exit code."""

from __future__ import annotations

import pytest

from service.api.errors import headers_for
from service.cli.common import _refused
from service.core.errors import (
    ERROR_KINDS,
    Busy,
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    RateLimited,
    Unauthenticated,
    error_of_status,
    overloaded,
)


def test_every_kind_has_its_own_status_and_a_per_photo_status_comes_back_as_its_kind():
    assert len({kind.status for kind in ERROR_KINDS.values()}) == len(ERROR_KINDS)
    for status, kind in ERROR_KINDS.items():
        again = error_of_status(status, "code", "message")
        assert type(again) is kind and again.status == status and again.code == "code"
    assert type(error_of_status(599, "odd", "message")) is DomainError


def test_the_http_edge_adds_retry_after_and_www_authenticate_from_the_kind():
    assert headers_for(overloaded("queue full", retry_after=2)) == {"Retry-After": "2"}
    assert headers_for(RateLimited("rate_limited", "slow down", retry_after=3)) == {"Retry-After": "3"}
    assert headers_for(Unauthenticated("unauthenticated", "no key")) == {"WWW-Authenticate": "Bearer"}
    assert headers_for(InvalidInput("invalid_brand", "bad")) is None


@pytest.mark.parametrize(
    "error, exit_code",
    [
        (InvalidInput("invalid_brand", "bad"), 2),
        (NotFound("not_found", "No such key."), 3),
        (Conflict("job_running", "busy"), 4),
        (Busy("overloaded", "later", retry_after=1), 75),
    ],
)
def test_the_cli_edge_exits_by_kind(error, exit_code):
    assert _refused(error).exit_code == exit_code
