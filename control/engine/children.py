"""Makes forked task processes obey the scheduler rather than the server they were forked from,
and ends a task process together with every process it started."""

import ctypes
import functools
import os
import signal

_PR_SET_PDEATHSIG = 1


def _reset_in_child() -> None:
    # Its own process group, whose id is its pid: whatever the task starts (``sh -c ...``)
    # joins it, so the scheduler ends them all together (``end_group``).
    try:
        os.setpgid(0, 0)
    except OSError:
        pass
    # The fork copies uvicorn's Python handlers, under which SIGTERM only sets a flag in a
    # copy of the server: Process.terminate() would do nothing and Rocketry's join() would
    # block the event loop for good. Default SIGTERM lets termination work. SIGINT is
    # ignored: Ctrl+C reaches the whole process group, and the scheduler, not the
    # terminal, ends its task processes (and logs their termination).
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        signal.set_wakeup_fd(-1)
    except ValueError:  # not the main thread of the child
        pass
    # If the service is killed outright, its task processes go with it instead of running
    # on as orphans that still hold the listening socket.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to what the task process ``pid`` started (its process group); the
    process itself is signalled by its ``multiprocessing.Process``."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone (or was never made: the child had only just started)


def end_group(pid: int) -> None:
    """Kill what is left of the task process ``pid``'s group once the process has ended."""
    signal_group(pid, signal.SIGKILL)


@functools.cache
def install() -> None:
    """Register the reset for every later fork of this process; idempotent."""
    os.register_at_fork(after_in_child=_reset_in_child)
