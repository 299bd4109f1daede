"""The explorer's HTTP server: uvicorn, with a deadline on each request and a cap on connections.

uvicorn's HTTP/1.1 protocols have a keep-alive timeout but no bound on how long a client may take
to send a request: a socket that sends part of a header and stops (slowloris), or a body one byte a
minute, is held open for ever. :class:`DeadlineProtocol` gives each request ``timeout`` seconds,
from the moment the server waits for it (the connection opened, or the previous answer sent) until
its header and body have all arrived; a client still sending then gets a 408 and the connection is
closed (one that has sent nothing of the request is closed without a word: it may be an idle
keep-alive connection, and an unasked-for 408 would be read as the answer to its next request). The
time the app takes to answer is not counted.

With more than ``max_connections`` connections open, a request that has arrived whole makes room by
closing the connection that has waited longest, and at least a second, for a request header (a
stalled header gets its 408, an idle keep-alive connection is closed); a crowd of stalled sockets
thus cannot turn real requests away for longer than that second. When every connection is busy with
a request, a new one is answered 503 in JSON and closed (uvicorn's ``limit_concurrency`` answers
every request over its cap, stalled sockets counted, in plain text and without reading the body).

Both sit in a subclass of uvicorn's h11 protocol (h11 is a dependency of uvicorn, always there;
httptools, used by default when it is installed, is not needed): an ASGI middleware sees a request
only once its header is in, so it cannot bound a stalled header.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from functools import partial

import h11
import uvicorn
from fastapi.responses import JSONResponse
from uvicorn.protocols.http.h11_impl import H11Protocol

from vaekit.web.app import SECURITY_HEADERS, discard_body

log = logging.getLogger("vaekit")

DEFAULT_MAX_CONNECTIONS = 100  # a page opens about 6; the load bench runs 50 clients
DEFAULT_TIMEOUT = 30.0  # seconds to send one request: a 2 MB upload at 70 kB/s
WAITS = itertools.count()  # orders the connections by how long they have waited for a request
# A connection closed to make room must have waited this long for its header: one just opened may
# have its bytes on the way (in a burst the server reads them late), and closing it would reset it.
STALLED_AFTER = 1.0


class DeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol with one deadline per request (``request_timeout`` seconds to send its
    header and body, counted from when the server starts waiting for it) and room made for a request
    above ``max_connections`` connections, or a JSON 503."""

    def __init__(self, *args, request_timeout: float = DEFAULT_TIMEOUT,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.request_timeout, self.max_connections = request_timeout, max_connections
        self.deadline: asyncio.TimerHandle | None = None
        self.wait_number, self.waiting_since = 0, 0.0  # when the server began to wait for the current request
        self.limit_concurrency = None  # uvicorn's own check: replaced by _admit
        self.served_app, self.app = self.app, self._admit

    async def _admit(self, scope, receive, send) -> None:
        # this request's task is among self.tasks, its connection among self.connections
        over = max(len(self.connections), len(self.tasks)) > self.max_connections
        if not over or self._make_room():
            await self.served_app(scope, receive, send)
            return
        log.warning("explore: over %d connections: a request answered 503 (see --max-connections)",
                    self.max_connections)
        await discard_body(scope, receive)
        busy = {"error": f"server busy: more than {self.max_connections} connections open; try again shortly"}
        await JSONResponse(busy, status_code=503, headers={**SECURITY_HEADERS, "Connection": "close",
                                                           "Retry-After": "1"})(scope, receive, send)

    def _make_room(self) -> bool:
        """Close the connection that has waited longest for a request header (at least
        :data:`STALLED_AFTER` seconds); False if none has."""
        since = self.loop.time() - STALLED_AFTER
        waiting = [c for c in self.connections if isinstance(c, DeadlineProtocol) and c.deadline is not None
                   and c.conn.their_state is h11.IDLE and c.waiting_since <= since and not c.transport.is_closing()]
        if not waiting:
            return False
        min(waiting, key=lambda c: c.wait_number)._drop(f"not complete while the server was full "
                                                          f"({self.max_connections} connections)")
        return True

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # may start the next cycle (keep-alive, pipelined requests)
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)

    def _watch(self) -> None:
        """Arm the deadline while a request is still to come or arriving; drop it once it is in."""
        if self.transport.is_closing() or self.conn.their_state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR):
            self._cancel()
        elif self.deadline is None:
            self.wait_number, self.waiting_since = next(WAITS), self.loop.time()
            self.deadline = self.loop.call_later(self.request_timeout, self._drop,
                                                 f"not received within {self.request_timeout:g} s")

    def _cancel(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _drop(self, why: str) -> None:
        """Close the connection: with a 408 saying ``why`` if a request has begun and is not answered."""
        self._cancel()
        if self.transport.is_closing():
            return
        started = self.conn.their_state is not h11.IDLE or bool(self.conn.trailing_data[0])
        if started and self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):  # not answered yet
            body = json.dumps({"error": f"request: {why}"}).encode()
            self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                                 b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
        self.transport.close()


def server_config(app, host: str = "127.0.0.1", port: int = 8000, *, max_connections: int = DEFAULT_MAX_CONNECTIONS,
                  timeout: float = DEFAULT_TIMEOUT) -> uvicorn.Config:
    """uvicorn's settings for the explorer ``app``: requests sent within ``timeout`` seconds, at most
    ``max_connections`` connections served at once (a 503 above), no websockets."""
    return uvicorn.Config(app, host=host, port=port, log_level="warning", ws="none",
                          http=partial(DeadlineProtocol, request_timeout=timeout, max_connections=max_connections))


def serve(app, host: str = "127.0.0.1", port: int = 8000, *, max_connections: int = DEFAULT_MAX_CONNECTIONS,
          timeout: float = DEFAULT_TIMEOUT) -> None:
    """Serve ``app`` until interrupted (see :func:`server_config`)."""
    uvicorn.Server(server_config(app, host, port, max_connections=max_connections, timeout=timeout)).run()
