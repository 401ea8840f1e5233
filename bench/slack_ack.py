"""Slack ack latency: bursts of 50 concurrent signed slash commands at migratebot while it is busy,
beside a bare ASGI endpoint (Starlette + uvicorn answering 200 at once) taking the same bursts in the
same run.

    python -m bench.slack_ack [--rounds 10] [--burst 50] [--load engine|synthetic]

Each server runs in its own process, as `migratebot serve` does (one uvicorn worker, one event loop);
the client runs in a process of its own, the emulated Slack (the bot's Web API calls and
response_urls) in this one. Rounds alternate which server goes first; bursts are PAUSE apart.
Latency is the client's: from sending the request to reading the whole answer.

The load while it answers (`--load engine`, the default): the demo sandbox (cluster + AWS) runs in a
process of its own and the real engine (bot/engine/executor.py) executes wave 1 from a thread of the
bot's process, publishing on the bus the Slack notifier reads; the bursts start once the wave is
executing, and the run says whether it still was at the end. `--load synthetic` instead runs
engine-like threads in the bot's process: WaveProgress for three waves at ~100 events/s and a
step-journal writer (~50 journal_start + journal_finish pairs/s on the same SQLite database). Either
way every command of a burst does its own work after the ack (status reads, next-wave requests,
ephemeral answers through response_url).

The figures go to the bench's JSON result (bench/results.py); `make bench` renders BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp

from bot.domain.waves import WaveState
from sandbox.slack import WorkspaceSeed

ROOT = Path(__file__).resolve().parents[1]
PLAN = ROOT / "examples" / "plan.yaml"
CLUSTER = "sandbox-demo"
PEOPLE = {
    "alice": "U0SRE00001",
    "bob": "U0SRE00002",
    "carol": "U0LEAD0001",
    "dave": "U0LEAD0002",
    "erin": "U0ONCALL01",
    "frank": "U0ONCALL02",
}
SLACK_DEADLINE_MS = 3000.0
PAUSE = 2.0  # seconds between bursts
TARGET_RATIO = 1.2


# ---- the two servers, each in its own process -----------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_bare(port: int) -> None:
    """The reference: an ASGI endpoint that answers every POST at once, nothing else."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def events(_: Request) -> Response:
        return Response(status_code=200)

    app = Starlette(routes=[Route("/slack/events", events, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def serve_sandbox(info_file: str, time_scale: float) -> None:
    """The demo cluster and AWS (the wave's outside world), in a process of its own like a real one."""
    import signal

    from sandbox.main import Sandbox

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Sandbox("demo", time_scale=time_scale) as sb:
        env = sb.info()["aws"]["env"]
        info = {"kubeconfig": str(sb.kubeconfig), "context": sb.bot_context, "aws_endpoint": sb.aws_endpoint}
        partial = Path(f"{info_file}.partial")
        partial.write_text(json.dumps({**info, "aws_env": env}))
        partial.rename(info_file)  # the bench polls for the file: it must never see it half-written
        stop.wait()


def serve_bot(port: int, config: dict[str, str]) -> None:
    """migratebot's own ASGI app (as `migratebot serve` builds it), with engine-like load in threads."""
    import uvicorn
    from pydantic import SecretStr

    from bot.app import build_bot
    from bot.engine.events import EventBus, WaveProgress, WaveRef
    from bot.settings import Settings
    from storage.repositories import StepStatus

    settings = Settings.model_validate(
        {
            "database_url": config["database_url"],
            "slack_api_url": config["slack_api_url"],
            "plan": Path(config["plan"]),
            "executor": False,  # this bench runs its own engine thread (below)
        }
    ).model_copy(
        update={
            "slack_bot_token": SecretStr(config["bot_token"]),
            "slack_signing_secret": SecretStr(config["signing_secret"]),
        }
    )
    bot = build_bot(settings)
    waves = bot.repositories.migrations.waves(CLUSTER)
    bus = EventBus()
    assert bot.upkeep is not None
    bot.upkeep.notifier.attach(bus)
    stop = threading.Event()

    def publisher() -> None:
        refs = [WaveRef(CLUSTER, w.id, w.index, w.name) for w in waves[:3]]
        n = 0
        while not stop.wait(0.01):
            ref = refs[n % len(refs)]
            done = n % 40
            bus.publish(
                WaveProgress(ref, "draining", 40, done, done, 400, 10 * done, 9 * done, done, 40 - done)
            )
            n += 1

    def journal() -> None:
        wave_id = waves[-1].id
        n = 0
        while not stop.wait(0.02):
            key = f"bench:evict:{n % 500}"
            bot.repositories.journal.journal_start(wave_id, key, "evict", f"pod bench/p-{n}")
            bot.repositories.journal.journal_finish(wave_id, key, StepStatus.SUCCEEDED)
            n += 1

    if config.get("kubeconfig"):
        _start_engine(bot, bus, config, stop)
    else:
        for work in (publisher, journal):
            threading.Thread(target=work, name=work.__name__, daemon=True).start()
    try:
        uvicorn.run(bot.asgi, host="127.0.0.1", port=port, log_level="warning")
    finally:
        stop.set()
        bot.close()


def _start_engine(bot: Any, bus: Any, config: dict[str, str], stop: threading.Event) -> None:
    """Approve wave 1 and run the real engine on its own thread, publishing on the notifier's bus."""
    from bot.adapters.aws import AwsAdapter
    from bot.adapters.kube import KubeAdapter
    from bot.domain.waves import Trigger
    from bot.engine.executor import Engine, EngineSettings

    moves = bot.repositories.migrations
    wave = moves.waves(CLUSTER)[0]
    wave = moves.transition(wave.id, Trigger.REQUEST, actor=PEOPLE["alice"], expected_version=wave.version)
    moves.transition(wave.id, Trigger.APPROVE, actor=PEOPLE["carol"], expected_version=wave.version)
    engine = Engine(
        bot.plans.current(),
        CLUSTER,
        kube=KubeAdapter.from_kubeconfig(config["kubeconfig"], config["context"]),
        aws=AwsAdapter("us-west-2"),
        repos=bot.repositories,
        bus=bus,
        settings=EngineSettings(poll_interval=0.5, retry_interval=1.0),
    )
    threading.Thread(target=engine.run, args=(stop,), name="engine", daemon=True).start()


@contextlib.contextmanager
def child(
    mode: str, port: int, config: dict[str, str] | None = None, env: dict[str, str] | None = None
) -> Iterator[str]:
    """Run `serve_<mode>` in a new Python process; yield its /slack/events URL once it answers."""
    args = [sys.executable, "-m", "bench.slack_ack", "--serve", mode, "--port", str(port)]
    if config is not None:
        args += ["--config", json.dumps(config)]
    process = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}/slack/events"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"bench: the {mode} server did not start (exit code {process.poll()})")
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ---- the client ------------------------------------------------------------------------------------


def seed() -> WorkspaceSeed:
    from sandbox.slack import SeedBot, SeedChannel, SeedUser, SeedUsergroup

    bot = SeedBot()
    users = tuple(SeedUser(uid, name, f"{name.title()} Example") for name, uid in PEOPLE.items())
    everyone = tuple(PEOPLE.values())
    return WorkspaceSeed(
        bot=bot,
        users=users,
        usergroups=(SeedUsergroup("S0ONCALL01", "oncall", "On-call", ("U0ONCALL02",)),),
        channels=(
            SeedChannel("C0MIGRATION", "eks-migration", (*everyone, bot.user_id)),
            SeedChannel("C0ALERTS01", "eks-alerts", (*everyone, bot.user_id)),
        ),
    )


def _wire(request: object) -> dict[str, object]:
    url, body, headers = request.url, request.body, request.headers  # type: ignore[attr-defined]
    return {"url": url, "body": body.decode(), "headers": headers}


async def _one(request: dict[str, object], session: aiohttp.ClientSession) -> tuple[int, float]:
    started = time.perf_counter()
    async with session.post(
        str(request["url"]),
        data=str(request["body"]).encode(),
        headers=request["headers"],  # type: ignore[arg-type]
        timeout=aiohttp.ClientTimeout(total=30),
    ) as resp:
        await resp.read()
        return resp.status, (time.perf_counter() - started) * 1000


def serve_client(bursts_file: str) -> None:
    """Send each burst (all its requests at once), one burst after another; print the latencies."""
    rounds = json.loads(Path(bursts_file).read_text())

    async def measure() -> dict[str, list[float]]:
        took: dict[str, list[float]] = {"bot": [], "bare": [], "window": [], "bot_max": [], "bare_max": []}
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            for r, bursts in enumerate(rounds):
                for one in bursts:
                    # Bursts are spaced out: each measures acks under load, not the backlog of the
                    # previous burst's answers (50 commands in a second is already far beyond a team).
                    await asyncio.sleep(PAUSE)
                    if r == 1 and not took["window"]:
                        took["window"].append(time.time())
                    answers = await asyncio.gather(*(_one(q, session) for q in one["requests"]))
                    bad = [status for status, _ in answers if status != 200]
                    if bad:
                        raise SystemExit(
                            f"{len(bad)} of {len(answers)} requests to {one['target']} not acked: {bad[:5]}"
                        )
                    if r:
                        took[one["target"]].extend(ms for _, ms in answers)
                        took[f"{one['target']}_max"].append(max(ms for _, ms in answers))
        took["window"].append(time.time())
        return took

    print(json.dumps(asyncio.run(measure())))


def _until_executing(database_url: str) -> None:
    deadline = time.monotonic() + 180
    while _wave_one(database_url).state is not WaveState.EXECUTING:
        if time.monotonic() > deadline:
            state = _wave_one(database_url).state.value
            raise SystemExit(f"bench: wave 1 did not start executing within 180 s (it is {state})")
        time.sleep(0.2)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


@dataclasses.dataclass
class Figures:
    samples: int
    p50: float
    p99: float
    max: float
    mean: float
    burst_max_median: float  # the slowest ack of a typical burst (robust to one noisy burst)

    @classmethod
    def of(cls, values: list[float], burst_max: list[float]) -> Figures:
        return cls(
            len(values),
            percentile(values, 50),
            percentile(values, 99),
            max(values),
            statistics.mean(values),
            statistics.median(burst_max),
        )


@contextlib.contextmanager
def sandbox_child(work: Path, time_scale: float) -> Iterator[dict[str, Any]]:
    """The demo sandbox in its own process; yields what the engine needs to reach it."""
    info_file = work / "sandbox.json"
    args = [sys.executable, "-m", "bench.slack_ack", "--serve", "sandbox", "--config", str(info_file)]
    process = subprocess.Popen([*args, "--time-scale", str(time_scale)], cwd=ROOT)
    try:
        deadline = time.monotonic() + 300
        while not info_file.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"bench: the sandbox did not start (exit code {process.poll()})")
            time.sleep(0.2)
        yield dict(json.loads(info_file.read_text()))
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _progress(database_url: str) -> str:
    """How far the wave got, from the last progress message the notifier kept."""
    from storage.db import Database
    from storage.repositories import Repositories

    with Database(database_url) as database:
        last = Repositories.over(database).slack.latest_facts(CLUSTER)
    if last is None:
        return "no progress reported"
    f = last.facts
    return (
        f"at the end {f.get('nodes_drained')}/{f.get('nodes_total')} nodes drained, "
        f"{f.get('pods_evicted')} pods evicted, {f.get('new_nodes_ready')} new Bottlerocket nodes Ready, "
        f"phase {f.get('phase')}"
    )


def _wave_one(database_url: str) -> Any:
    from storage.db import Database
    from storage.repositories import Repositories

    with Database(database_url) as database:
        return Repositories.over(database).migrations.waves(CLUSTER)[0]


def run(rounds: int, size: int, engine: bool, time_scale: float) -> tuple[Figures, Figures, str]:
    work = Path(tempfile.mkdtemp(prefix="migratebot-bench-ack-"))
    try:
        with contextlib.ExitStack() as stack:
            outside = stack.enter_context(sandbox_child(work, time_scale)) if engine else None
            return _run(work, rounds, size, outside, time_scale)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(
    work: Path, rounds: int, size: int, outside: dict[str, Any] | None, time_scale: float
) -> tuple[Figures, Figures, str]:
    from sandbox.slack import SlackActors, SlackEmulator
    from storage.schema import upgrade

    plan = work / "plan.yaml"
    shutil.copy(PLAN, plan)
    database_url = f"sqlite:///{work / 'db' / 'migratebot.db'}"
    upgrade(database_url)
    with SlackEmulator(seed()) as slack:
        config = {
            "database_url": database_url,
            "slack_api_url": slack.api_url,
            "plan": str(plan),
            "bot_token": slack.bot_token,
            "signing_secret": slack.signing_secret,
        }
        env: dict[str, str] = {}
        if outside is not None:
            config |= {"kubeconfig": outside["kubeconfig"], "context": outside["context"]}
            env = {**outside["aws_env"], "AWS_ENDPOINT_URL": outside["aws_endpoint"]}
        with (
            child("bot", _free_port(), config, env) as bot_url,
            child("bare", _free_port()) as bare_url,
        ):
            if outside is not None:
                _until_executing(database_url)
            slack.request_url = bot_url
            people = SlackActors(slack.workspace, bot_url)
            names = list(PEOPLE)

            def commands() -> list:  # type: ignore[type-arg]
                # Mostly status (a read and an answer each), some next-wave (one wins, the rest
                # are told it is requested): every command has work to do after its ack.
                return [
                    people[names[i % len(names)]].build_command(
                        "/migrate",
                        "next-wave" if i % 5 == 0 else "status",
                        channel="eks-migration",
                    )
                    for i in range(size)
                ]

            # The client runs in a process of its own: the emulated Slack in this process
            # answers the bot's Web API calls and response_urls, and must not slow the client.
            plan_rounds = []
            for r in range(rounds + 1):  # round 0 warms both servers up, not counted
                order = [("bot", bot_url), ("bare", bare_url)]
                if r % 2:
                    order.reverse()
                plan_rounds.append(
                    [
                        {
                            "target": name,
                            "requests": [_wire(dataclasses.replace(q, url=url)) for q in commands()],
                        }
                        for name, url in order
                    ]
                )
            bursts = work / "bursts.json"
            bursts.write_text(json.dumps(plan_rounds))
            measured = subprocess.run(
                [sys.executable, "-m", "bench.slack_ack", "--serve", "client", "--config", str(bursts)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            if measured.returncode != 0:
                raise SystemExit(f"bench: the client failed: {measured.stderr.strip()[-2000:]}")
            took = json.loads(measured.stdout)
            bot_ms, bare_ms = took["bot"], took["bare"]
            progress = len(slack.calls_to("chat.update")) + len(slack.calls_to("chat.postMessage"))
            wave = _wave_one(database_url)
            progressed = _progress(database_url)
    if outside is None:
        load = (
            f"bot process busy with the Slack notifier (~100 WaveProgress/s on 3 waves; {progress} "
            "chat.postMessage/update calls in the run) and a step-journal writer (~50 start+finish "
            "pairs/s, SQLite), plus each command's own work after its ack"
        )
    else:
        first, last = took["window"]
        left = wave.entered_at(WaveState.VERIFYING)
        during = (
            "executing through every burst"
            if left is None or left.timestamp() >= last
            else f"executing for the first {max(0.0, left.timestamp() - first):.0f} s of the "
            f"{last - first:.0f} s of bursts, then {wave.state.value}"
        )
        load = (
            f"the engine running wave 1 (stateless-web, 10 AL2 nodes) of the demo sandbox (its own "
            f"process, time scale {time_scale:g}) from the bot's process, {during} ({progressed}); "
            "its events drove "
            f"the Slack notifier ({progress} chat.postMessage/update calls in the run), and each "
            "command did its own work after its ack"
        )
    return Figures.of(bot_ms, took["bot_max"]), Figures.of(bare_ms, took["bare_max"]), load


def emit(recorder: Any, bot: Figures, bare: Figures, load: str, rounds: int, size: int) -> None:
    from bench.results import compared

    scope = (
        f"{rounds} bursts of {size} concurrent signed `/migrate` slash commands at each server "
        f"({bot.samples} acks each), {PAUSE:.0f} s apart; load: {load}"
    )
    recorder.emit(
        [
            compared(
                "slack_ack.p50", "Slack ack latency p50", bot.p50, "ms", "bare ASGI endpoint p50", bare.p50
            ),
            compared(
                "slack_ack.p99",
                "Slack ack latency p99",
                bot.p99,
                "ms",
                "bare ASGI endpoint p99",
                bare.p99,
                at_most=TARGET_RATIO,
                notes=scope,
            ),
            compared(
                "slack_ack.p99_vs_deadline",
                "Slack ack latency p99 vs Slack's deadline",
                bot.p99,
                "ms",
                "Slack's ack deadline",
                SLACK_DEADLINE_MS,
                at_most=1.0,
            ),
            compared(
                "slack_ack.burst_max",
                "Slack ack latency: median of each burst's slowest ack",
                bot.burst_max_median,
                "ms",
                "bare ASGI endpoint, same",
                bare.burst_max_median,
                notes=f"max {bot.max:.1f} ms vs bare {bare.max:.1f} ms",
            ),
        ],
        {"bot": dataclasses.asdict(bot), "bare": dataclasses.asdict(bare), "load": load},
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument(
        "--load",
        choices=["engine", "synthetic"],
        default="engine",
        help="engine: the real engine runs wave 1 of the demo sandbox; synthetic: engine-like threads",
    )
    parser.add_argument(
        "--time-scale", type=float, default=1.0, help="the sandbox's emulated seconds per second"
    )
    parser.add_argument("--serve", choices=["bot", "bare", "client", "sandbox"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve == "bare":
        serve_bare(args.port)
        return 0
    if args.serve == "sandbox":
        serve_sandbox(args.config, args.time_scale)
        return 0
    if args.serve == "client":
        serve_client(args.config)
        return 0
    if args.serve == "bot":
        serve_bot(args.port, json.loads(args.config))
        return 0
    os.environ.setdefault("PYTHONHASHSEED", "0")
    from bench.results import Recorder

    recorder = Recorder("slack_ack")
    bot, bare, load = run(args.rounds, args.burst, args.load == "engine", args.time_scale)
    ratio = bot.p99 / bare.p99
    print(f"load: {load}")
    for name, figures in (("migratebot", bot), ("bare ASGI", bare)):
        print(
            f"{name:<11}: p50 {figures.p50:7.1f} ms   p99 {figures.p99:7.1f} ms   "
            f"max {figures.max:7.1f} ms   median burst max {figures.burst_max_median:6.1f} ms   "
            f"({figures.samples} acks)"
        )
    print(
        f"ratio p99 migratebot / bare: {ratio:.2f}x (target <= {TARGET_RATIO}x); "
        f"Slack's deadline {SLACK_DEADLINE_MS:.0f} ms"
    )
    emit(recorder, bot, bare, load, args.rounds, args.burst)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
