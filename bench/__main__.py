"""`make bench`: nothing is measured yet, and no figure is claimed until it is."""

from __future__ import annotations

PLANNED = [
    (
        "Slack ack latency p50/p99, 50 concurrent slash commands during a wave",
        "a bare ASGI endpoint in the same run; Slack's 3,000 ms",
        "Slack surface",
    ),
    (
        "wave drain makespan, 10 nodes / 300 pods",
        "sequential `kubectl drain` (target <= 0.35)",
        "Migration engine",
    ),
    ("wave makespan", "Karpenter's one-at-a-time drift in the sandbox (target <= 0.5)", "Migration engine"),
    (
        "readiness + security report on the `scale` scenario",
        "`kubectl get pods -A -o json` (time, peak RSS)",
        "Readiness and security summaries",
    ),
    (
        "demo wave makespan in emulated time",
        "the timing model's lower bound (target <= 1.15x)",
        "Migration engine",
    ),
    ("wave transitions per second", "SQLite and PostgreSQL", "Benchmarks and reliability"),
    ("100,000-pod paginated list through the official client, sandbox RSS < 2 GB", "kubectl", "Sandbox EKS"),
]


def main() -> int:
    print("migratebot benchmarks: none has landed yet, so no figure is claimed.")
    print("What `make bench` will measure, each beside its reference, and the issue that brings it:")
    for figure, reference, issue in PLANNED:
        print(f"  - {figure}\n      vs {reference}  [{issue}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
