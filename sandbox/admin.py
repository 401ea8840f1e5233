"""The sandbox's one admin surface: ground truth, faults, Slack transcripts, the request log, and the
scenario's facts, over plain HTTP on the sandbox's host.

Authentication: the Kubernetes admin token (the `sandbox-admin` user of the sandbox's kubeconfig),
as `Authorization: Bearer …` or, for a browser on the same machine, `?token=…`. `migratebot
sandbox` never prints it; it is in the kubeconfig and in `<kubeconfig>.sandbox.json` (mode 0600).
"""

from __future__ import annotations

import hmac
import socket
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from sandbox.kube.jsontypes import JSON
from sandbox.serving import ThreadedUvicorn
from sandbox.slack.errors import SlackError

if TYPE_CHECKING:
    from sandbox.main import Sandbox


FAULT_KINDS = ("api", "never_ready", "crash_on_bottlerocket", "clear")


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _problem(status: int, message: str) -> Response:
    return _json({"error": message}, status)


class AdminApp:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sb = sandbox
        self.app = Starlette(
            routes=[
                Route("/", self.index, methods=["GET"]),
                Route("/healthz", self.healthz, methods=["GET"]),
                Route("/scenario", self.scenario, methods=["GET"]),
                Route("/ground-truth", self.ground_truth, methods=["GET"]),
                Route("/faults", self.faults, methods=["GET", "POST", "DELETE"]),
                Route("/kube/requests", self.requests, methods=["GET", "DELETE"]),
                Route("/slack/transcript/{channel}", self.transcript, methods=["GET"]),
                Route("/slack/state", self.slack_state, methods=["GET"]),
            ]
        )

    # ---- plumbing -------------------------------------------------------------------------------

    def _authorized(self, request: Request) -> bool:
        expected = self.sb.admin_token
        header = request.headers.get("authorization", "")
        given = (
            header[7:].strip()
            if header.lower().startswith("bearer ")
            else request.query_params.get("token", "")
        )
        return bool(given) and hmac.compare_digest(given, expected)

    def _guard(self, request: Request) -> Response | None:
        return (
            None if self._authorized(request) else _problem(401, "admin token required (Bearer or ?token=)")
        )

    # ---- endpoints ------------------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        return _json({"ok": True, "scenario": self.sb.scenario.name})

    async def index(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        return _json(
            {
                "scenario": self.sb.scenario.name,
                "endpoints": {
                    "GET /scenario": "cluster, node groups, nodepools, AWS and Slack facts",
                    "GET /ground-truth": "nodes, pods, evictions, PDB violations (controllers)",
                    "GET|POST|DELETE /faults": "API latency / errors / watch cuts; node and pod faults",
                    "GET|DELETE /kube/requests?since=N&user=U": "the Kubernetes request log, with users",
                    "GET /slack/transcript/{channel}": "a channel's transcript as text (?times=1)",
                    "GET /slack/state": "the Slack workspace as JSON",
                },
            }
        )

    async def scenario(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        return _json(self.sb.info())

    async def ground_truth(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        controllers = self.sb.controllers
        if controllers is not None:
            return _json({"source": "controllers", **controllers.ground_truth()})
        return _json(self._api_ground_truth())

    def _api_ground_truth(self) -> JSON:
        """Without the controllers: the nodes' state and every eviction the API answered."""
        kube = self.sb.kube_server
        api = kube.api
        nodes_rt = api.rt("", "v1", "nodes")
        items, _, _ = api.store.list_objects(nodes_rt, None)
        nodes = []
        for node in items:
            ready: JSON = next(
                (c for c in node.get("status", {}).get("conditions", []) if c.get("type") == "Ready"), {}
            )
            nodes.append(
                {
                    "name": node["metadata"]["name"],
                    "providerID": node.get("spec", {}).get("providerID"),
                    "registered": node["metadata"].get("creationTimestamp"),
                    "ready": ready.get("status") == "True",
                    "readySince": ready.get("lastTransitionTime") if ready.get("status") == "True" else None,
                    "unschedulable": bool(node.get("spec", {}).get("unschedulable")),
                }
            )
        entries, _ = api.log.since(0)
        evictions = [
            {
                "at": e["time"],
                "namespace": e["namespace"],
                "pod": e["name"],
                "code": e.get("code"),
                "by": e.get("user"),
                "evicted": e.get("code") == 201,
            }
            for e in entries
            if e.get("subresource") == "eviction" and e.get("verb") == "create"
        ]
        return {
            "source": "api",
            "note": "no controllers running: evictions are the API's answers; PDB violations are not tracked",
            "nodes": nodes,
            "evictions": evictions,
            "pdbViolations": None,
        }

    async def faults(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        controllers = self.sb.controllers
        if request.method == "DELETE":
            self.sb.api_faults.clear()
            if controllers is not None:
                controllers.clear_fault()
        elif request.method == "POST":
            try:
                body = orjson.loads(await request.body())
            except orjson.JSONDecodeError as e:
                return _problem(400, f"body is not JSON: {e}")
            if not isinstance(body, dict):
                return _problem(400, "body must be an object")
            unknown = set(body) - set(FAULT_KINDS)
            if unknown:
                return _problem(
                    400, f"unknown fault kinds {sorted(unknown)}; known: {', '.join(FAULT_KINDS)}"
                )
            if "api" in body:
                try:
                    self.sb.api_faults.update(body["api"] or {})
                except ValidationError as e:
                    return _problem(422, str(e))
            ids: dict[str, int] = {}
            if controllers is None and set(body) - {"api"}:
                return _problem(
                    409, "node and pod faults need the emulated controllers, which are not running"
                )
            if controllers is not None:
                if "never_ready" in body:
                    spec = body["never_ready"] or {}
                    ids["never_ready"] = controllers.fault_node_never_ready(
                        node=spec.get("node"),
                        nodepool=spec.get("nodepool"),
                        node_group=spec.get("node_group"),
                    )
                if "crash_on_bottlerocket" in body:
                    spec = body["crash_on_bottlerocket"] or {}
                    ids["crash_on_bottlerocket"] = controllers.fault_crash_on_bottlerocket(
                        namespace=spec.get("namespace"),
                        selector=spec.get("selector", ""),
                        path=spec.get("path", "/usr/local/bin"),
                    )
                if "clear" in body:
                    controllers.clear_fault(int(body["clear"]))
            return _json({**self._faults(), "added": ids})
        return _json(self._faults())

    def _faults(self) -> JSON:
        controllers = self.sb.controllers
        return {
            "api": self.sb.api_faults.describe(),
            "scenario": self.sb.scenario.faults.model_dump(mode="json"),
            "neverReadyNodes": self.sb.objects.never_ready_nodes,
            "controllers": controllers.faults_active() if controllers is not None else None,
        }

    async def requests(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        log = self.sb.kube_server.api.log
        if request.method == "DELETE":
            log.clear()
            return _json({})
        since = int(request.query_params.get("since", "0") or 0)
        items, end = log.since(since)
        user = request.query_params.get("user")
        if user:
            items = [e for e in items if e.get("user") == user]
        return _json({"items": items, "next": end})

    async def transcript(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        slack = self.sb.slack
        if slack is None:
            return _problem(503, "slack is not running")
        channel = request.path_params["channel"]
        try:
            text = slack.transcript(channel, times=request.query_params.get("times") in ("1", "true"))
        except (SlackError, KeyError) as e:
            return _problem(404, f"no channel {channel}: {e}")
        return PlainTextResponse(text)

    async def slack_state(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        slack = self.sb.slack
        return _json(slack.snapshot() if slack else {})


class AdminServer:
    """uvicorn serving AdminApp in a daemon thread, like the other sandbox servers."""

    def __init__(self, sandbox: Sandbox, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = AdminApp(sandbox)
        self._host = host
        self._port = port
        self._runner: ThreadedUvicorn | None = None
        self.url = ""

    def start(self) -> AdminServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        port = sock.getsockname()[1]
        self.url = f"http://{self._host}:{port}"
        self._runner = ThreadedUvicorn(self.app.app, sock, name=f"sandbox-admin-{port}")
        self._runner.start()
        return self

    def stop(self) -> None:
        if self._runner is not None:
            self._runner.stop()
