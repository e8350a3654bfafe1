"""The names of what happens to a task: the actions of its runs, and the changes to its definition."""

from typing import Literal, get_args

# What Rocketry logs for a run: it starts (run), then ends one way or another.
Action = Literal["run", "success", "fail", "terminate", "inaction", "crash"]
ACTIONS: tuple[Action, ...] = get_args(Action)
OUTCOMES: tuple[Action, ...] = tuple(action for action in ACTIONS if action != "run")

# What the API records when a task's definition changes (its versions, and their events).
Change = Literal["create", "edit", "disable", "enable", "delete", "restore", "reset", "import"]
CHANGES: tuple[Change, ...] = get_args(Change)

# The kinds of the event stream: run actions, definition changes, and lines a run wrote.
EventKind = Action | Change | Literal["output"]
EVENT_KINDS: tuple[str, ...] = (*ACTIONS, *CHANGES, "output")
