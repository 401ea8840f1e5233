"""The canary's clock: APScheduler 3.x BackgroundScheduler with its jobs in migratebot's database.

    scheduler = CanaryScheduler(database_url).start()     # every replica, paused
    elector = LeaderElector(..., on_started_leading=scheduler.lead, on_stopped_leading=scheduler.follow)
    scheduler.schedule_bake("prod", wave_id, interval=timedelta(minutes=1), until=...)

Jobs live in the table `canary_jobs` (SQLAlchemyJobStore; Alembic creates it) as
'bot.canary.runner:run_checks' references with plain arguments (cluster, wave id) — no closures, so
they survive a restart and kill -9. Every replica starts the scheduler *paused*: adding a job then
writes it to the database at once (a stopped APScheduler would only keep it in memory), and only the
Lease's leader resumes it, so a job runs in one process (DESIGN.md: two schedulers on one store run
every job twice).

Misfires (chosen so a restart neither drops checks nor fires a backlog):
- misfire_grace_time=None: a tick missed while no leader ran (a restart, a handover) still runs,
  however late — APScheduler's 1 s default would silently drop it;
- coalesce=True: all the ticks missed in that time run as one, not as a burst of stale checks;
- max_instances=1: a slow run is never overlapped by the next tick of the same wave.
And the runner claims each tick in `canary_runs` before running it: a tick APScheduler fires again
after a kill -9 between running it and storing its next run time is skipped, not run twice.

A job another replica added is seen by the leader at its next wake-up: a heartbeat job in a memory
store (`poll_every`) bounds that wait. Reminders run on the same clock, in memory, leader only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from typing import Any

from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

log = logging.getLogger(__name__)

RUN_CHECKS = "bot.canary.runner:run_checks"
SEND_REMINDERS = "bot.canary.runner:send_reminders"
HEARTBEAT = "bot.canary.runner:heartbeat"
JOBS_TABLE = "canary_jobs"
JOB_DEFAULTS = {"coalesce": True, "misfire_grace_time": None, "max_instances": 1}


def job_id(cluster: str, wave_id: int) -> str:
    return f"canary:{cluster}:{wave_id}"


class CanaryScheduler:
    def __init__(
        self,
        database_url: str,
        *,
        tablename: str = JOBS_TABLE,
        poll_every: dt.timedelta = dt.timedelta(seconds=2),
        remind_every: dt.timedelta = dt.timedelta(seconds=15),
        engine_options: dict[str, Any] | None = None,
    ) -> None:
        self._scheduler = BackgroundScheduler(
            jobstores={
                "default": SQLAlchemyJobStore(
                    url=database_url, tablename=tablename, engine_options=engine_options or {}
                ),
                "local": MemoryJobStore(),
            },
            job_defaults=JOB_DEFAULTS,
            timezone=dt.UTC,
        )
        self._poll_every = poll_every
        self._remind_every = remind_every

    # ---- lifecycle ----------------------------------------------------------------------------

    def start(self) -> CanaryScheduler:
        """Start paused: jobs can be added (they go to the database) but none runs here until `lead`."""
        self._scheduler.start(paused=True)
        for func, every in ((HEARTBEAT, self._poll_every), (SEND_REMINDERS, self._remind_every)):
            self._scheduler.add_job(
                func, IntervalTrigger(seconds=every.total_seconds(), timezone=dt.UTC),
                id=func, jobstore="local", replace_existing=True,
            )  # fmt: skip
        return self

    def lead(self) -> None:
        """This replica leads: run the jobs (missed ticks run once, at once)."""
        log.info("canary scheduler running")
        self._scheduler.resume()

    def follow(self) -> None:
        """Another replica leads (or none): run nothing; runs in flight finish."""
        log.info("canary scheduler paused")
        self._scheduler.pause()

    def shutdown(self, *, wait: bool = True) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=wait)

    @property
    def running(self) -> bool:
        """Jobs run here now (started and not paused)."""
        from apscheduler.schedulers.base import STATE_RUNNING

        return bool(self._scheduler.state == STATE_RUNNING)

    # ---- bakes --------------------------------------------------------------------------------

    def schedule_bake(
        self,
        cluster: str,
        wave_id: int,
        interval: dt.timedelta,
        until: dt.datetime | None,
        *,
        start: dt.datetime | None = None,
    ) -> None:
        """Run the wave's checks every `interval` from `start` (now): the first run is one interval after
        it. The runs go on until `unschedule`: with `until`, the runner's first run at or after `until`
        ends the bake and unschedules the job; without, a failed canary is watched for recovery.
        Scheduling a wave again replaces its job.

        No end_date: APScheduler removes a job once its next fire time passes the end date, and a tick
        skipped because the previous run was still going (max_instances=1: a slow run under API errors
        and retries) would then have been the last — the bake would never end and the wave would stay
        `baking` (found by `make soak`)."""
        begin = start or dt.datetime.now(dt.UTC)
        self._scheduler.add_job(
            RUN_CHECKS,
            IntervalTrigger(seconds=interval.total_seconds(), start_date=begin, timezone=dt.UTC),
            args=[cluster, wave_id],
            id=job_id(cluster, wave_id),
            name=f"canary checks of wave id {wave_id} on {cluster}",
            replace_existing=True,
        )

    def unschedule(self, cluster: str, wave_id: int) -> None:
        from apscheduler.jobstores.base import JobLookupError

        with contextlib.suppress(JobLookupError):
            self._scheduler.remove_job(job_id(cluster, wave_id), jobstore="default")

    def next_run(self, cluster: str, wave_id: int) -> dt.datetime | None:
        job = self._scheduler.get_job(job_id(cluster, wave_id), jobstore="default")
        return job.next_run_time if job is not None else None

    def job_ids(self) -> list[str]:
        return [job.id for job in self._scheduler.get_jobs(jobstore="default")]
