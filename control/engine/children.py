"""Makes forked task processes obey the scheduler rather than the server they were forked from."""

import ctypes
import functools
import os
import signal

_PR_SET_PDEATHSIG = 1


def _reset_in_child() -> None:
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


@functools.cache
def install() -> None:
    """Register the reset for every later fork of this process; idempotent."""
    os.register_at_fork(after_in_child=_reset_in_child)
