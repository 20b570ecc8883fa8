"""Connections -> a bounded uvicorn server: header and idle timeouts, a cap per client address, and a log that
says a repeated error once with its count.

Half-open connections (headers that never finish) are closed after HEADER_TIMEOUT_S; an idle kept-alive one
after uvicorn's keep-alive timeout; a client address holding PER_CLIENT connections has its next ones closed at
once, so one client cannot take every file descriptor and lock the others out. `serve` binds the socket before
anything announces the address, so a port in use is an error, not a false "Serving on".
"""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

logger = logging.getLogger(__name__)

HEADER_TIMEOUT_S = 10.0  # from connecting (or the end of the previous response) to the end of the request headers
KEEP_ALIVE_S = 5  # an idle kept-alive connection is closed after this
PER_CLIENT = 64  # connections one client address may hold at once
REPEAT_WINDOW_S = 60.0  # a message repeated within this is counted, not logged again
FLOODING_LOGGERS = ("uvicorn.error", "asyncio", __name__, "ui.server")


class RepeatFilter(logging.Filter):
    """Lets a message (by logger and format string) through once per REPEAT_WINDOW_S; the next one after the
    window says how many were held back."""

    def __init__(self, window: float = REPEAT_WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window = window
        self.clock = clock
        self.seen: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = self.clock()
        since, held = self.seen.get(key, (0.0, 0))
        if since and now - since < self.window:
            self.seen[key] = (since, held + 1)
            return False
        self.seen[key] = (now, 0)
        if held:
            record.msg = f"{record.msg} (repeated {held} more times in the last {now - since:.0f} s)"
        return True


def install_repeat_filter(names: tuple[str, ...] = FLOODING_LOGGERS) -> RepeatFilter:
    shared = RepeatFilter()
    for name in names:
        target = logging.getLogger(name)
        if not any(isinstance(f, RepeatFilter) for f in target.filters):
            target.addFilter(shared)
    return shared


def bounded_protocol(per_client: int = PER_CLIENT, header_timeout: float = HEADER_TIMEOUT_S) -> type[H11Protocol]:
    """An h11 protocol class (uvicorn's `http=`) with a header timeout and a cap on connections per address."""
    held: Counter[str] = Counter()

    class Bounded(H11Protocol):
        address = ""
        header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            address = self.client[0] if self.client else ""
            if held[address] >= per_client:
                logger.warning("Closed a connection from %s: it already holds %d", address, per_client)
                transport.abort()
                return
            self.address = address
            held[address] += 1
            self.arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if self.address:
                held[self.address] -= 1
                if held[self.address] <= 0:
                    del held[self.address]
                self.address = ""
            self.disarm()
            super().connection_lost(exc)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self.arm()  # the next request's headers get the same time (keep-alive covers a quiet connection)

        def arm(self) -> None:
            self.disarm()
            self.header_timer = self.loop.call_later(header_timeout, self.headers_late)

        def disarm(self) -> None:
            if self.header_timer is not None:
                self.header_timer.cancel()
                self.header_timer = None

        def headers_late(self) -> None:
            self.header_timer = None
            waiting = self.cycle is None or self.cycle.response_complete  # no request under way: headers unfinished
            if waiting and not self.transport.is_closing():
                logger.info(
                    "Closed a connection from %s: no complete request headers in %.0f s", self.address, header_timeout
                )
                self.transport.close()

    return Bounded


def raise_file_limit() -> None:
    """Use the hard limit of open files (often 1,024 soft): each connection is one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):  # pragma: no cover - a container may refuse
            logger.debug("Could not raise the open-file limit from %d", soft)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (raises OSError now, e.g. when the port is taken)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def config(app: Any, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration with the bounded protocol and timeouts."""
    return uvicorn.Config(app, http=bounded_protocol(), timeout_keep_alive=KEEP_ALIVE_S, log_level="warning", **options)


def serve(app: Any, host: str, port: int, *, ready: Callable[[], None] | None = None) -> None:
    """Serve `app` on host:port until interrupted; `ready` runs once the socket is bound."""
    sock = bind(host, port)
    raise_file_limit()
    settings = config(app)  # configures uvicorn's loggers: the filter goes on after
    install_repeat_filter()
    if ready is not None:
        ready()
    uvicorn.Server(settings).run(sockets=[sock])
