"""May this task start now? The one rule, used by the scheduler's checks, by run requests (409)
and by ``explain``, so that what the API says is what the loop does.

The rule is Rocketry's (``Scheduler.is_task_runnable`` and ``Task.is_runnable``) with this
service's overlap policies for a task that is already running: ``skip`` (the default: no
second start), ``allow`` (side by side), ``buffer_one`` (one start waits for the run to
end) and ``replace`` (the running one is terminated first).
"""

from __future__ import annotations

from control.actions import Decision, Overlap

from collections.abc import Callable
from dataclasses import dataclass

from rocketry.core import Task

_CONCURRENT = ("thread", "async", "process", "celery")


@dataclass(frozen=True)
class Condition:
    """A start condition's value now: True, False, or None with the error it raised."""

    value: bool | None
    error: str | None = None


@dataclass(frozen=True)
class Admission:
    decision: Decision
    reasons: tuple[str, ...]

    @property
    def would_start(self) -> bool:
        """A check now starts a run (``replace`` after terminating the running one)."""
        return self.decision in ("start", "replace")


@dataclass(frozen=True)
class Circumstances:
    """What the decision depends on besides the task: the scheduler's state."""

    on_hold: bool
    free_slots: int  # process slots left
    slots: int  # process slots in all
    leading: bool = True  # this replica launches tasks (with replicas, only the leader does)


class OverlapPolicies:
    """Each task's overlap policy (``skip`` unless set)."""

    def __init__(self):
        self._policies: dict[str, Overlap] = {}

    def of(self, name: str) -> Overlap:
        return self._policies.get(name, "skip")

    def set(self, task: Task, policy: Overlap) -> None:
        if policy == "skip":
            self._policies.pop(task.name, None)
        else:
            self._policies[task.name] = policy
        # Rocketry's own reading of "allow": several runs of one task side by side.
        task.multilaunch = True if policy == "allow" else None

    def forget(self, name: str) -> None:
        self._policies.pop(name, None)

    def effective(self, task: Task) -> Overlap:
        policy = self._policies.get(task.name)
        if policy is None and task.multilaunch:
            return "allow"  # set in code with Rocketry's multilaunch
        return policy or "skip"


def admit(
    task: Task, *, overlap: Overlap, condition: Callable[[], Condition], now: Circumstances
) -> Admission:
    """What a check of ``task`` now decides, and why, in words.

    ``condition()`` gives the start condition's value (the loop evaluates it as Rocketry
    does, ``explain`` part by part); it is called only when nothing else decides first."""
    if task.on_startup or task.on_shutdown:
        return Admission("not_due", ("it runs only when the scheduler starts or stops",))
    if now.on_hold:
        return Admission("on_hold", ("the scheduler is on hold",))
    if not now.leading:
        return Admission("on_hold", ("this replica does not launch tasks now: the leader replica does",))
    execution = task.get_execution()
    if execution == "process" and now.free_slots <= 0:
        return Admission(
            "no_capacity", (f"every process slot is taken ({now.slots}): it waits for one to be free",)
        )
    requested = bool(task.batches)
    if execution in _CONCURRENT and task.is_alive():
        if overlap == "skip":
            return Admission("running", ("it is already running, and its overlap policy is skip",))
        if overlap == "buffer_one" and requested:
            return Admission(
                "running", ("it is running; one start already waits for the run to end (buffer_one)",)
            )
        runnable = _runnable(task, condition)
        if not runnable.would_start:
            return runnable
        if overlap == "buffer_one":
            return Admission(
                "buffer",
                (*runnable.reasons, "it is running: the start waits for the run to end (buffer_one)"),
            )
        if overlap == "replace":
            return Admission("replace", (*runnable.reasons, "the running run is terminated first (replace)"))
        return Admission("start", (*runnable.reasons, "it starts beside the running run (allow)"))
    return _runnable(task, condition)


def admit_request(task: Task, *, overlap: Overlap) -> str | None:
    """Why a run request for ``task`` is refused now (409), or None if it is taken (it then
    starts, waits for its turn, or waits for a process slot, as a check decides)."""
    if task.batches:
        return f"Task '{task.name}' already has a run waiting to start"
    if task.get_execution() in _CONCURRENT and task.is_alive() and overlap == "skip":
        return f"Task '{task.name}' is already running (overlap policy: skip)"
    return None


def _runnable(task: Task, condition: Callable[[], Condition]) -> Admission:
    """Rocketry's ``Task.is_runnable``, with its reasons: a requested run starts whatever
    the condition; a disabled task does not start; otherwise the condition decides."""
    if task.batches:
        return Admission("start", ("a run was requested: it starts regardless of its condition",))
    if task.disabled:
        return Admission("not_due", ("the task is disabled",))
    value = condition()
    if value.value is None:
        return Admission("not_due", (f"its start condition failed: {value.error}",))
    if not value.value:
        return Admission("not_due", ("its start condition is false",))
    return Admission("start", ("its start condition is true",))
