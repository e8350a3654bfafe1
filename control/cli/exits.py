"""The command line's exit codes, and the error that carries one to the top."""

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    ERROR = 1  # anything else: a server error (5xx), an answer that is not the API's
    USAGE = 2  # click's own code for a command line it cannot parse
    UNREACHABLE = 3  # no answer from the service (refused, timed out, the stream cut off)
    UNAUTHORISED = 4  # 401 (no token, or a wrong one) or 403 (the token lacks the role)
    NOT_FOUND = 5  # 404: no such task, run or parameter
    CONFLICT = 6  # 409: the task's state does not allow it (run what runs, terminate what does not)
    INVALID = 7  # 422: the service refused the input (a condition that does not parse, bad parameters)
    TASK_FAILED = 8  # run --wait: the run ended in fail, terminate or crash


# Shown at the end of ``--help``; the README's table says the same.
EXIT_CODES_HELP = """\b
Exit codes:
  0  done (run --wait: the run succeeded)
  1  other error (a server error, an unexpected answer)
  2  the command line is wrong
  3  the service cannot be reached
  4  unauthorised: no token, a wrong one (401), or one without the role (403)
  5  not found (404)
  6  conflict with the task's state (409)
  7  invalid input (422)
  8  run --wait: the run failed, was terminated or crashed"""

_BY_STATUS = {
    401: ExitCode.UNAUTHORISED,
    403: ExitCode.UNAUTHORISED,
    404: ExitCode.NOT_FOUND,
    409: ExitCode.CONFLICT,
    422: ExitCode.INVALID,
}


def exit_code_of(status: int) -> ExitCode:
    return _BY_STATUS.get(status, ExitCode.ERROR)


class CliError(Exception):
    """Ends the command with one line on stderr and ``code``."""

    def __init__(self, message: str, code: ExitCode):
        super().__init__(message)
        self.code = code
