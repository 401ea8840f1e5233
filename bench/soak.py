"""`make soak`: the chaos suite — whole 3-wave migrations while the bot is killed, its database cut,
the Kubernetes API and Slack fail, and two replicas share the work.

    .venv/bin/python -m bench.soak                       # the default runs (bench/chaos/scenarios.py)
    .venv/bin/python -m bench.soak --only kill9 --seed 7 # one scenario, one seed
    .venv/bin/python -m bench.soak --list

Each run starts the sandbox's demo scenario in this process and `migratebot serve` as real
subprocesses configured by environment, plays the people through Slack, and checks the ground truth
afterwards (bench/chaos/checks.py). Prints a line per scenario — seed, kills, restarts, duration,
outcome, PDB violations, duplicates, audit verify — and exits 1 when anything was lost, duplicated,
violated or left unfinished. Each run's logs stay in .migratebot/soak/<scenario>-<seed>/.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench.chaos.scenarios import DEFAULT_RUNS, SCENARIOS, Result, run

WORKDIR = Path(".migratebot") / "soak"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(SCENARIOS), help="run this scenario only")
    parser.add_argument(
        "--seed", type=int, action="append", help="seed (repeatable); default: the fixed list"
    )
    parser.add_argument("--list", action="store_true", help="list the scenarios and the default runs")
    parser.add_argument("--quiet", action="store_true", help="only the summary, not the story as it happens")
    args = parser.parse_args(argv)
    if args.list:
        for scenario in SCENARIOS.values():
            print(f"{scenario.name:13} {scenario.description}")
        print("default: " + ", ".join(f"{name} (seed {seed})" for name, seed in DEFAULT_RUNS))
        return 0
    if args.only:
        runs = [(args.only, seed) for seed in (args.seed or [DEFAULT_RUNS[0][1]])]
    else:
        runs = [(name, seed) for name, default in DEFAULT_RUNS for seed in (args.seed or [default])]

    def say(line: str) -> None:
        if not args.quiet:
            print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)

    results: list[Result] = []
    started = time.monotonic()
    for name, seed in runs:
        scenario = SCENARIOS[name]
        say(f"==== {name} (seed {seed}): {scenario.description}")
        result = run(scenario, seed, (WORKDIR / f"{name}-{seed}").resolve(), say)
        results.append(result)
        say(f"==== {name} (seed {seed}): {'ok' if result.ok else 'FAILED'} in {result.duration:.0f} s")
    print(summary(results, time.monotonic() - started))
    return 0 if all(r.ok for r in results) else 1


def summary(results: list[Result], elapsed: float) -> str:
    header = (
        f"{'scenario':12} {'seed':>9} {'kills':>5} {'restarts':>8} {'duration':>8}  {'outcome':16} "
        f"{'PDB viol.':>9} {'dupl.':>5} {'lost':>4}  audit verify"
    )
    lines = ["", "make soak — summary", header, "-" * len(header)]
    for r in results:
        f = r.findings
        outcome = f.outcome if r.failure is None else "FAILED"
        pdb = "?" if f.pdb_violations is None else str(f.pdb_violations)
        lines.append(
            f"{r.scenario:12} {r.seed:>9} {r.kills:>5} {r.restarts:>8} {r.duration:>7.0f}s  "
            f"{outcome[:16]:16} {pdb:>9} {len(f.duplicates):>5} {len(f.lost):>4}  "
            f"{'ok' if f.audit_ok else 'FAILED'}: {f.audit}"
        )
    for r in results:
        f = r.findings
        lines.append("")
        lines.append(f"{r.scenario} (seed {r.seed}): {'ok' if r.ok else 'FAILED'} — logs in {r.workdir}")
        lines.append(
            f"  people: {r.actions} action(s) sent, {r.retries} re-sent after checking they had not happened"
        )
        lines += [f"  chaos: {line}" for line in r.chaos]
        if f.exclusivity != "n/a":
            lines.append(
                f"  one executor at a time: {'ok' if f.exclusive_ok else 'VIOLATED'} — {f.exclusivity}"
            )
        lines += [f"  note: {note}" for note in f.notes]
        if not f.outcome.startswith("completed"):
            lines.append(f"  outcome: {f.outcome}")
        if r.failure:
            lines.append(f"  story failed: {r.failure}")
        lines += [f"  duplicate: {d}" for d in f.duplicates]
        lines += [f"  lost: {item}" for item in f.lost]
    ok = all(r.ok for r in results)
    lines.append("")
    lines.append(
        f"make soak: {sum(r.ok for r in results)}/{len(results)} run(s) passed in {elapsed / 60:.1f} min"
        + ("" if ok else " — something was lost, duplicated, violated or left unfinished (see above)")
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
