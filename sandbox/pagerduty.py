"""PagerDuty's Events API v2 (POST /v2/enqueue), emulated: it keeps what it was sent and folds events
into incidents by dedup key, as PagerDuty does. Starlette under uvicorn on loopback. The demo and the
canary tests point MIGRATEBOT_PAGERDUTY_URL at it (PagerDuty itself is not reachable here)."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sandbox.serving import ThreadedUvicorn


@dataclass
class Incident:
    dedup_key: str
    summary: str
    status: str = "triggered"
    actions: list[str] = field(default_factory=list)


class PagerDutyReceiver:
    def __init__(self, routing_key: str = "R0UTINGKEY0000000000000000000000") -> None:
        self.routing_key = routing_key
        self.events: list[dict[str, Any]] = []
        self.incidents: dict[str, Incident] = {}
        self._lock = threading.Lock()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/v2/enqueue"
        self._server = ThreadedUvicorn(
            Starlette(routes=[Route("/v2/enqueue", self._enqueue, methods=["POST"])]), sock, name="pagerduty"
        )

    async def _enqueue(self, request: Request) -> JSONResponse:
        event = await request.json()
        if event.get("routing_key") != self.routing_key:
            return JSONResponse(
                {"status": "invalid event", "message": "Event object is invalid"}, status_code=400
            )
        key, action = str(event.get("dedup_key")), str(event.get("event_action"))
        with self._lock:
            self.events.append(event)
            incident = self.incidents.get(key)
            if action == "trigger" and incident is None:
                incident = self.incidents[key] = Incident(key, str(event["payload"]["summary"]))
            if incident is not None:
                incident.actions.append(action)
                incident.status = {
                    "trigger": incident.status,
                    "acknowledge": "acknowledged",
                    "resolve": "resolved",
                }[action]
        return JSONResponse(
            {"status": "success", "message": "Event processed", "dedup_key": key}, status_code=202
        )

    def __enter__(self) -> PagerDutyReceiver:
        self._server.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.stop()
