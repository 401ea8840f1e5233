"""`make bench`: run the benches, each in its own process, and rewrite BENCHMARKS.md from their results.

    .venv/bin/python -m bench [--only NAME,NAME] [--list] [--render] [--output BENCHMARKS.md]
    make bench [BENCH_ONLY=db,makespan]

Each bench prints its own figures and writes a JSON result (bench/results.py) that this stores in
bench/results/<name>.json; the report (bench/report.py) is rendered from those files and the prose in
bench/notes/. Benches not selected keep their last stored result, marked in the report as not re-run.
A bench that fails is reported as failed (with the end of its output) and makes the exit code 1.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.report import BenchRun, BenchSpec, Report, Status, render
from bench.results import ENV_JSON, RESULTS_DIR, ROOT, machine, now_utc

BENCHES = (
    BenchSpec(
        "inventory",
        "Inventory of 5,000 nodes / 100,000 pods vs `kubectl get pods -A -o json`",
        "bench.inventory",
        duration="~2-4 min",
    ),
    BenchSpec(
        "sandbox_scale",
        "Sandbox `scale` scenario: start-up, RSS, a paginated list of 100,000 pods",
        "bench.sandbox_scale",
        ("--list",),
        duration="~2-4 min",
    ),
    BenchSpec(
        "reports_scale",
        "Readiness + security reports for one wave of `scale` vs `kubectl get pods -A -o json`",
        "bench.reports_scale",
        duration="~3-6 min",
    ),
    BenchSpec(
        "slack_ack",
        "Slack ack latency: bursts of 50 slash commands during a wave vs a bare ASGI endpoint",
        "bench.slack_ack",
        ("--rounds", "20", "--burst", "50", "--load", "engine"),
        duration="~2-3 min",
    ),
    BenchSpec(
        "engine_waves",
        "A 10-node / 300-pod wave: drain vs `kubectl drain`, makespan vs Karpenter's drift",
        "bench.engine_waves",
        duration="~10-20 min",
    ),
    BenchSpec(
        "makespan",
        "A demo wave's makespan vs the timing model's lower bound",
        "bench.makespan",
        duration="~2-4 min",
    ),
    BenchSpec(
        "db",
        "Wave transitions per second: SQLite and PostgreSQL, 1 and 8 threads",
        "bench.db_transitions",
        duration="~1 min",
    ),
)
ALIASES = {"db_transitions": "db", "transitions": "db", "engine": "engine_waves", "ack": "slack_ack"}
TAIL_LINES = 30


def select(only: str) -> list[BenchSpec]:
    if not only.strip():
        return list(BENCHES)
    names = {b.name for b in BENCHES}
    wanted = [ALIASES.get(n.strip(), n.strip()) for n in only.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in names]
    if unknown:
        raise SystemExit(
            f"bench: no bench named {', '.join(unknown)} — choose from {', '.join(sorted(names))}"
        )
    return [b for b in BENCHES if b.name in wanted]


def run_one(spec: BenchSpec, results_dir: Path) -> BenchRun:
    """Run the bench in its own process, echoing its output; store its JSON if it wrote one."""
    fresh = results_dir / f"{spec.name}.json.new"
    fresh.unlink(missing_ok=True)
    print(f"\n=== {spec.title}\n$ {spec.command}", flush=True)
    started = time.monotonic()
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    env = {**os.environ, ENV_JSON: str(fresh), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", spec.module, *spec.args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    assert process.stdout is not None
    for line in process.stdout:
        sys.stdout.write(line)
        tail.append(line.rstrip("\n"))
    code = process.wait()
    seconds = time.monotonic() - started
    data = None
    if fresh.exists():
        data = json.loads(fresh.read_text())
        shutil.move(fresh, results_dir / f"{spec.name}.json")
    if code == 0 and data is not None:
        return BenchRun(spec, Status.MEASURED, data, seconds=seconds)
    last = [t for t in tail if t.strip() and not t.startswith("BENCH-RESULT")]
    why = f"exit code {code}" if code != 0 else "it wrote no result"
    error = f"{why}; last output: {last[-1][:300]}" if last else why
    if data is None:
        data = stored(spec, results_dir)
    return BenchRun(spec, Status.FAILED, data, error=error, seconds=seconds)


def stored(spec: BenchSpec, results_dir: Path) -> dict[str, object] | None:
    path = results_dir / f"{spec.name}.json"
    return dict(json.loads(path.read_text())) if path.exists() else None


def not_run(spec: BenchSpec, results_dir: Path, notes_dir: Path) -> BenchRun:
    data = stored(spec, results_dir)
    if data is not None:
        return BenchRun(spec, Status.EARLIER, data)
    if (notes_dir / f"{spec.name}.previous.md").exists():
        return BenchRun(spec, Status.NEVER)
    return BenchRun(spec, Status.MISSING)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--only",
        default=os.environ.get("BENCH_ONLY", ""),
        help="comma-separated benches to run (default: all; `make bench BENCH_ONLY=…` sets it)",
    )
    parser.add_argument("--list", action="store_true", help="name the benches and exit")
    parser.add_argument(
        "--render",
        action="store_true",
        help="re-render the last run's report from stored results (runs nothing)",
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--notes-dir", type=Path, default=None)
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    if args.list:
        for b in BENCHES:
            print(f"{b.name:<14} {b.duration:<11} {b.command}\n{'':<26} {b.title}")
        return 0
    from bench.report import NOTES_DIR

    notes_dir = args.notes_dir or NOTES_DIR
    args.results_dir.mkdir(parents=True, exist_ok=True)
    manifest = args.results_dir / "last_run.json"
    if args.render:
        # Re-render the last run's report (after editing bench/notes/, say): same machine, same
        # command, same statuses; benches that run did not cover stay marked as not re-run.
        last = json.loads(manifest.read_text()) if manifest.exists() else {}
        at_start = last.get("machine") or machine()
        command = last.get("command") or ".venv/bin/python -m bench --render"
        runs = []
        for spec in BENCHES:
            how = (last.get("runs") or {}).get(spec.name)
            if how and how["status"] in (Status.MEASURED.name, Status.FAILED.name):
                runs.append(
                    BenchRun(
                        spec,
                        Status[how["status"]],
                        stored(spec, args.results_dir),
                        error=how.get("error", ""),
                        seconds=how.get("seconds"),
                    )
                )
            else:
                runs.append(not_run(spec, args.results_dir, notes_dir))
    else:
        at_start = machine()
        chosen = select(args.only)
        command = ".venv/bin/python -m bench"
        if args.only:
            command += f" --only {','.join(s.name for s in chosen)}"
        runs = [
            run_one(spec, args.results_dir) if spec in chosen else not_run(spec, args.results_dir, notes_dir)
            for spec in BENCHES
        ]
        manifest.write_text(
            json.dumps(
                {
                    "machine": at_start,
                    "command": command,
                    "runs": {
                        r.spec.name: {"status": r.status.name, "error": r.error, "seconds": r.seconds}
                        for r in runs
                    },
                },
                indent=2,
            )
            + "\n"
        )
    report = Report(
        at_start, runs, command=command, notes_dir=notes_dir, rerendered_at=now_utc() if args.render else None
    )
    text = render(report, BENCHES)
    args.output.write_text(text)
    failed = [r for r in runs if r.status is Status.FAILED]
    print(f"\nwrote {args.output}")
    for r in runs:
        print(f"  {r.spec.name:<14} {r.status.value}{': ' + r.error if r.error else ''}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
