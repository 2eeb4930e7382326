"""One way to run background work as a job: reindex, scans, look-alike fits, index compaction.

The job row is created first (or adopted, when the process that ran it died), then the work runs on a daemon
thread while a heartbeat keeps the row fresh — a long step (a model load, a big shard) must not make another
replica think the job is abandoned — and whatever happens, the row ends in a final state: the work's own
(succeeded, cancelled, failed with its reason) or, if the work raised past its own handling, ``failed``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from service.core.auth import OPERATOR, Principal
from service.core.timestamps import utcnow
from service.db.models import Job
from service.jobs.store import ACTIVE_STATES, STALE_AFTER, JobStore

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = STALE_AFTER.total_seconds() / 4


class JobLauncher:
    def __init__(self, jobs: JobStore, heartbeat_seconds: float = HEARTBEAT_SECONDS):
        self.jobs = jobs
        self.heartbeat_seconds = heartbeat_seconds

    def launch(
        self,
        kind: str,
        params: dict[str, Any],
        work: Callable[[str], None],
        actor: Principal = OPERATOR,
        add_rows: Callable | None = None,
    ) -> Job:
        """Create the job (409 while another of its kind is alive) and start ``work(job_id)`` on a thread."""
        job = self.jobs.create(kind, params, actor, add_rows=add_rows)
        self.start(job, work)
        return job

    def adopt(self, kind: str, work: Callable[[str], None]) -> Job | None:
        """Continue the live job of ``kind`` whose process died, if there is one."""
        job = self.jobs.adopt(kind)
        if job is not None:
            log.info(
                "Adopting %s job %s (%s of %s done) after its process stopped",
                kind,
                job.id,
                job.done,
                job.total,
            )
            self.start(job, work)
        return job

    def start(self, job: Job, work: Callable[[str], None]) -> threading.Thread:
        thread = threading.Thread(
            target=self.run, args=(job.id, work), name=f"{job.kind}-{job.id}", daemon=True
        )
        thread.start()
        return thread

    def run(self, job_id: str, work: Callable[[str], None]) -> None:
        """``work`` to its end with a heartbeat beside it; never raises."""
        stopped = threading.Event()
        beating = threading.Thread(
            target=self._beat, args=(job_id, stopped), name=f"heartbeat-{job_id}", daemon=True
        )
        beating.start()
        try:
            work(job_id)
        except Exception as exc:  # the work's own handling missed it: the row still ends in a state
            log.exception("Job %s failed", job_id)
            self.jobs.update(
                job_id, state="failed", error=f"{type(exc).__name__}: {exc}", finished_at=utcnow()
            )
        finally:
            stopped.set()
            beating.join(timeout=5)

    def _beat(self, job_id: str, stopped: threading.Event) -> None:
        while not stopped.wait(self.heartbeat_seconds):
            try:
                if self.jobs.get(job_id).state not in ACTIVE_STATES:
                    return
                self.jobs.update(job_id)  # touches heartbeat_at
            except Exception:  # a database hiccup: the next beat tries again
                log.warning("Heartbeat of job %s failed", job_id, exc_info=True)
