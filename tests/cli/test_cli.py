"""The `migratebot` command as an operator runs it: the installed console script, in a fresh data dir."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "plan.yaml"
Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def migratebot(tmp_path: Path) -> Run:
    """Run the installed `migratebot` with its data dir in tmp_path and no database URL inherited."""
    executable = shutil.which("migratebot", path=str(Path(os.sys.executable).parent))
    assert executable, "the migratebot console script is not installed in this venv: run `make test`"
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("MIGRATEBOT_")}
    base_env["MIGRATEBOT_DATA_DIR"] = str(tmp_path / "data")

    def run(*args: str, env: str | None = None) -> subprocess.CompletedProcess[str]:
        """`env`: one extra NAME=value for this run only."""
        extra = dict([env.split("=", 1)]) if env else {}
        return subprocess.run(
            [executable, *args],
            cwd=tmp_path,
            env={**base_env, **extra},
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


def test_the_example_plan_validates_with_a_summary_and_its_hash(migratebot: Run) -> None:
    result = migratebot("plan", "validate", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert "valid. plan hash: " in result.stdout
    for wave in ("stateless-web", "karpenter-general", "batch-and-data"):
        assert wave in result.stdout


def test_a_bad_plan_lists_each_problem_with_its_position_and_exits_2(migratebot: Run, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        EXAMPLE.read_text().replace(
            "strategy: drain\n    max_parallel_nodes: 4", "strategy: drian\n    max_parallel_nodes: 4"
        )
    )
    result = migratebot("plan", "validate", str(bad))
    assert result.returncode == 2
    assert f"{bad}:" in result.stderr and "strategy" in result.stderr
    assert "nothing was loaded" in result.stderr


def test_commands_refuse_an_unmigrated_database_and_say_which_command_to_run(migratebot: Run) -> None:
    for args in (("status",), ("audit", "verify"), ("serve", "--plan", str(EXAMPLE))):
        result = migratebot(*args)
        assert result.returncode == 2, args
        assert "migratebot db upgrade" in result.stderr, args


def test_db_upgrade_then_status_shows_no_migration_yet(migratebot: Run) -> None:
    upgraded = migratebot("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "(current)" in upgraded.stdout
    again = migratebot("db", "upgrade")
    assert again.returncode == 0, again.stderr
    status = migratebot("status")
    assert status.returncode == 0, status.stderr
    assert "no migration" in status.stdout.lower()


def test_the_demo_plays_the_slack_story_and_status_and_audit_show_it(migratebot: Run, tmp_path: Path) -> None:
    demo = migratebot("demo", "--plan", str(EXAMPLE))
    assert demo.returncode == 0, demo.stderr
    out = demo.stdout
    assert "stateless-web" in out and "batch-and-data" in out  # the plan's waves, as before
    # The migration channel's transcript: the request, edited in place once a team lead approved it,
    # and the ephemeral answers — the requester's own approval refused.
    transcript = out[out.index("#eks-migration transcript") :]
    # The card is redrawn when the reports arrive (the wave is executing by then): who approved stays.
    assert "*Readiness: READY WITH WARNINGS*" in transcript and "*Security:* AL2 (10 node(s))" in transcript
    assert "@alice asks a team lead to approve" in transcript
    assert "*Approved* by @carol" in transcript
    assert "(only visible to @alice):\n  ⛔ U0SRE00001 can't approve wave 1" in transcript
    assert "(only visible to @carol):\n  You approved wave 1 (stateless-web)" in transcript
    assert "audit log: " in out and "events, chain intact" in out
    # Every wave ran through serve's engine and canary; wave 2's canary failed on fluent-bit, paused the
    # migration and paged on-call, who acknowledged and resumed; wave 3's do-not-disrupt hold was lifted.
    for index in (1, 2, 3):
        assert f"database: wave {index} " in out
    assert out.count(") is completed") == 3
    assert "is canary_failed" in out and "database: migration sandbox-demo is paused" in out
    assert "PagerDuty: incident triggered" in out and "PagerDuty: incident acknowledged" in out
    assert "You acknowledged the alert on wave 2 (karpenter-general)" in out
    assert "Done: wave 2 (karpenter-general) is now *baking* (resume by <@U0ONCALL01>)" in out
    assert "You resumed wave 3 (batch-and-data): it is executing" in out
    # Wave 3 is requested by bob, whom the plan's `impersonation:` does not map: the engine acts as carol.
    assert "bob (U0SRE00002, SRE) types `/migrate next-wave`" in out
    assert "the changes of wave 3 (batch-and-data) as carol@example.com, the approving team lead" in out
    alerts = out[out.index("#eks-alerts transcript") :]
    assert "Canary failed on wave 2 (karpenter-general)" in alerts and "Acknowledged by @erin" in alerts
    assert "crashloop" in transcript and "Canary run on wave 2 (karpenter-general): *fail*" in transcript
    assert (
        out.rstrip()
        .splitlines()[-1]
        .startswith(
            "demo: wave 1 (stateless-web) approved by U0LEAD0001; 3 of 3 waves completed, 0 AL2 nodes left"
        )
    )
    # The demo's own database; the default one is never created by the demo.
    assert (tmp_path / "data" / "demo.db").exists()
    assert not (tmp_path / "data" / "migratebot.db").exists()
    demo_db = f"MIGRATEBOT_DATABASE_URL=sqlite:///{(tmp_path / 'data' / 'demo.db').resolve()}"
    status = migratebot("status", env=demo_db)
    assert status.returncode == 0, status.stderr
    assert "sandbox-demo" in status.stdout and "completed" in status.stdout and "U0SRE00001" in status.stdout
    verify = migratebot("audit", "verify", env=demo_db)
    assert verify.returncode == 0, verify.stderr
    assert verify.stdout.strip().endswith("events, chain intact")
    exported = migratebot("audit", "export", "--format", "jsonl", env=demo_db)
    lines = exported.stdout.strip().splitlines()
    assert len(lines) == int(verify.stdout.split()[0])
    assert '"action":"migration.created"' in lines[0]
    actions = "\n".join(lines)
    assert '"action":"access.denied"' in actions and '"actor":"U0LEAD0001"' in actions


def test_a_demo_run_twice_starts_over_on_a_fresh_demo_database(migratebot: Run, tmp_path: Path) -> None:
    demo_db = f"MIGRATEBOT_DATABASE_URL=sqlite:///{(tmp_path / 'data' / 'demo.db').resolve()}"
    first_run = migratebot("demo", "--plan", str(EXAMPLE))
    assert first_run.returncode == 0, first_run.stderr
    first = migratebot("audit", "verify", env=demo_db).stdout
    second_run = migratebot("demo", "--plan", str(EXAMPLE))
    assert second_run.returncode == 0, second_run.stderr
    assert "approved by U0LEAD0001" in second_run.stdout.rstrip().splitlines()[-1]
    assert migratebot("audit", "verify", env=demo_db).stdout == first


def test_audit_verify_finds_a_row_edited_by_hand(migratebot: Run, tmp_path: Path) -> None:
    assert migratebot("demo", "--plan", str(EXAMPLE)).returncode == 0
    db_file = tmp_path / "data" / "demo.db"
    with sqlite3.connect(db_file) as conn:
        conn.execute("UPDATE audit_events SET actor = 'U0MALLORY1' WHERE seq = 2")
    result = migratebot("audit", "verify", env=f"MIGRATEBOT_DATABASE_URL=sqlite:///{db_file.resolve()}")
    assert result.returncode == 1
    assert "event 2" in result.stderr


@pytest.mark.parametrize("kind", ["readiness", "security"])
def test_report_without_a_plan_says_how_to_give_one_and_exits_2(migratebot: Run, kind: str) -> None:
    result = migratebot("report", kind, "--wave", "1")
    assert result.returncode == 2
    assert "--plan FILE" in result.stderr and "MIGRATEBOT_PLAN" in result.stderr
    assert result.stdout == ""


def test_sandbox_refuses_an_unknown_scenario_naming_the_ones_that_exist(migratebot: Run) -> None:
    result = migratebot("sandbox", "--scenario", "nope")
    assert result.returncode == 2
    assert "'nope'" in result.stderr
    for known in ("demo", "faults", "scale"):
        assert known in result.stderr
    assert result.stdout == ""


def test_sandbox_prints_its_four_endpoints_and_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    executable = shutil.which("migratebot", path=str(Path(os.sys.executable).parent))
    assert executable
    kubeconfig = tmp_path / "kubeconfig"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIGRATEBOT_")}
    proc = subprocess.Popen(
        [
            executable,
            "sandbox",
            "--scenario",
            "demo",
            "--kubeconfig-out",
            str(kubeconfig),
            "--time-scale",
            "10",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().rstrip("\n") for _ in range(4)]
        labels = [line.split(": ", 1)[0] for line in lines]
        assert labels == ["kubeconfig", "aws endpoint", "slack api", "admin"], lines
        values = dict(line.split(": ", 1) for line in lines)
        assert values["kubeconfig"] == str(kubeconfig) and kubeconfig.exists()
        assert values["aws endpoint"].startswith("http://127.0.0.1:")
        assert values["slack api"].startswith("http://") and values["slack api"].endswith("/api/")
        with urllib.request.urlopen(values["admin"] + "/healthz", timeout=5) as answer:
            assert answer.status == 200
        proc.send_signal(signal.SIGINT)
        out, errors = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, errors
    assert out == "", "exactly four lines are printed"
