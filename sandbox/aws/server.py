"""moto's server app on a loopback port, in a thread of this process.

moto.server.ThreadedMotoServer does the same in twenty lines, but it offers no way to put anything in
front of moto's WSGI app (the sandbox must answer Inspector2's ListFindings/ListCoverage itself, see
inspector.py), its stop() never closes the listening socket, and its request handler logs every
request to stderr. So we serve moto's own app — DomainDispatcherApplication(create_backend_app), with
moto's request handler — through werkzeug exactly as it does, plus those three differences.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication


class _QuietRequestHandler(MotoRequestHandler):
    # One line per request drowns test output and the sandbox's own console; errors still print.
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class MotoHttpServer:
    def __init__(
        self,
        wrap: Callable[[WSGIApplication], WSGIApplication] = lambda app: app,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        app: WSGIApplication = DomainDispatcherApplication(create_backend_app)
        # Port 0: the OS picks a free port, so emulators in parallel test workers never collide.
        self._server: BaseWSGIServer = make_server(
            host, port, wrap(app), threaded=True, request_handler=_QuietRequestHandler
        )
        # serve_forever checks for shutdown every poll_interval; werkzeug's 0.5 s default would make
        # every stop() (one per test) wait that long.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"moto-server-{self._server.port}",
            daemon=True,
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self._server.host}:{self._server.port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
