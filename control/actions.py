"""The names the service gives what happens to a task: the actions of its runs, the changes to
its definition, the kinds of events, its overlap policies, and what a check decides."""

from typing import Literal, get_args

# What Rocketry logs for a run: it starts (run), then ends one way or another.
Action = Literal["run", "success", "fail", "terminate", "inaction", "crash"]
ACTIONS: tuple[Action, ...] = get_args(Action)
OUTCOMES: tuple[Action, ...] = tuple(action for action in ACTIONS if action != "run")

# What the API records when a task's definition changes (its versions, and their events).
Change = Literal["create", "edit", "disable", "enable", "delete", "restore", "reset", "import"]
CHANGES: tuple[Change, ...] = get_args(Change)

# The kinds of the event stream: run actions, definition changes, and lines a run wrote.
EVENT_KINDS: tuple[str, ...] = (*ACTIONS, *CHANGES, "output")
EventKind = Literal[EVENT_KINDS]  # one Literal of them all (a tuple subscript spells that)

# What happens when a task is due (or asked to run) while it runs (see engine/admission.py).
Overlap = Literal["skip", "allow", "buffer_one", "replace"]

# What a check of a task decides: start it (or replace the running run), keep one start
# for the end of the running run, or not start it, and why not.
Decision = Literal["start", "replace", "buffer", "running", "not_due", "no_capacity", "on_hold"]
