"""Reports' tests: a demo sandbox per module, the bot's real adapters pointed at it over the wire."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import boto3
import pytest

from bot.adapters.aws import AwsAdapter
from bot.adapters.kube import KubeAdapter
from bot.plan import load_plan
from bot.plan.models import Plan
from sandbox.main import Sandbox

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_PLAN = ROOT / "examples" / "plan.yaml"
T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60.0) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


@dataclass
class World:
    sandbox: Sandbox
    kube: KubeAdapter
    aws: AwsAdapter
    plan: Plan


def all_pods_ready(kube: KubeAdapter) -> bool:
    pods = kube.list_pods()
    return bool(pods) and all(
        any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (p.get("status") or {}).get("conditions") or ()
        )
        for p in pods
        if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
    )


def start_world(time_scale: float = 10.0) -> Iterator[World]:
    with Sandbox("demo", time_scale=time_scale) as sb, pytest.MonkeyPatch.context() as mp:
        assert sb.aws is not None
        env = sb.aws.client_env()
        # boto3's own configuration chain, as the bot is configured in production.
        mp.setenv("AWS_ENDPOINT_URL", env["AWS_ENDPOINT_URL"])
        session = boto3.session.Session(
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env["AWS_REGION"],
        )
        kube = KubeAdapter.from_kubeconfig(str(sb.kubeconfig), sb.bot_context)
        world = World(sb, kube, AwsAdapter(env["AWS_REGION"], session=session), load_plan(EXAMPLE_PLAN))
        wait_for("every demo pod to be Ready", lambda: all_pods_ready(kube))
        try:
            yield world
        finally:
            kube.close()


@pytest.fixture(scope="module")
def demo() -> Iterator[World]:
    yield from start_world()
