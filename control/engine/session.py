"""ControlSession: a Rocketry session that finds its tasks by name without scanning them all."""

import functools
import platform
from typing import Literal

import rocketry.core.task
from pydantic.v1.fields import ModelField
from rocketry import Session
from rocketry.core import Task
from rocketry.time import Cron

# Rocketry 2.5.1 tests ``platform.system()`` (a non-empty string everywhere) where it means
# "is Windows", and so sleeps in every start of an async task to work around a Windows
# clock issue: about 0.6 ms on this loop, each time. Only Windows needs it.
rocketry.core.task._IS_WINDOWS = platform.system() == "Windows"


# Rocketry 2.5.1 builds a cron expression's periods (dozens of objects) again at every check
# of a ``cron`` condition, which makes each check cost milliseconds. The periods depend only
# on the expression and are immutable: built once per expression, they are shared.
@functools.lru_cache(maxsize=4096)
def _cron_periods(minute, hour, day_of_month, month, day_of_week):
    return _build_cron_periods(Cron(minute, hour, day_of_month, month, day_of_week))


_build_cron_periods = Cron.get_subperiod
Cron.get_subperiod = lambda self: _cron_periods(
    self.minute, self.hour, self.day_of_month, self.month, self.day_of_week
)


def _widen_execution(cls: type[Task]) -> None:
    """Let ``execution`` be ``celery`` too (a run on a worker, see ``remote.py``), on Task
    and every subclass (each keeps its own copy of the field)."""
    old = cls.__fields__["execution"]
    cls.__fields__["execution"] = ModelField.infer(
        name="execution",
        value=old.default,
        annotation=Literal["main", "async", "thread", "process", "celery"] | None,
        class_validators=old.class_validators,
        config=cls.__config__,
    )
    for subclass in cls.__subclasses__():
        _widen_execution(subclass)


_widen_execution(Task)


class TaskSet(set):
    """The session's set of tasks, with a name index kept alongside.

    Rocketry looks tasks up by name for every dependency condition and every log record;
    its own lookup walks the whole set. Names are indexed when a task is added: a task
    renamed after it joined the session is found again by one full scan.
    """

    def __init__(self):
        super().__init__()
        self.by_name: dict[str, Task] = {}
        self.version = 0  # changes whenever a task is added or removed

    def add(self, task: Task) -> None:
        super().add(task)
        self.by_name[task.name] = task
        self.version += 1

    def remove(self, task: Task) -> None:
        super().remove(task)
        if self.by_name.get(task.name) is task:
            del self.by_name[task.name]
        self.version += 1

    def discard(self, task: Task) -> None:
        if task in self:
            self.remove(task)

    def clear(self) -> None:
        super().clear()
        self.by_name.clear()
        self.version += 1

    def find(self, name: str) -> Task | None:
        task = self.by_name.get(name)
        if task is not None and task.name == name and task in self:
            return task
        if task is not None:
            # The indexed task was renamed or removed behind the index's back.
            self.by_name = {t.name: t for t in self}
            return self.by_name.get(name)
        return None


class ControlSession(Session):
    """Session whose ``tasks`` is a ``TaskSet``; otherwise Rocketry's own."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.tasks = TaskSet()

    def clear(self):
        super().clear()
        self.tasks = TaskSet()

    def __getitem__(self, task) -> Task:
        name = self._get_task_name(task)
        found = self.tasks.find(name)
        if found is None:
            raise KeyError(f"Task '{name}' not found")
        return found

    def __contains__(self, task) -> bool:
        return self.tasks.find(self._get_task_name(task)) is not None
