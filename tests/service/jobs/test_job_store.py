"""The job store as a domain service (no HTTP): one live job per kind, input committed with its job, dead
owners' jobs retired or adopted, cancellation requested through the database."""

from __future__ import annotations

import socket

import pytest
from sqlalchemy import select

from service.core.errors import Conflict, NotFound
from service.db.models import AuditEvent, Job
from service.db.session import make_engine, make_session_factory
from service.jobs.store import JobStore


@pytest.fixture
def jobs(settings):
    engine = make_engine(settings.resolved_database_url)
    yield JobStore(make_session_factory(engine))
    engine.dispose()


def test_one_live_job_per_kind_and_a_refused_one_writes_nothing(jobs):
    first = jobs.create("reindex", {"model": "m"})
    assert jobs.get(first.id).state == "queued"
    added = []
    with pytest.raises(Conflict) as refused:
        jobs.create("reindex", {"model": "m"}, add_rows=lambda session, job: added.append(job.id))
    assert refused.value.code == "job_running" and added == []
    with pytest.raises(Conflict):
        jobs.refuse_if_running("reindex")
    jobs.create("scan", {})  # another kind is not held up
    with jobs.sessions() as session:
        assert len(session.scalars(select(Job)).all()) == 2
        assert len(session.scalars(select(AuditEvent)).all()) == 2


def test_a_job_whose_process_died_is_retired_or_adopted(jobs):
    gone = f"{socket.gethostname()}:999999999"  # this host, a pid that cannot be alive
    dead = jobs.create("reindex", {"model": "m"})
    jobs.update(dead.id, owner=gone)
    adopted = jobs.adopt("reindex")
    assert adopted is not None and adopted.id == dead.id and adopted.owner != gone
    jobs.update(dead.id, owner=gone)
    replacement = jobs.create("reindex", {"model": "m"})  # the dead one is failed, not left blocking
    assert jobs.get(dead.id).state == "failed" and replacement.id != dead.id


def test_cancel_is_requested_through_the_database_and_unknown_ids_are_not_found(jobs):
    job = jobs.create("reindex", {"model": "m"})
    assert not jobs.cancel_requested(job.id)
    jobs.request_cancel(job.id)
    assert jobs.cancel_requested(job.id)
    with pytest.raises(NotFound):
        jobs.get("job_0000000000000000")
