"""What a task created through the API may run: a function defined in a module of an allowed package.

One rule, applied wherever a target string becomes something to call (create, import,
restore, and every stored definition at start-up): ``package.module:function`` names a
module inside one of the allowed packages and a function *defined* in that module, at its
top level, under that name. Nothing else resolves. In particular no dotted path after the
colon (``tasks.pipeline:os.system`` would walk into whatever the module imported), no
private or dunder names, and nothing that is not a plain Python function written in that
module: not a class, a builtin, a bound method, a ``functools.partial``, a callable
object, a lambda, a nested function, or a function the module merely imported.
"""

from __future__ import annotations

from control.errors import InvalidTargetError

import importlib
import inspect
import re
import sys
from pathlib import Path
from types import FunctionType, ModuleType

_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_FUNCTION = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def resolve_function(target: str, *, allowed_packages: list[str]) -> FunctionType:
    """The function ``target`` names, or ``InvalidTargetError`` saying why it may not run."""
    module_name, colon, name = target.partition(":")

    def refuse(reason: str) -> InvalidTargetError:
        return InvalidTargetError(f"{target}: {reason}", field="func", value=target)

    if not colon or not _MODULE.fullmatch(module_name):
        raise refuse("give it as package.module:function")
    if not _FUNCTION.fullmatch(name):
        if "." in name:
            raise refuse("only a function defined at the top level of the module can run (no dotted path)")
        raise refuse("private and special names cannot run")
    if any(part.startswith("__") for part in module_name.split(".")):
        raise refuse("special module names cannot be imported")
    package = next((p for p in allowed_packages if module_name == p or module_name.startswith(p + ".")), None)
    if package is None:
        raise refuse(f"{module_name!r} is not in an allowed package ({', '.join(allowed_packages)})")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the module's own code may raise anything
        raise refuse(f"cannot import {module_name}: {type(exc).__name__}: {exc}".rstrip(": ")) from exc
    if not _is_genuine(module, module_name, package):
        raise refuse(f"{module_name} is not a module of the package {package}")
    # The module's own namespace, not getattr: a module-level __getattr__ cannot answer.
    value = vars(module).get(name)
    if value is None:
        raise refuse(f"cannot import {target}: {module_name} has no function {name!r}")
    if not isinstance(value, FunctionType):
        raise refuse(f"{name} is not a function ({type(value).__name__})")
    # A decorated function counts as defined where its innermost function is.
    inner = inspect.unwrap(value)
    if (
        not isinstance(inner, FunctionType)
        or inner.__module__ != module_name
        or inner.__globals__ is not vars(module)
        or inner.__qualname__ != name
    ):
        raise refuse(f"{name} is not a function defined at the top level of {module_name}")
    return value


def _is_genuine(module: ModuleType, module_name: str, package: str) -> bool:
    """Whether ``module`` is what its name says: a module loaded from the package's own
    folder (not another module put under that name in ``sys.modules``)."""
    if module.__name__ != module_name or getattr(module.__spec__, "name", None) != module_name:
        return False
    root = sys.modules.get(package)
    if root is None:
        return False
    folders = [Path(p).resolve() for p in getattr(root, "__path__", [])]
    if not folders:  # the allowed "package" is a single module: only itself
        return module is root
    location = getattr(module, "__file__", None)
    if location is None:
        return False
    where = Path(location).resolve()
    return any(where.is_relative_to(folder) for folder in folders)
