"""Job records: one active reindex at a time, progress and cancellation through the database.

A job whose process died no longer blocks a new one: on the same host a dead owner pid is seen
at once, elsewhere after ``STALE_AFTER`` without a heartbeat. Its finished shards are reused by
the next run (see service/jobs/reindex.py).
"""

from __future__ import annotations

import os
import secrets
import socket
from datetime import timedelta
from typing import Any, Callable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from service.core.audit import audit_event
from service.core.auth import OPERATOR, Principal
from service.core.errors import Conflict, not_found
from service.core.timestamps import aware, iso_utc
from service.core.timestamps import utcnow as _now
from service.db.models import Job

ACTIVE_STATES = ("queued", "running")
STALE_AFTER = timedelta(seconds=60)


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_is_dead(owner: str | None) -> bool:
    host, _, pid = (owner or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine: only the heartbeat can tell
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class JobStore:
    def __init__(self, sessions: sessionmaker[Session]):
        self.sessions = sessions

    def create(
        self,
        kind: str,
        params: dict[str, Any],
        actor: Principal = OPERATOR,
        add_rows: Callable[[Session, Job], None] | None = None,
    ) -> Job:
        """A queued job, or 409 if another job of this kind is alive. ``add_rows`` adds the job's input (e.g. a
        scan's listings) in the same transaction: a job is never committed without the input it was accepted with."""
        with self.sessions() as session:
            self._retire_dead_or_refuse(session, kind)
            job = Job(
                id="job_" + secrets.token_hex(8),
                kind=kind,
                state="queued",
                params=params,
                heartbeat_at=_now(),
                owner=_owner(),
            )
            session.add(job)
            session.add(audit_event(actor, f"job.{kind}", None, job.id, **params))
            if add_rows is not None:
                add_rows(session, job)
            try:
                session.commit()
            except IntegrityError:  # another replica created one between our look and our insert
                session.rollback()
                raise Conflict(
                    "job_running",
                    f"Another {kind} job was started at the same moment; wait for it or cancel it.",
                ) from None
            return job

    def refuse_if_running(self, kind: str) -> None:
        """409 now if a job of ``kind`` is alive: for requests that would otherwise write input before creating it."""
        with self.sessions() as session:
            self._retire_dead_or_refuse(session, kind)
            session.commit()

    @staticmethod
    def _retire_dead_or_refuse(session: Session, kind: str) -> None:
        for job in session.scalars(select(Job).where(Job.kind == kind, Job.state.in_(ACTIVE_STATES))):
            beat = aware(job.heartbeat_at or job.created_at)
            if _now() - beat < STALE_AFTER and not _owner_is_dead(job.owner):
                raise Conflict(
                    "job_running", f"{kind} job {job.id} is {job.state}; wait for it or cancel it."
                )
            job.state, job.error, job.finished_at = (
                "failed",
                "abandoned: its process stopped reporting",
                _now(),
            )

    def adopt(self, kind: str) -> Job | None:
        """Take over the live job of ``kind`` whose process died (its work is resumable); None if there is none."""
        with self.sessions() as session:
            for job in session.scalars(select(Job).where(Job.kind == kind, Job.state.in_(ACTIVE_STATES))):
                beat = aware(job.heartbeat_at or job.created_at)
                if _now() - beat >= STALE_AFTER or _owner_is_dead(job.owner):
                    job.owner, job.heartbeat_at = _owner(), _now()
                    session.commit()
                    return job
        return None

    def update(self, job_id: str, **fields: Any) -> None:
        with self.sessions() as session:
            job = session.get(Job, job_id)
            for name, value in fields.items():
                setattr(job, name, value)
            job.heartbeat_at = _now()
            session.commit()

    def get(self, job_id: str) -> Job:
        with self.sessions() as session:
            job = session.get(Job, job_id)
        if job is None:
            raise not_found("job")
        return job

    def recent(self, kind: str | None, limit: int) -> list[Job]:
        with self.sessions() as session:
            query = select(Job).order_by(Job.created_at.desc(), Job.id).limit(limit)
            return list(session.scalars(query.where(Job.kind == kind) if kind else query))

    def cancel_requested(self, job_id: str) -> bool:
        with self.sessions() as session:
            return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))

    def request_cancel(self, job_id: str, actor: Principal = OPERATOR) -> Job:
        with self.sessions() as session:
            job = session.get(Job, job_id)
            if job is None:
                raise not_found("job")
            if job.state in ACTIVE_STATES:
                job.cancel_requested = True
                session.add(audit_event(actor, "job.cancel", None, job.id))
                session.commit()
            return job


def job_to_dict(job: Job) -> dict[str, Any]:
    remaining = max(job.total - job.done, 0)
    eta = remaining / job.images_per_second if job.images_per_second and job.state == "running" else None
    return {
        "id": job.id,
        "kind": job.kind,
        "state": job.state,
        "params": job.params,
        "done": job.done,
        "total": job.total,
        "embedded_this_run": job.embedded,
        "images_per_second": job.images_per_second,
        "eta_seconds": round(eta, 1) if eta is not None else None,
        "failures": job.failures,
        "result": job.result,
        "error": job.error,
        "cancel_requested": job.cancel_requested,
        "created_at": iso_utc(job.created_at),
        "started_at": iso_utc(job.started_at) if job.started_at else None,
        "finished_at": iso_utc(job.finished_at) if job.finished_at else None,
    }
