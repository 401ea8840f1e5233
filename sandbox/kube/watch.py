"""Watch streams: newline-delimited JSON events over a chunked response, fed by the store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from sandbox.kube.jsontypes import JSON
from sandbox.kube.resources import ResourceType
from sandbox.kube.store import Event, Store
from sandbox.kube.tables import table, wants_table


class Watches:
    """Every open watch of one server; `close()` ends them so the HTTP server can stop."""

    def __init__(self, store: Store, bookmark_interval: float = 60.0) -> None:
        self.store = store
        # Seconds of silence before a BOOKMARK (the apiserver sends one about every minute).
        self.bookmark_interval = bookmark_interval
        self._closing = False
        self._queues: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[Event | None]]] = set()

    def close(self) -> None:
        self._closing = True
        for loop, queue in list(self._queues):
            loop.call_soon_threadsafe(queue.put_nowait, None)

    def stream(
        self,
        request: Request,
        rt: ResourceType,
        ns: str | None,
        pred: Callable[[JSON], bool] | None,
        q: Callable[..., str],
        *,
        convert: Callable[[JSON], JSON] | None = None,
        view: ResourceType | None = None,
    ) -> Response:
        rv_text = q("resourceVersion")
        since = int(rv_text) if rv_text not in ("", "0") else None
        timeout = float(q("timeoutSeconds") or 1800)
        bookmarks = q("allowWatchBookmarks") in ("true", "1")
        as_table = wants_table(request)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Event | None] = asyncio.Queue()

        def deliver(event: Event) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, event)

        watcher, initial = self.store.watch(rt, ns, since, deliver)
        handle = (loop, queue)
        self._queues.add(handle)
        now = self.store.clock

        def encode(event: Event) -> bytes | None:
            kind = event.type
            if pred is not None:
                new_ok = pred(event.object)
                old_ok = event.old is not None and pred(event.old)
                if kind == "DELETED":
                    if not old_ok:
                        return None
                elif new_ok and not old_ok:
                    kind = "ADDED"
                elif old_ok and not new_ok:
                    kind = "DELETED"
                elif not new_ok:
                    return None
            obj: JSON = event.object if convert is None else convert(event.object)
            if as_table:
                obj = table(
                    view or rt,
                    [obj],
                    now(),
                    "Object",
                    {"resourceVersion": obj["metadata"]["resourceVersion"]},
                )
            return orjson.dumps({"type": kind, "object": obj}) + b"\n"

        async def stream() -> AsyncIterator[bytes]:
            try:
                for replayed in initial:
                    line = encode(replayed)
                    if line:
                        yield line
                deadline = loop.time() + timeout
                last_rv = self.store.resource_version
                while not self._closing:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        return
                    try:
                        event: Event | None = await asyncio.wait_for(
                            queue.get(), timeout=min(remaining, self.bookmark_interval)
                        )
                    except TimeoutError:
                        if bookmarks and loop.time() < deadline:
                            bookmark = {
                                "type": "BOOKMARK",
                                "object": {
                                    "kind": (view or rt).kind,
                                    "apiVersion": (view or rt).api_version,
                                    "metadata": {
                                        "resourceVersion": str(max(last_rv, self.store.resource_version))
                                    },
                                },
                            }
                            yield orjson.dumps(bookmark) + b"\n"
                        continue
                    if event is None:
                        return
                    last_rv = event.rv
                    line = encode(event)
                    if line:
                        yield line
            finally:
                watcher.stop()
                self._queues.discard(handle)

        return StreamingResponse(
            stream(), media_type="application/json", headers={"Transfer-Encoding": "chunked"}
        )
