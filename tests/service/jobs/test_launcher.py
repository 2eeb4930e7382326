"""The one job launcher: the row first, the work on a thread with a heartbeat, a final state whatever happens,
and adoption of a job whose process died."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from service.core.timestamps import utcnow
from service.db.session import make_engine, make_session_factory
from service.jobs.launcher import JobLauncher
from service.jobs.store import JobStore


@pytest.fixture
def jobs(settings):
    engine = make_engine(settings.resolved_database_url)
    yield JobStore(make_session_factory(engine))
    engine.dispose()


def wait_for(predicate, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_long_step_keeps_its_heartbeat_and_the_work_sets_the_final_state(jobs):
    launcher = JobLauncher(jobs, heartbeat_seconds=0.05)
    release = threading.Event()

    def work(job_id: str) -> None:
        jobs.update(job_id, state="running")
        release.wait(10)  # one long step: no progress updates of its own
        jobs.update(job_id, state="succeeded", finished_at=utcnow())

    job = launcher.launch("reindex", {"model": "m"}, work)
    wait_for(lambda: jobs.get(job.id).state == "running")
    first = jobs.get(job.id).heartbeat_at
    wait_for(lambda: jobs.get(job.id).heartbeat_at > first)  # beating while the step runs
    release.set()
    wait_for(lambda: jobs.get(job.id).state == "succeeded")


def test_work_that_raises_still_ends_its_job_as_failed(jobs):
    def work(job_id: str) -> None:
        raise RuntimeError("the disk went away")

    job = JobLauncher(jobs).launch("scan", {}, work)
    wait_for(lambda: jobs.get(job.id).state == "failed")
    assert "the disk went away" in jobs.get(job.id).error


def test_a_job_whose_process_died_is_adopted_and_continued(jobs):
    job = jobs.create("scan", {})
    jobs.update(job.id, owner=f"{socket.gethostname()}:999999999", state="running")
    continued = []

    def work(job_id: str) -> None:
        continued.append(job_id)
        jobs.update(job_id, state="succeeded", finished_at=utcnow())

    adopted = JobLauncher(jobs).adopt("scan", work)
    assert adopted is not None and adopted.id == job.id
    wait_for(lambda: jobs.get(job.id).state == "succeeded")
    assert continued == [job.id]
    assert JobLauncher(jobs).adopt("scan", work) is None  # nothing left to adopt
