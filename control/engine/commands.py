"""Command tasks whose parameters reach the command line only as their definition declares.

Rocketry's ``CommandTask`` appends every parameter it is given as ``--name value``: a run
parameter named ``--output`` would become an option of the command, and every session
parameter would be appended too. ``DeclaredCommandTask`` takes only the parameters its
``arguments`` name, each as its option (``--rows 5``), as a flag, or positionally, in the
order declared. Values are checked before the run (``control.parameters``); here a value
that would read as an option is refused once more, in case one got past.
"""

from __future__ import annotations

import subprocess
from typing import Any

from rocketry.tasks import CommandTask


class DeclaredCommandTask(CommandTask):
    # {name: {"option": "--rows" | None, "type": "string" | "integer" | "number" | "boolean"}}
    arguments: dict = {}

    def prefilter_params(self, params):
        return {key: value for key, value in params.items() if key in self.arguments}

    def postfilter_params(self, params):
        return {key: value for key, value in params.items() if key in self.arguments}

    def execute(self, **parameters):
        """Run the command with the declared arguments it was given; no shell."""
        argv = [*self.command, *command_line(self.arguments, parameters)]
        process = subprocess.Popen(argv, **self.get_kwargs_popen())
        try:
            out, err = process.communicate(timeout=self.timeout.total_seconds() if self.timeout else None)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise
        if process.returncode != 0:
            text = err.decode("utf-8", errors="replace") if isinstance(err, bytes) else err
            raise OSError(f"the command exited with {process.returncode}:\n{text}")
        return out


def command_line(arguments: dict[str, dict], values: dict[str, Any]) -> list[str]:
    """The command-line words for ``values``, in the order the arguments are declared."""
    unknown = sorted(set(values) - set(arguments))
    if unknown:
        raise TypeError(f"the command takes no parameter {', '.join(map(repr, unknown))}")
    words: list[str] = []
    for name, spec in arguments.items():
        if name not in values or values[name] is None:
            continue
        value, option = values[name], spec.get("option")
        if spec.get("type") == "boolean":
            if value:
                words.append(option)
            continue
        text = value if isinstance(value, str) else str(value)
        if isinstance(value, str) and text.startswith("-"):
            raise ValueError(f"the value of {name!r} would read as an option: {text[:50]!r}")
        words.extend([option, text] if option else [text])
    return words
