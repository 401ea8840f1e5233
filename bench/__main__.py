"""`make bench`: run every benchmark that has landed and print its figures beside its reference.

Figures are measured in this run, on this machine; nothing is quoted from elsewhere. Benchmarks
whose capability has not landed are listed with the issue that brings them, and claim no figure.
BENCHMARKS.md records the figures of the last run made for it, with the command that produced them.
"""

from __future__ import annotations

import subprocess
import sys

LANDED = [
    (
        "inventory of 5,000 nodes / 100,000 pods vs `kubectl get pods -A -o json` (time, peak RSS)",
        ["-m", "bench.inventory"],
    ),
    (
        "sandbox `scale` scenario: start-up, RSS, paginated list of 100,000 pods via the official client",
        ["-m", "bench.sandbox_scale", "--list"],
    ),
    (
        "Slack ack latency p50/p99, bursts of 50 concurrent slash commands vs a bare ASGI endpoint",
        ["-m", "bench.slack_ack"],
    ),
    (
        "readiness + security reports for one wave of `scale` vs `kubectl get pods -A -o json` (time, RSS)",
        ["-m", "bench.reports_scale"],
    ),
]

LANDED.append(
    (
        "10-node / 300-pod wave: drain vs sequential `kubectl drain`, makespan vs Karpenter's drift",
        ["-m", "bench.engine_waves"],
    )
)

PLANNED = [
    (
        "demo wave makespan in emulated time",
        "the timing model's lower bound (target <= 1.15x)",
        "Migration engine",
    ),
    ("wave transitions per second", "SQLite and PostgreSQL", "Benchmarks and reliability"),
]


def main() -> int:
    failed = 0
    for title, args in LANDED:
        print(f"\n=== {title}\n$ python {' '.join(args)}", flush=True)
        failed += subprocess.run([sys.executable, *args]).returncode != 0
    print("\nNot measured yet (no figure claimed), with the issue that brings each:")
    for figure, reference, issue in PLANNED:
        print(f"  - {figure}\n      vs {reference}  [{issue}]")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
