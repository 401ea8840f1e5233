"""`make bench` writes BENCHMARKS.md from the benches' JSON results: every figure with its reference,
ratio and target, failures said out loud, figures not re-run marked with their own date."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.__main__ import run_one
from bench.db_transitions import measure_backend
from bench.report import BenchRun, BenchSpec, Report, Status, render
from bench.results import Figure, compared
from bench.timing_bound import Elsewhere, EvictedPod, lower_bound

MACHINE = {
    "host": "bench-host",
    "cores": 2,
    "memory_gib": 23.4,
    "cpu": "Fake CPU @ 2.0GHz",
    "python": "3.12.0",
    "platform": "Linux",
    "date_utc": "2026-11-25 09:00 UTC",
    "load_average": [1.5, 1.2, 0.9],
}
ACK = BenchSpec("slack_ack", "Slack ack latency", "bench.slack_ack")
DB = BenchSpec("db", "Wave transitions per second", "bench.db_transitions")
WAVES = BenchSpec("engine_waves", "Drain vs kubectl", "bench.engine_waves")
OLD = BenchSpec("inventory", "Inventory vs kubectl", "bench.inventory")
NONE = BenchSpec("makespan", "Makespan vs bound", "bench.makespan")


def _result(bench: str, figures: list[Figure], when: str = "2026-11-25 08:30 UTC") -> dict[str, object]:
    return {
        "bench": bench,
        "command": f".venv/bin/python -m bench.{bench}",
        "started_at": when,
        "finished_at": when,
        "load_average_start": [2.0, 1.0, 0.5],
        "load_average_end": [2.5, 1.1, 0.6],
        "machine": MACHINE,
        "figures": [f.to_json() for f in figures],
    }


def test_the_report_gives_each_figure_its_reference_ratio_target_and_says_what_failed(tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "slack_ack.md").write_text("The GIL is what limits it.")
    previous = "| inventory | 9.17 s | (2026-11-25, `python -m bench.inventory`) |"
    (notes / "inventory.previous.md").write_text(previous)
    p99 = compared("slack_ack.p99", "ack p99", 145.4, "ms", "bare ASGI p99", 75.4, at_most=1.2, command="x")
    lite = compared("db.sqlite.threads1", "transitions/s, SQLite", 110.0, "transitions/s", "raw SQL", 267.0)
    runs = [
        BenchRun(ACK, Status.MEASURED, _result("slack_ack", [p99]), seconds=120.0),
        BenchRun(DB, Status.EARLIER, _result("db", [lite], when="2026-11-24 07:00 UTC")),
        BenchRun(WAVES, Status.FAILED, None, error="exit code 1; last output: timed out"),
        BenchRun(OLD, Status.NEVER),
        BenchRun(NONE, Status.MISSING),
    ]
    text = render(Report(MACHINE, runs, notes_dir=notes), [ACK, DB, WAVES, OLD, NONE])

    assert "2 cores, 23.4 GiB RAM, Fake CPU @ 2.0GHz" in text and "1.50, 1.20, 0.90" in text
    assert "| ack p99 | 145.4 ms | 75.4 ms (bare ASGI p99) | 1.93× | ratio ≤ 1.2 | **missed** |" in text
    assert "The GIL is what limits it." in text
    assert "not re-run; from 2026-11-24 07:00 UTC" in text and "110 transitions/s" in text
    assert "**FAILED in this run** (`.venv/bin/python -m bench.engine_waves`): exit code 1" in text
    assert "No figure is claimed for it." in text
    assert "carried over verbatim" in text and "| inventory | 9.17 s |" in text
    assert "No figures: run `.venv/bin/python -m bench.makespan`" in text


def test_a_bench_that_fails_is_reported_failed_not_omitted(tmp_path: Path) -> None:
    run = run_one(BenchSpec("broken", "A bench that does not exist", "bench.no_such_bench"), tmp_path)
    assert run.status is Status.FAILED
    assert "exit code 1" in run.error and "No module named bench.no_such_bench" in run.error


def test_wave_transitions_are_counted_through_the_wave_service_on_sqlite(tmp_path: Path) -> None:
    result = measure_backend(f"sqlite:///{tmp_path / 'db.sqlite'}", [1, 2], 6)
    assert result["audit_chain_ok"] is True
    for threads in ("1", "2"):
        assert result[threads]["transitions"] == 6
        assert result[threads]["migratebot_per_s"] > 0 and result[threads]["raw_per_s"] > 0


@dataclass
class _Model:
    karpenter_batch: float = 1.0
    image_pull_bottlerocket: float = 4.0
    pod_start: float = 2.0
    termination_grace_cap: float = 5.0

    def karpenter_node_ready(self, bottlerocket: bool) -> float:
        return 55.0

    def image_pull(self, bottlerocket: bool) -> float:
        return 4.0 if bottlerocket else 40.0


def test_the_lower_bound_is_the_longest_pdb_chain_behind_one_karpenter_launch() -> None:
    pods = [EvictedPod(f"shop/web-{i}", ("shop/web",), Elsewhere.NOWHERE, 30.0) for i in range(4)]
    pods += [EvictedPod(f"shop/api-{i}", ("shop/api",), Elsewhere.AL2, 30.0) for i in range(3)]
    pods.append(EvictedPod("shop/loose", (), Elsewhere.CACHED, 30.0))
    bound = lower_bound(_Model(), pods, {"shop/web": 1, "shop/api": 1}, nodes=10, max_parallel_nodes=4)
    # 1 + 55 + 4 + 2 for the first round, two more rounds of pod start, the last one's 5 s termination.
    assert bound.seconds == 62 + 2 * 2 + 5
    assert bound.longest is not None and bound.longest.name == "shop/web" and bound.longest.rounds == 4
    chains = {c.name: c for c in bound.chains}
    # On AL2 outside the wave: a 40 s pull and a start, then two rounds that may find the image there.
    assert chains["shop/api"].first_round == 42 and chains["shop/api"].seconds == 42 + 2 + 5
    assert chains["pod shop/loose (no PDB)"].seconds == 5  # cached image: its termination is the longer
    assert bound.parallel_floor == 3 * 5
