"""The rule for what an API-created task may run: a function defined at the top of an allowed module."""

from control.errors import InvalidTargetError
from control.targets import resolve_function

import sys
import types

import pytest

from tests.support_tasks import lures

ALLOWED = ["tests.support_tasks", "tasks"]

BYPASSES = [
    # Dotted walks into what a module imported, its objects, and their internals.
    "tasks.pipeline:os.system",
    "tasks.pipeline:os.path.join",
    "tasks.pipeline:log.info",
    "tasks.pipeline:group.task",
    "tasks.pipeline:Grouper",
    "tasks.pipeline:extract.__globals__",
    "tasks.pipeline:__builtins__",
    "tasks.pipeline:__loader__",
    "tasks.housekeeping:asyncio.create_subprocess_shell",
    "tests.support_tasks.lures:os.system",
    "tests.support_tasks.lures:Jobs.static",
    "tests.support_tasks.lures:jobs.method",
    "tests.support_tasks.lures:genuine.__call__",
    # Module-level names that are not functions written in that module.
    "tests.support_tasks.lures:os",
    "tests.support_tasks.lures:getcwd",
    "tests.support_tasks.lures:rmtree",
    "tests.support_tasks.lures:borrowed",
    "tests.support_tasks.lures:log",
    "tests.support_tasks.lures:remove_all",
    "tests.support_tasks.lures:unnamed",
    "tests.support_tasks.lures:Jobs",
    "tests.support_tasks.lures:jobs",
    "tests.support_tasks.lures:bound",
    "tests.support_tasks.lures:callable_object",
    "tests.support_tasks.lures:made_inside",
    "tests.support_tasks.lures:wrapped_foreign",
    "tests.support_tasks.lures:renamed",
    "tests.support_tasks.lures:executed",
    "tests.support_tasks.lures:system",  # only the module's __getattr__ would answer
    "tests.support_tasks.lures:_private",
    "tests.support_tasks.lures:__getattr__",
    "tests.support_tasks.lures:__dict__",
    # Modules outside the allowed packages, or not what their name says.
    "os:system",
    "subprocess:run",
    "tasksx.pipeline:extract",
    "tests.support_tasks.__init__:group",
    "tests.support_tasks.lures.os:system",
    "tests.support_tasks.lures:",
    ":system",
    "tests.support_tasks.lures",
]


@pytest.mark.parametrize("target", BYPASSES)
def test_anything_but_a_function_defined_in_an_allowed_module_is_refused(target):
    with pytest.raises(InvalidTargetError) as refused:
        resolve_function(target, allowed_packages=ALLOWED)
    assert target in str(refused.value)
    assert refused.value.field == "func"


@pytest.mark.parametrize(
    "target, expected",
    [
        ("tests.support_tasks.lures:genuine", "genuine"),
        ("tests.support_tasks.lures:decorated", "decorated"),
        ("tests.support_tasks.probes:quick", None),
        ("tasks.housekeeping:daily_report", None),
    ],
)
def test_functions_defined_in_an_allowed_module_resolve(target, expected):
    function = resolve_function(target, allowed_packages=ALLOWED)
    assert isinstance(function, types.FunctionType)
    if expected is not None:
        # Looked up now: building an app reloads the task modules.
        assert function is getattr(lures, expected)


def test_a_foreign_module_put_under_an_allowed_name_is_refused():
    sys.modules["tests.support_tasks.impostor"] = __import__("os")
    try:
        with pytest.raises(InvalidTargetError, match="not a module of the package"):
            resolve_function("tests.support_tasks.impostor:system", allowed_packages=ALLOWED)
    finally:
        del sys.modules["tests.support_tasks.impostor"]


def test_a_package_not_in_the_allowed_list_is_refused_even_if_imported():
    with pytest.raises(InvalidTargetError, match="not in an allowed package"):
        resolve_function("tests.support_tasks.lures:genuine", allowed_packages=["tasks"])
