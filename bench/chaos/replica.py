"""One `migratebot serve` replica as the operator runs it: the real console script, configured by its
environment only, its output appended to a log file that survives every restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

MIGRATEBOT = Path(sys.executable).with_name("migratebot")


class Replica:
    def __init__(self, name: str, env: dict[str, str], port: int, log: Path) -> None:
        self.name = name
        self.env = env
        self.port = port
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.pids: list[int] = []  # every process this replica has been, oldest first
        self.starts = 0
        self.kills = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        with self.log.open("ab") as out:
            out.write(f"\n==== {time.strftime('%H:%M:%S')} start {self.name} ====\n".encode())
            out.flush()
            self.process = subprocess.Popen(
                [str(MIGRATEBOT), "serve"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pids.append(self.process.pid)
        self.starts += 1

    def kill(self) -> None:
        """kill -9: no shutdown, no lock release, nothing flushed."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.kills += 1
        self.process.wait()
        with self.log.open("ab") as out:
            out.write(f"\n==== {time.strftime('%H:%M:%S')} kill -9 {self.name} ====\n".encode())

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, as the orchestrator stops a pod; kill -9 after `timeout`."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base}/healthz", timeout=2) as answer:
                return bool(answer.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if not self.alive():
                raise RuntimeError(f"{self.name} exited with {self.exit_code()}: see {self.log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not answer /healthz in {timeout:.0f} s: see {self.log}")
            time.sleep(0.1)

    def exit_code(self) -> int | None:
        return self.process.poll() if self.process is not None else None

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
