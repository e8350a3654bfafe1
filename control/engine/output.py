"""OutputCapture: what each run writes — print() to stdout and stderr, and logging records.

A Rocketry ``task_execute`` hook marks the code of a run as belonging to it (a context
variable: the run's thread, its asyncio task and what that task starts, or its forked
process). ``sys.stdout``/``sys.stderr`` and the root logger route what such code writes to
that run, and still pass it on to the service's own streams. A forked task process sends
its lines to the scheduler through its log queue. Each run keeps at most ``max_bytes``.

Not captured: output written straight to file descriptor 1 or 2 (by a subprocess, say),
and output of threads a task starts itself.
"""

from __future__ import annotations

from control.stores.base import OutputLine
from control.text import storable

import asyncio
import contextlib
import contextvars
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from logging.handlers import QueueHandler

from rocketry.args import Task as TaskArg

_current: contextvars.ContextVar[_Run | None] = contextvars.ContextVar("rcp_current_run", default=None)
# The run a fork is about to start, read by the forked child (which has a copy of memory).
_forking: dict[str, str] = {}
_SKIP_LOGGERS = ("rocketry.", "control.", "uvicorn", "main")


@dataclass(eq=False)
class _Run:
    task: str
    run_id: str
    seq: int = 0
    size: int = 0
    truncated: bool = False
    partial: dict[str, str] = field(default_factory=dict)


class OutputCapture:
    def __init__(self, *, max_bytes: int, sink: Callable[[OutputLine], None]):
        self.max_bytes = max_bytes
        self.sink = sink
        self._lock = threading.Lock()
        self._pid = os.getpid()

    # -- setting up --------------------------------------------------------------------

    def install(self, session) -> None:
        """Route the process's stdout, stderr and root logger through this capture, and mark
        the session's runs. A later capture (another app in the same process) takes over."""
        self.install_streams()
        session.hooks.task_execute.append(self.hook)

    def install_streams(self) -> None:
        """Route the process's stdout, stderr and root logger through this capture."""
        for name in ("stdout", "stderr"):
            current = getattr(sys, name)
            if isinstance(current, _Router):
                current.capture = self
            else:
                setattr(sys, name, _Router(name, current, self))
        root = logging.getLogger()
        root.handlers = [h for h in root.handlers if not isinstance(h, _LogRouter)]
        root.addHandler(_LogRouter(self))

    @contextlib.contextmanager
    def capturing(self, task_name: str, run_id: str):
        """What the code in this block writes is the output of run ``run_id`` (a worker's run)."""
        run = _Run(task_name, run_id)
        token = _current.set(run)
        try:
            yield
        finally:
            self._finish(run)
            _current.reset(token)

    def hook(self, task=TaskArg()):  # noqa: B008  (Rocketry's argument marker)
        """Rocketry's task_execute hook: runs in the run's own thread, task or process."""
        run = self._identify(task)
        token = _current.set(run) if run is not None else None
        yield
        if run is not None:
            self._finish(run)
            _current.reset(token)

    def forking(self, task_name: str, run_id: str):
        """Context for ``process.start()``: the child learns which run it is."""
        return _Forking(task_name, run_id)

    def _identify(self, task) -> _Run | None:
        if os.getpid() != self._pid:
            # A forked task process: its lines go to the scheduler through its log queue.
            self._pid = os.getpid()
            self.sink = _queue_sink(task)
            run_id = _forking.get(task.name)
            return _Run(task.name, run_id) if run_id and self.sink is not None else None
        try:
            running = asyncio.current_task()
        except RuntimeError:
            running = None
        me = threading.current_thread()
        for run in task._run_stack:
            if run.task is not None and (run.task is running or run.task is me):
                return _Run(task.name, run.run_id)
        return None

    # -- capturing ---------------------------------------------------------------------

    def write(self, stream: str, text: str) -> None:
        run = _current.get()
        if run is None or not text:
            return
        with self._lock:
            pending = run.partial.get(stream, "") + text
            *lines, rest = pending.split("\n")
            run.partial[stream] = rest
        for line in lines:
            self._emit(run, stream, line)

    def log(self, record: logging.LogRecord, text: str) -> None:
        run = _current.get()
        if run is not None and not record.name.startswith(_SKIP_LOGGERS):
            self._emit(run, "log", text)

    def _finish(self, run: _Run) -> None:
        with self._lock:
            partial, run.partial = run.partial, {}
        for stream, rest in partial.items():
            if rest:
                self._emit(run, stream, rest)

    def _emit(self, run: _Run, stream: str, text: str) -> None:
        with self._lock:
            if run.truncated:
                return
            size = len(text.encode("utf-8", "replace")) + 1
            if run.size + size > self.max_bytes:
                run.truncated = True
                text, stream = f"[output truncated: over {self.max_bytes} bytes]", "log"
            run.size += size
            seq, run.seq = run.seq, run.seq + 1
        try:
            self.sink(OutputLine(run.task, run.run_id, seq, time.time(), stream, storable(text)))
        except Exception:  # output must never break the task that writes it
            pass


class _Forking:
    def __init__(self, task_name: str, run_id: str):
        self._task, self._run_id = task_name, run_id

    def __enter__(self):
        _forking[self._task] = self._run_id

    def __exit__(self, *exc):
        _forking.pop(self._task, None)


def _queue_sink(task) -> Callable[[OutputLine], None] | None:
    for handler in logging.getLogger(task.logger_name).handlers:
        if isinstance(handler, QueueHandler):
            queue = handler.queue
            return queue.put_nowait
    return None


class _Router:
    """Stands in for sys.stdout or sys.stderr: a run's writes also go to its output."""

    def __init__(self, name: str, original, capture: OutputCapture):
        self._name = name
        self._original = original
        self.capture = capture

    def write(self, text: str) -> int:
        self.capture.write(self._name, text)
        try:
            return self._original.write(text)
        except UnicodeEncodeError:
            # The service's own stream must not fail a task over what it prints.
            self._original.write(storable(text))
            return len(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str):
        return getattr(self._original, name)


class _LogRouter(logging.Handler):
    def __init__(self, capture: OutputCapture):
        super().__init__()
        self._capture = capture
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if _current.get() is None:
            return
        try:
            self._capture.log(record, self.format(record))
        except Exception:
            pass
