"""Things a task module may hold besides task functions; as targets, all but two must be refused."""

import functools
import logging
import os  # noqa: F401  (a module reachable through this one)
import shutil
from os import getcwd  # noqa: F401  (a builtin imported here)
from shutil import rmtree  # noqa: F401  (a foreign Python function imported here)

from tests.support_tasks.probes import quick as borrowed  # noqa: F401  (defined in another module)

log = logging.getLogger(__name__)
remove_all = functools.partial(shutil.rmtree, "/nonexistent-folder")
unnamed = lambda: None  # noqa: E731


class Jobs:
    def method(self):
        return "method"

    @staticmethod
    def static():
        return "static"


jobs = Jobs()
bound = jobs.method


class CallableThing:
    def __call__(self):
        return "called"


callable_object = CallableThing()


def factory():
    def inner():
        return "inner"

    return inner


made_inside = factory()


def _private():
    return "private"


def genuine():
    """The one plain function here: allowed."""
    return "genuine"


def _decorate(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return func(*args, **kwargs)

    return wrapper


@_decorate
def decorated():
    """Decorated, but defined here: allowed."""
    return "decorated"


wrapped_foreign = _decorate(shutil.rmtree)
renamed = genuine  # defined here, but under another name

_namespace: dict = {}
exec("def executed():\n    return 'executed'\n", _namespace)
executed = _namespace["executed"]


def __getattr__(name):
    # A module-level __getattr__ must not be able to hand out anything.
    if name == "system":
        return os.system
    raise AttributeError(name)
