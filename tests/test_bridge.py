"""The pydantic bridge: rocketry and redbird on pydantic.v1, the rest of the process on pydantic 2."""

from control.bridge import rewrite_source

import os
import py_compile
import subprocess
import sys

import pydantic
import pydantic.v1
from redbird.base import BaseRepo
from rocketry.core.task import Task

from tests.utils.service_process import REPO


def test_rocketry_and_redbird_models_are_pydantic_v1():
    assert issubclass(Task, pydantic.v1.BaseModel)
    assert issubclass(BaseRepo, pydantic.v1.BaseModel)
    assert pydantic.VERSION.startswith("2.")


def test_rewrite_covers_each_import_form():
    source = (
        b"from pydantic import BaseModel\nimport pydantic\n"
        b"from pydantic.fields import X\n  from pydantic import Y\n"
    )
    assert rewrite_source(source) == (
        b"from pydantic.v1 import BaseModel\nimport pydantic.v1 as pydantic\n"
        b"from pydantic.v1.fields import X\n  from pydantic.v1 import Y\n"
    )
    untouched = b"import pydantic_sqlalchemy\nfrom pydantic_core import x\n"
    assert rewrite_source(untouched) == untouched


def run_python(code: str, *, pythonpath: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": pythonpath, **env},
    )


def test_installing_after_rocketry_was_imported_fails_loudly():
    code = "import sys, types; sys.modules['rocketry'] = types.ModuleType('rocketry'); import control"
    result = run_python(code, pythonpath=str(REPO))
    assert result.returncode != 0
    assert "BridgeError" in result.stderr and "before the pydantic bridge" in result.stderr


def test_a_stale_bytecode_cache_is_not_used(tmp_path):
    # A bridged package whose cached .pyc was compiled from the unrewritten source: if the
    # cache were used, BaseModel would be pydantic 2's.
    package = tmp_path / "redbird"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from pydantic import BaseModel\nIS_V1 = BaseModel.__module__.startswith('pydantic.v1')\n"
    )
    py_compile.compile(str(package / "__init__.py"), doraise=True)
    result = run_python(
        "import control, redbird; print(redbird.IS_V1)",
        pythonpath=f"{tmp_path}{os.pathsep}{REPO}",
        PYTHONDONTWRITEBYTECODE="",
    )
    assert result.stdout.strip() == "True", result.stderr
