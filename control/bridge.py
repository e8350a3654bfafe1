"""Loads rocketry and redbird against ``pydantic.v1`` while the rest of the process uses pydantic 2.

rocketry 2.5.1 and redbird 0.7.1 are written for the pydantic 1 API, which pydantic 2
still ships as ``pydantic.v1``. This module installs a ``sys.meta_path`` finder that
loads those two packages from their own source with every ``pydantic`` import rewritten
to ``pydantic.v1``. It must be installed before rocketry is first imported, in every
process that imports it; ``control/__init__.py`` does so, so importing anything from
``control`` first is enough. Children started with ``fork`` inherit the loaded modules.
"""

import importlib.abc
import importlib.machinery
import re
import sys
from types import CodeType

BRIDGED_PACKAGES = ("rocketry", "redbird")

# ``from pydantic import X`` / ``from pydantic.fields import X`` / ``import pydantic``
_FROM_IMPORT = re.compile(rb"^(\s*)from\s+pydantic(?=[\s.])", re.MULTILINE)
_PLAIN_IMPORT = re.compile(rb"^(\s*)import\s+pydantic\s*$", re.MULTILINE)


class BridgeError(ImportError):
    """The bridge was installed too late: rocketry was already imported against pydantic 2."""


def rewrite_source(source: bytes) -> bytes:
    """Point every pydantic import of a module's source at ``pydantic.v1``."""
    source = _FROM_IMPORT.sub(rb"\1from pydantic.v1", source)
    return _PLAIN_IMPORT.sub(rb"\1import pydantic.v1 as pydantic", source)


class _RewritingLoader(importlib.machinery.SourceFileLoader):
    def get_code(self, fullname: str) -> CodeType:
        # Compile from the rewritten source every time. The inherited implementation
        # would reuse a cached .pyc of the unrewritten source, whose recorded size and
        # mtime still match the file on disk.
        path = self.get_filename(fullname)
        return self.source_to_code(rewrite_source(self.get_data(path)), path)


class _BridgeFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname.partition(".")[0] not in BRIDGED_PACKAGES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return spec
        spec.loader = _RewritingLoader(spec.loader.name, spec.loader.path)
        return spec


def is_installed() -> bool:
    return any(isinstance(finder, _BridgeFinder) for finder in sys.meta_path)


def install() -> None:
    """Install the finder; idempotent. Raises ``BridgeError`` if it is already too late."""
    if is_installed():
        return
    early = sorted(name for name in sys.modules if name.partition(".")[0] in BRIDGED_PACKAGES)
    if early:
        raise BridgeError(
            f"{early[0]} was imported before the pydantic bridge was installed; "
            "import control (or control.bridge) before rocketry"
        )
    sys.meta_path.insert(0, _BridgeFinder())


def pytest_configure(config) -> None:
    """Lets ``pytest -p control.bridge`` run rocketry's own suite under the bridge."""
    install()
