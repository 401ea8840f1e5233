"""The image's promise: migratebot runs on a read-only root filesystem, writing only its data dir and /tmp.

No Docker engine runs here, so the test builds the same condition the container has with a private
mount namespace: `/` remounted read-only, and only two directories of the test's own left writable —
the data volume and a scratch dir standing in for the container's /tmp (TMPDIR). The repository
and the venv may live anywhere (CI clones under /tmp), so nothing is mounted over them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _namespaces_available() -> bool:
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    probe = subprocess.run([unshare, "-m", "--propagation", "private", "true"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(
    not _namespaces_available(),
    reason="LOUD SKIP: needs `unshare -m` (root or user namespaces) to remount / read-only; "
    "on this workplace's machines and CI it is available — run as root to check the image's promise",
)
def test_the_cli_works_with_a_read_only_root_and_writes_only_its_data_dir(tmp_path: Path) -> None:
    migratebot = Path(sys.executable).parent / "migratebot"
    plan = ROOT / "examples" / "plan.yaml"
    data, scratch = tmp_path / "data", tmp_path / "tmp"
    data.mkdir()
    scratch.mkdir()
    script = f"""
set -e
mount --bind {tmp_path} {tmp_path}
mount --rbind / / && mount -o remount,bind,ro /
cd {scratch}
export HOME={scratch} TMPDIR={scratch} MIGRATEBOT_DATA_DIR={data} PYTHONDONTWRITEBYTECODE=1
{migratebot} db upgrade
{migratebot} demo --plan {plan} --waves 1 > /dev/null
{migratebot} status > /dev/null
{migratebot} audit verify
MIGRATEBOT_DATABASE_URL=sqlite:///{data}/demo.db {migratebot} audit verify
for probe in {ROOT}/.read-only-probe /etc/.read-only-probe; do
  if touch $probe 2>/dev/null; then echo "$probe is writable: the test proves nothing"; exit 3; fi
done
echo $(ls {data})
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIGRATEBOT_")}
    result = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,  # the demo's first wave: sandbox, bot, engine, canary, reports (~40 s here)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("chain intact") == 2  # the default database and the demo's
    written = result.stdout.strip().splitlines()[-1].split()
    assert "migratebot.db" in written and "demo.db" in written
    # The databases, their WAL files, the demo's plan copy and the bot's kubeconfig for the sandbox,
    # nothing else (the sandbox's own kubeconfig goes to TMPDIR, then away).
    demo_files = ("migratebot.db", "demo.db", "demo-plan.yaml", "demo-kubeconfig")
    assert all(name.startswith(demo_files) for name in written), written
