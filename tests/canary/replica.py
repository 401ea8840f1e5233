"""One migratebot canary replica, as a process the tests can kill -9: the composition a bot replica
runs for the canary (database, KubeAdapter, Lease election, APScheduler on the database, the runner
installed in bot.canary.runner's registry). Prints "ready" once started, then runs until killed."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import signal
import sys
import threading
from pathlib import Path

from bot.adapters.kube import KubeAdapter
from bot.adapters.retry import RetryPolicy
from bot.canary.alerts import AlertDesk
from bot.canary.leader import LeaderElector
from bot.canary.runner import CanaryRunner, install
from bot.canary.scheduler import CanaryScheduler
from bot.plan import load_plan
from bot.services.waves import WaveService
from storage.db import Database
from storage.repositories import Repositories


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--plan", required=True, type=Path)
    parser.add_argument("--identity", required=True)
    parser.add_argument("--lease-duration", type=float, default=3.0)
    parser.add_argument("--no-lease", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    database = Database(args.db)
    repositories = Repositories.over(database)
    waves = WaveService(repositories.migrations, repositories.audit)
    plan = load_plan(args.plan)
    kube = KubeAdapter.from_kubeconfig(args.kubeconfig, None)
    scheduler = CanaryScheduler(args.db, poll_every=dt.timedelta(seconds=0.1))
    runner = CanaryRunner(
        repositories,
        waves,
        lambda: plan,
        lambda _cluster: kube,
        AlertDesk(repositories, waves),
        scheduler,
        identity=args.identity,
    )
    install(runner)
    scheduler.start()
    if args.no_lease:
        scheduler.lead()
    else:
        duration = args.lease_duration
        lease_kube = kube.with_retry(RetryPolicy(max_attempts=2, max_elapsed=duration / 3))
        LeaderElector(
            lease_kube,
            namespace="migratebot",
            name="migratebot",
            identity=args.identity,
            lease_duration=duration,
            renew_deadline=duration * 2 / 3,
            retry_period=duration / 6,
            on_started_leading=scheduler.lead,
            on_stopped_leading=scheduler.follow,
        ).start()
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    scheduler.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
