"""The world one scenario runs in: the sandbox's demo scenario (Kubernetes, AWS, Slack) in this
process, PagerDuty's emulation, a fresh database, and the environment each `migratebot serve`
replica is started with — exactly the variables an operator sets, nothing patched in."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from bench.chaos.proxies import RoundRobinProxy, TcpProxy, free_port
from bench.chaos.replica import MIGRATEBOT, Replica
from bot.adapters.kube import KubeAdapter
from bot.services.demo import demo_plan_file
from sandbox.main import BOT_NAMESPACE, BOT_SERVICE_ACCOUNT, Sandbox
from sandbox.pagerduty import PagerDutyReceiver
from sandbox.slack import SlackEmulator
from storage.db import Database, scratch_schema
from storage.repositories import Repositories

JSON = dict[str, Any]
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_PLAN = ROOT / "examples" / "plan.yaml"
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@dataclass
class World:
    sandbox: Sandbox
    pagerduty: PagerDutyReceiver
    slack: SlackEmulator
    admin: KubeAdapter  # cluster-admin: what the SREs and the platform team use by hand
    cluster: str
    workdir: Path
    plan_file: Path
    database_url: str  # the driver's own, direct connection
    bot_database_url: str  # what the replicas are given (through the TCP proxy when there is one)
    db: Database
    repos: Repositories
    replicas: list[Replica] = field(default_factory=list)
    pg_proxy: TcpProxy | None = None
    balancer: RoundRobinProxy | None = None
    service_accounts: dict[str, str] = field(default_factory=dict)  # replica name → kube user

    def sandbox_admin(self, method: str, path: str, body: JSON | None = None) -> JSON:
        """The sandbox's admin API (faults, ground truth)."""
        answer: JSON = self.sandbox.admin_request(method, path, body)
        return answer

    def replica_of_pid(self, pid: int) -> Replica | None:
        return next((r for r in self.replicas if pid in r.pids), None)

    def holder(self) -> str | None:
        """The executor lock's holder ("host-pid"), read from the database."""
        with self.db.engine.connect() as connection:
            row = connection.execute(
                text("SELECT holder FROM executor_locks WHERE name = :n"), {"n": f"engine:{self.cluster}"}
            ).first()
        return str(row[0]) if row else None


def base_environment() -> dict[str, str]:
    """This process's environment without anything that would configure the bot behind our back."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MIGRATEBOT_", "SLACK_", "AWS_")) and k != "KUBECONFIG"
    }


def postgres_base_url() -> str:
    return os.environ.get("MIGRATEBOT_TEST_DATABASE_URL") or POSTGRES_URL


def through(url: str, proxy: TcpProxy) -> str:
    return make_url(url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)


def upgrade(url: str, workdir: Path) -> None:
    """`migratebot db upgrade`, the command an operator runs before the first `serve`."""
    import subprocess

    env = {**base_environment(), "MIGRATEBOT_DATABASE_URL": url, "MIGRATEBOT_DATA_DIR": str(workdir)}
    done = subprocess.run(
        [str(MIGRATEBOT), "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"migratebot db upgrade failed: {done.stderr or done.stdout}")


def _service_account(sandbox: Sandbox, name: str) -> tuple[str, str]:
    """A service account bound like the bot's own (cluster-admin in the sandbox) and its token: each
    replica acts under its own name, so the request log tells which one did what."""
    if name != BOT_SERVICE_ACCOUNT:
        account = {"kind": "ServiceAccount", "name": name, "namespace": BOT_NAMESPACE}
        role = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"}
        sandbox.kube_server.api.load(
            [
                {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "metadata": {"name": name, "namespace": BOT_NAMESPACE},
                },
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRoleBinding",
                    "metadata": {"name": f"{name}-sandbox"},
                    "roleRef": role,
                    "subjects": [account],
                },
            ]
        )
    token = (
        sandbox.bot_kube_token
        if name == BOT_SERVICE_ACCOUNT
        else sandbox.kube_server.token_for_service_account(BOT_NAMESPACE, name)
    )
    return token, f"system:serviceaccount:{BOT_NAMESPACE}:{name}"


@contextlib.contextmanager
def open_world(
    workdir: Path, *, postgres: bool, replicas: int, pg_cuts: bool, log_level: str = "INFO"
) -> Iterator[World]:
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    with contextlib.ExitStack() as stack:
        sandbox = stack.enter_context(Sandbox("demo", time_scale=20.0))
        pagerduty = stack.enter_context(PagerDutyReceiver())
        slack = sandbox.slack
        assert slack is not None
        info = sandbox.info()
        plan_file = demo_plan_file(EXAMPLE_PLAN, workdir)
        if postgres:
            database_url = stack.enter_context(scratch_schema(postgres_base_url(), "soak"))
        else:
            database_url = f"sqlite:///{workdir / 'migratebot.db'}"
        upgrade(database_url, workdir)
        pg_proxy = None
        bot_url = database_url
        if pg_cuts:
            upstream = make_url(database_url)
            pg_proxy = stack.enter_context(TcpProxy((upstream.host or "127.0.0.1", upstream.port or 5432)))
            bot_url = through(database_url, pg_proxy)
        db = Database(database_url)
        stack.callback(db.dispose)
        admin = KubeAdapter.from_kubeconfig(str(sandbox.kubeconfig), sandbox.context)
        stack.callback(admin.close)
        world = World(
            sandbox=sandbox,
            pagerduty=pagerduty,
            slack=slack,
            admin=admin,
            cluster=str(info["cluster"]["name"]),
            workdir=workdir,
            plan_file=plan_file,
            database_url=database_url,
            bot_database_url=bot_url,
            db=db,
            repos=Repositories.over(db),
            pg_proxy=pg_proxy,
        )
        slack_info = info["slack"]
        for i in range(replicas):
            name = "bot" if replicas == 1 else f"bot-{'ab'[i]}"
            account = BOT_SERVICE_ACCOUNT if i == 0 else f"{BOT_SERVICE_ACCOUNT}-{'ab'[i]}"
            token, user = _service_account(sandbox, account)
            world.service_accounts[name] = user
            data_dir = workdir / name
            data_dir.mkdir()
            port = free_port()
            env = {
                **base_environment(),
                **info["aws"]["env"],
                "KUBECONFIG": str(
                    sandbox.write_bot_kubeconfig(data_dir / f"{account}.kubeconfig", token, user=account)
                ),
                "SLACK_BOT_TOKEN": str(slack_info["botToken"]),
                "SLACK_SIGNING_SECRET": str(slack_info["signingSecret"]),
                "MIGRATEBOT_SLACK_API_URL": str(slack_info["apiUrl"]),
                "MIGRATEBOT_PLAN": str(plan_file),
                "MIGRATEBOT_DATABASE_URL": bot_url,
                "MIGRATEBOT_DATA_DIR": str(data_dir),
                "MIGRATEBOT_HTTP_HOST": "127.0.0.1",
                "MIGRATEBOT_HTTP_PORT": str(port),
                "MIGRATEBOT_ENGINE_POLL_INTERVAL": "0.2",
                "MIGRATEBOT_ENGINE_RETRY_INTERVAL": "0.25",
                "MIGRATEBOT_ENGINE_LOCK_TTL": "3",
                "MIGRATEBOT_PAGERDUTY_ROUTING_KEY": pagerduty.routing_key,
                "MIGRATEBOT_PAGERDUTY_URL": pagerduty.url,
                "MIGRATEBOT_LOG_LEVEL": log_level,
                "PYTHONUNBUFFERED": "1",
            }
            world.replicas.append(Replica(name, env, port, workdir / f"{name}.log"))
        if replicas > 1:
            world.balancer = stack.enter_context(RoundRobinProxy([r.base for r in world.replicas]))
            slack.request_url = f"{world.balancer.url}/slack/events"
        else:
            slack.request_url = f"{world.replicas[0].base}/slack/events"
        try:
            yield world
        finally:
            for replica in world.replicas:
                replica.stop()
