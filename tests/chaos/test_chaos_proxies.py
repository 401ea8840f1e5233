"""The chaos suite's own parts (bench/chaos), quickly: the TCP proxy that cuts PostgreSQL connections,
the round-robin proxy in front of replicas, and the summary's verdict. The suite itself is `make soak`."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bench.chaos.checks import Findings
from bench.chaos.proxies import RoundRobinProxy, TcpProxy, free_port
from bench.chaos.scenarios import Result
from bench.soak import summary
from sandbox.serving import ThreadedUvicorn


@pytest.fixture
def echo_server() -> Iterator[int]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            threading.Thread(target=_echo, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    listener.close()


def _echo(conn: socket.socket) -> None:
    with conn:
        while data := conn.recv(1024):
            conn.sendall(data)


def test_a_cut_drops_every_open_connection_and_new_ones_still_get_through(echo_server: int) -> None:
    with TcpProxy(("127.0.0.1", echo_server)) as proxy:
        first = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        first.sendall(b"ping")
        assert first.recv(4) == b"ping"
        deadline = time.monotonic() + 5
        while proxy.cut() == 0:  # the proxy may not have registered the pair yet
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert _dead(first), "the connection survived the cut"
        second = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        second.sendall(b"pong")
        assert second.recv(4) == b"pong"
        second.close()
        first.close()
        assert proxy.cuts >= 1


def _dead(conn: socket.socket) -> bool:
    """The connection was reset or closed: a write fails, or a read ends."""
    try:
        conn.sendall(b"again")
        return conn.recv(5) == b""
    except OSError:
        return True


def _replica(name: str) -> tuple[ThreadedUvicorn, str]:
    async def answer(request: Request) -> PlainTextResponse:
        return PlainTextResponse(name + ":" + (await request.body()).decode())

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = ThreadedUvicorn(
        Starlette(routes=[Route("/slack/events", answer, methods=["POST"])]), sock, name=name
    )
    return server, f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_the_round_robin_proxy_alternates_replicas_and_skips_a_dead_one() -> None:
    alive, url = _replica("a")
    alive.start()
    dead = f"http://127.0.0.1:{free_port()}"
    try:
        with RoundRobinProxy([url, dead]) as proxy:
            answers = []
            for i in range(4):
                request = urllib.request.Request(
                    f"{proxy.url}/slack/events", data=f"{i}".encode(), method="POST"
                )
                with urllib.request.urlopen(request, timeout=10) as response:
                    answers.append(response.read().decode())
            assert answers == ["a:0", "a:1", "a:2", "a:3"]
            assert proxy.forwarded == {url: 4, dead: 0}
    finally:
        alive.stop()


def test_the_summary_fails_a_run_with_a_duplicate_even_when_the_migration_completed() -> None:
    good = Result(
        "storm", 1, findings=Findings(outcome="completed 3/3", pdb_violations=0, audit="ok", audit_ok=True)
    )
    bad = Result(
        "ha",
        1,
        findings=Findings(
            outcome="completed 3/3",
            pdb_violations=0,
            audit="ok",
            audit_ok=True,
            duplicates=["posted 2 times"],
        ),
    )
    assert good.ok
    assert not bad.ok
    text = summary([good, bad], 60.0)
    assert "make soak: 1/2 run(s) passed" in text
    assert "duplicate: posted 2 times" in text
