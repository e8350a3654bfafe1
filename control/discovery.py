"""Finds the task groups (``rocketry.Grouper``) defined in the modules of the task packages."""

import importlib
import pkgutil
import sys
from types import ModuleType

from rocketry import Grouper


class TaskDiscoveryError(ImportError):
    """A task module could not be imported; the message names it."""


def _load(name: str) -> ModuleType:
    try:
        if name in sys.modules:
            # Executed again so each scheduler built in this process gets its own tasks:
            # Rocketry moves a group's tasks into the session that includes it.
            return importlib.reload(sys.modules[name])
        return importlib.import_module(name)
    except Exception as exc:
        raise TaskDiscoveryError(f"cannot import task module {name!r}: {exc!r}") from exc


def discover_groups(packages: list[str]) -> list[Grouper]:
    """Every Grouper found at module level in ``packages`` and their submodules."""
    found: dict[int, Grouper] = {}
    for package_name in packages:
        package = _load(package_name)
        modules = [package]
        if hasattr(package, "__path__"):
            for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
                modules.append(_load(info.name))
        for module in modules:
            for value in vars(module).values():
                if isinstance(value, Grouper):
                    found.setdefault(id(value), value)
    return list(found.values())
