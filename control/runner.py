"""Runs the HTTP server and the scheduler as two sibling tasks of one event loop, stopping together."""

from __future__ import annotations

from control.engine.loop import ControlScheduler

import asyncio
import logging
import socket
from collections.abc import Callable

import uvicorn

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1


class ServerStartupError(RuntimeError):
    """uvicorn gave up while starting (for example the port is taken)."""

    def __init__(self, code: int):
        super().__init__(f"the server could not start (exit code {code})")
        self.code = code


class ControlServer(uvicorn.Server):
    """uvicorn's server, whose own shutdown also stops the scheduler.

    uvicorn's signal handler only sets ``should_exit``; the server then leaves its main
    loop and calls ``shutdown``. Stopping the scheduler there (and not in ``handle_exit``)
    covers SIGINT, SIGTERM and ``should_exit`` alike, while the API still answers.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        *,
        scheduler: ControlScheduler,
        stop_timeout: float,
        on_stopping: Callable[[], None] | None = None,
    ):
        super().__init__(config)
        self.scheduler = scheduler
        self.stop_timeout = stop_timeout
        # Ends long-lived responses (event streams), which the server would wait for.
        self.on_stopping = on_stopping
        self.bound = asyncio.Event()
        self.scheduler_task: asyncio.Task | None = None

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        self.bound.set()

    async def shutdown(self, sockets=None) -> None:
        await self.stop_scheduler()
        if self.on_stopping is not None:
            self.on_stopping()
        await super().shutdown(sockets)

    async def serve(self, sockets=None) -> None:
        with self.capture_signals():
            await self._serve(sockets)
            # uvicorn re-raises a captured SIGINT/SIGTERM after serve() (so the process
            # would end with -2/-15). Here a signal asks for a clean stop, which is done
            # by now, so the process exits 0 instead.
            self._captured_signals.clear()

    async def stop_scheduler(self) -> None:
        """Ask the scheduler to stop and wait for it; cancel it past the timeout or on a
        second Ctrl+C."""
        task = self.scheduler_task
        if task is None or task.done():
            return
        self.scheduler.request_stop()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.stop_timeout + 1.0
        while not task.done() and not self.force_exit and loop.time() < deadline:
            await asyncio.wait({task}, timeout=0.1)
        if not task.done():
            logger.error("The scheduler did not stop in time; cancelling it")
            task.cancel()
            await asyncio.wait({task}, timeout=2.0)


def bind_listener(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything else starts: a port that is taken is then
    the first and only thing the service says (uvicorn would bind after its start-up)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    listener = socket.socket(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(2048)
    except OSError:
        listener.close()
        raise
    return listener


async def _serve(server: ControlServer, sockets: list[socket.socket] | None) -> None:
    try:
        await server.serve(sockets)
    except SystemExit as exc:
        # uvicorn calls sys.exit() when it cannot bind; as a plain exception it ends only
        # this task, so the scheduler can be stopped and the process can say why.
        raise ServerStartupError(exc.code if isinstance(exc.code, int) else EXIT_FAILED) from None


def _outcome(task: asyncio.Task, what: str) -> int:
    if task.cancelled():
        logger.error("The %s was cancelled", what)
        return EXIT_FAILED
    exc = task.exception()
    if exc is None:
        return EXIT_OK
    if isinstance(exc, ServerStartupError):
        return exc.code
    logger.error("The %s failed: %r", what, exc)
    return EXIT_FAILED


async def run_service(
    server: ControlServer, scheduler: ControlScheduler, *, sockets: list[socket.socket] | None = None
) -> int:
    """Serve until a signal, ``POST /session/shutdown``, or either side failing.

    The scheduler starts only once the server listens, so a port that is taken runs no
    task. Returns the process exit code: 0 for a requested stop, non-zero otherwise.
    """
    server_task = asyncio.create_task(_serve(server, sockets), name="server")
    bound = asyncio.create_task(server.bound.wait(), name="server-bound")
    await asyncio.wait({server_task, bound}, return_when=asyncio.FIRST_COMPLETED)
    if not server.bound.is_set():
        bound.cancel()
        await asyncio.wait({server_task})
        return _outcome(server_task, "server")
    scheduler_task = asyncio.create_task(scheduler.serve(), name="scheduler")
    server.scheduler_task = scheduler_task
    await asyncio.wait({server_task, scheduler_task}, return_when=asyncio.FIRST_COMPLETED)
    if not server_task.done():
        # The scheduler ended first: stopped through the API, or crashed.
        server.should_exit = True
    else:
        await server.stop_scheduler()
    await asyncio.wait({server_task, scheduler_task})
    server_code = _outcome(server_task, "server")
    scheduler_code = _outcome(scheduler_task, "scheduler")
    return server_code or scheduler_code
