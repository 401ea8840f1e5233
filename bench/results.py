"""Machine-readable benchmark results: each bench writes one JSON file, `python -m bench` renders them.

A bench ends with `emit(name, figures, details)`. The file goes where MIGRATEBOT_BENCH_JSON says
(`python -m bench` sets it per bench) or, run on its own, to .migratebot/bench/<name>.json; the bench
also prints `BENCH-RESULT <path>` as its last line. One Figure is one row of BENCHMARKS.md's summary:
the value, the reference measured in the same run, their ratio, the target and whether it was met.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import platform
import shlex
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "bench" / "results"  # what BENCHMARKS.md is rendered from (kept with the repo)
SCRATCH_DIR = ROOT / ".migratebot" / "bench"  # a bench run on its own writes here
ENV_JSON = "MIGRATEBOT_BENCH_JSON"
MARKER = "BENCH-RESULT"
JSON = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Figure:
    """One measured figure beside its reference. `ratio` is value / reference_value; `target` says in
    words what the ratio (or value) must be, `met` whether this run met it (None: no target)."""

    figure: str  # a stable id: "slack_ack.p99"
    title: str
    value: float | None
    unit: str
    reference_name: str | None = None
    reference_value: float | None = None
    ratio: float | None = None
    target: str | None = None
    met: bool | None = None
    command: str = ""
    notes: str = ""

    def to_json(self) -> JSON:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: JSON) -> Figure:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def compared(
    figure: str,
    title: str,
    value: float,
    unit: str,
    reference_name: str | None = None,
    reference_value: float | None = None,
    *,
    at_most: float | None = None,
    limit: float | None = None,
    notes: str = "",
    command: str | None = None,
) -> Figure:
    """A figure with its reference and ratio. Targets: `at_most` bounds the ratio (lower is better),
    `limit` bounds the value itself (in `unit`); met when every target given is."""
    ratio = value / reference_value if reference_value else None
    targets: list[str] = []
    checks: list[bool] = []
    if at_most is not None:
        targets.append(f"ratio ≤ {at_most:g}")
        if ratio is not None:
            checks.append(ratio <= at_most)
    if limit is not None:
        targets.append(f"≤ {limit:,g} {unit}")
        checks.append(value <= limit)
    return Figure(
        figure=figure,
        title=title,
        value=value,
        unit=unit,
        reference_name=reference_name,
        reference_value=reference_value,
        ratio=ratio,
        target=", ".join(targets) or None,
        met=all(checks) if checks else None,
        command=command if command is not None else this_command(),
        notes=notes,
    )


def this_command() -> str:
    """How this process was started, as someone would type it from the repository's root."""
    module = sys.modules["__main__"].__spec__
    name = module.name if module is not None else Path(sys.argv[0]).name
    return shlex.join([".venv/bin/python", "-m", name, *sys.argv[1:]])


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def machine() -> JSON:
    """What the figures were measured on: cores, memory, CPU model, Python, host, time and load now."""
    cpu = ""
    memory_gib = 0.0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = int(line.split()[1]) / 1024 / 1024
                break
    except OSError:
        pass
    return {
        "host": socket.gethostname(),
        "cores": os.cpu_count() or 0,
        "memory_gib": round(memory_gib, 1),
        "cpu": cpu or platform.processor() or "unknown",
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date_utc": now_utc(),
        "load_average": load_average(),
    }


def code() -> JSON:
    """Which code was measured: the commit, and how many files of the application differ from it
    (on a shared working tree other people's unfinished changes are part of what runs)."""

    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    changed = git("status", "--porcelain", "--", "bot", "handlers", "storage", "sandbox", "bench")
    return {
        "commit": git("rev-parse", "--short", "HEAD") or "unknown",
        "uncommitted_files": len([line for line in changed.splitlines() if line.strip()]),
    }


def now_utc() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


class Recorder:
    """Created when a bench starts (it notes the time and the load), `emit()` at its end."""

    def __init__(self, bench: str) -> None:
        self.bench = bench
        self.started_at = now_utc()
        self.load_at_start = load_average()
        self.command = this_command()
        self.code = code()

    def emit(self, figures: list[Figure], details: JSON | None = None) -> Path:
        data: JSON = {
            "bench": self.bench,
            "command": self.command,
            "started_at": self.started_at,
            "finished_at": now_utc(),
            "load_average_start": self.load_at_start,
            "load_average_end": load_average(),
            "machine": machine(),
            "code": self.code,
            "figures": [f.to_json() for f in figures],
            "details": details or {},
        }
        target = Path(os.environ.get(ENV_JSON) or SCRATCH_DIR / f"{self.bench}.json")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        partial.write_text(json.dumps(data, indent=2) + "\n")
        partial.replace(target)
        print(f"{MARKER} {target}", flush=True)
        return target
