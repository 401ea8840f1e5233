"""Wave transitions per second through the real WaveService on SQLite and PostgreSQL, 1 and N threads,
beside raw SQL doing the least a transition must (UPDATE … WHERE version, INSERT an event) on the same
database in the same run.

    .venv/bin/python -m bench.db_transitions [--count 2000] [--threads 1,8] [--postgres-url URL]
                                             [--backends sqlite,postgresql]

migratebot's path is what a `/migrate pause` or `resume` does: `WaveService.fire` reads the wave by
name, authorizes the actor, and `MigrationRepository.transition` moves it in one transaction — the
optimistic version check, the state's timestamp, the audit event appended to the hash chain (the
chain's head row is locked, so every transition of every wave serializes on it). Each thread moves
its own wave executing ⇄ paused, so the figure is throughput, not conflicts; `--count` transitions in
all per configuration, after a short warm-up.

The reference, per backend and thread count: the same number of transactions each doing
`UPDATE bench_raw_wave SET state, version = version + 1 WHERE id AND version` and `INSERT INTO
bench_raw_event`, through the same SQLAlchemy engine (same pool, same SQLite BEGIN IMMEDIATE) with
no ORM, no read, no chain. There is no external reference for this figure: the ratio says what
migratebot's guarantees (a checked, audited, chained transition) cost over the bare writes.

SQLite: a file in a temporary directory (WAL, as migratebot opens it). PostgreSQL: a schema of its
own (`mbb_<hex>`, reached through search_path, as the test suite isolates itself), dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench.results import Figure, Recorder, compared
from bot.domain.policy import Actor, Role
from bot.domain.waves import Trigger, WaveState
from bot.services.waves import WaveService
from storage.db import Database, scratch_schema
from storage.repositories import Repositories
from storage.schema import upgrade

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CLUSTER = "bench-cluster"
SRE = Actor("U0SRE00001", frozenset({Role.SRE}))
LEAD = Actor("U0LEAD0001", frozenset({Role.TEAM_LEAD}))
JSON = dict[str, Any]


@contextmanager
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="migratebot-bench-db-") as tmp:
        yield f"sqlite:///{Path(tmp) / 'migratebot.db'}"


def _executing_waves(repos: Repositories, count: int) -> list[str]:
    """Register `count` waves and take each to executing (request, approve, start)."""
    names = [f"wave-{i:02d}" for i in range(1, count + 1)]
    repos.migrations.register_plan(CLUSTER, "0" * 64, list(enumerate(names, start=1)), actor="bench")
    for wave in repos.migrations.waves(CLUSTER):
        for trigger, actor in (
            (Trigger.REQUEST, SRE.id),
            (Trigger.APPROVE, LEAD.id),
            (Trigger.START, "migratebot"),
        ):
            wave = repos.migrations.transition(wave.id, trigger, actor=actor, expected_version=wave.version)
        assert wave.state is WaveState.EXECUTING
    return names


def _in_threads(threads: int, per_thread: int, work: Callable[[int, int], None]) -> float:
    """Run work(thread, i) for i < per_thread on `threads` threads started together; wall seconds."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads + 1)

    def run(t: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                work(t, i)
        except BaseException as error:  # reported below, with the thread's number
            errors.append(error)

    pool = [threading.Thread(target=run, args=(t,), name=f"bench-{t}") for t in range(threads)]
    for thread in pool:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} of {threads} threads failed: {errors[0]!r}") from errors[0]
    return elapsed


def measure_backend(url: str, thread_counts: list[int], count: int) -> JSON:
    """Transitions/s through WaveService and raw UPDATE+INSERT/s, for each thread count."""
    upgrade(url)
    out: JSON = {}
    with Database(url) as database:
        repos = Repositories.over(database)
        service = WaveService(repos.migrations, repos.audit)
        names = _executing_waves(repos, max(thread_counts))
        with database.engine.begin() as conn:
            conn.execute(
                text(
                    "CREATE TABLE bench_raw_wave (id INTEGER PRIMARY KEY, state VARCHAR(32), version INTEGER)"
                )
            )
            conn.execute(
                text(
                    "CREATE TABLE bench_raw_event (id INTEGER PRIMARY KEY "
                    + ("AUTOINCREMENT" if database.is_sqlite else "GENERATED ALWAYS AS IDENTITY")
                    + ", wave_id INTEGER, action VARCHAR(64), payload TEXT, at VARCHAR(40))"
                )
            )
            for i in range(len(names)):
                conn.execute(text("INSERT INTO bench_raw_wave VALUES (:id, 'executing', 1)"), {"id": i})
        versions = [repos.migrations.wave_by_name(CLUSTER, n).version for n in names]
        raw_versions = [1] * len(names)

        states = [WaveState.EXECUTING] * len(names)

        def fire(t: int, _: int) -> None:
            # The caller knows the state and version it decided on, as a Slack handler does.
            trigger = Trigger.PAUSE if states[t] is WaveState.EXECUTING else Trigger.RESUME
            moved = service.fire(CLUSTER, names[t], trigger, SRE, expected_version=versions[t])
            states[t], versions[t] = moved.state, moved.version

        def raw(t: int, _: int) -> None:
            with database.engine.begin() as conn:
                v = raw_versions[t]
                moved = conn.execute(
                    text(
                        "UPDATE bench_raw_wave SET state = :s, version = version + 1 "
                        "WHERE id = :id AND version = :v"
                    ),
                    {"s": "paused" if v % 2 else "executing", "id": t, "v": v},
                )
                if moved.rowcount != 1:
                    raise RuntimeError(f"raw wave {t} was not at version {v}")
                conn.execute(
                    text(
                        "INSERT INTO bench_raw_event (wave_id, action, payload, at) VALUES (:w, :a, :p, :at)"
                    ),
                    {"w": t, "a": "wave.pause", "p": '{"from": "executing"}', "at": time.time()},
                )
                raw_versions[t] = v + 1

        for threads in thread_counts:
            per_thread = max(1, count // threads)
            _in_threads(threads, max(1, per_thread // 10), fire)  # warm-up: pool, caches
            _in_threads(threads, max(1, per_thread // 10), raw)
            ours = _in_threads(threads, per_thread, fire)
            bare = _in_threads(threads, per_thread, raw)
            total = per_thread * threads
            out[str(threads)] = {
                "transitions": total,
                "migratebot_per_s": total / ours,
                "raw_per_s": total / bare,
                "migratebot_seconds": ours,
                "raw_seconds": bare,
            }
        verified = repos.audit.verify()
        out["audit_chain_ok"] = bool(verified.ok)
        out["dialect"] = database.dialect
    return out


def _threads(n: int) -> str:
    return f"{n} thread{'s' if n > 1 else ''}"


def figures(results: JSON, thread_counts: list[int], failures: dict[str, str]) -> list[Figure]:
    out: list[Figure] = []
    names = {"sqlite": "SQLite (file, WAL)", "postgresql": "PostgreSQL (127.0.0.1, psycopg 3)"}
    for backend, label in names.items():
        for threads in thread_counts:
            fid = f"db.{backend}.threads{threads}"
            title = f"wave transitions/s, {label}, {_threads(threads)}"
            if backend in failures:
                out.append(
                    Figure(fid, title, None, "transitions/s", notes=f"not measured: {failures[backend]}")
                )
                continue
            if backend not in results:
                continue
            r = results[backend][str(threads)]
            # Higher is better here: the ratio is migratebot / raw; no target is set for it.
            out.append(
                compared(
                    fid,
                    title,
                    r["migratebot_per_s"],
                    "transitions/s",
                    "raw SQL UPDATE+INSERT/s, same database",
                    r["raw_per_s"],
                    notes=f"{r['transitions']} transitions; audit chain verified: "
                    f"{results[backend]['audit_chain_ok']}",
                )
            )
    if "sqlite" in results and "postgresql" in results:
        for threads in thread_counts:
            pg = results["postgresql"][str(threads)]["migratebot_per_s"]
            lite = results["sqlite"][str(threads)]["migratebot_per_s"]
            out.append(
                compared(
                    f"db.postgresql_vs_sqlite.threads{threads}",
                    f"wave transitions/s, PostgreSQL beside SQLite, {_threads(threads)}",
                    pg,
                    "transitions/s",
                    "SQLite, same run",
                    lite,
                    notes="no external reference: the two backends side by side (ratio PostgreSQL / SQLite)",
                )
            )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="transitions per configuration")
    parser.add_argument("--threads", default="1,8", help="comma-separated thread counts")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("MIGRATEBOT_TEST_DATABASE_URL") or DEFAULT_POSTGRES,
        help="a PostgreSQL database the bench may create (and drop) a schema in",
    )
    args = parser.parse_args()
    recorder = Recorder("db")
    thread_counts = [int(t) for t in args.threads.split(",")]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    results: JSON = {}
    failures: dict[str, str] = {}
    for backend in backends:
        try:
            if backend == "sqlite":
                with sqlite_url() as url:
                    results[backend] = measure_backend(url, thread_counts, args.count)
            elif backend == "postgresql":
                with scratch_schema(args.postgres_url, "mbb") as url:
                    results[backend] = measure_backend(url, thread_counts, args.count)
            else:
                raise SystemExit(f"unknown backend {backend!r}: sqlite or postgresql")
        except (OSError, RuntimeError, ImportError) as error:
            failures[backend] = str(error).splitlines()[0]
        except Exception as error:  # a database that can't be reached raises the driver's own errors
            failures[backend] = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        for threads in thread_counts:
            r = results.get(backend, {}).get(str(threads))
            if r:
                print(
                    f"{backend:<10} {threads} thread(s): migratebot {r['migratebot_per_s']:7.0f}/s   "
                    f"raw UPDATE+INSERT {r['raw_per_s']:7.0f}/s   "
                    f"ratio {r['migratebot_per_s'] / r['raw_per_s']:.2f}"
                )
        if backend in failures:
            print(f"{backend}: FAILED — {failures[backend]}")
    recorder.emit(figures(results, thread_counts, failures), {"results": results, "failures": failures})
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
