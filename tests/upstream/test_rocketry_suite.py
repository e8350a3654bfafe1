"""Runs Rocketry's shipped test suite (about 1,800 tests) under the pydantic bridge."""

import os
import re
import subprocess
import sys

import pytest

from tests.upstream.deselect import DESELECTED
from tests.utils.service_process import REPO

pytestmark = pytest.mark.slow


def test_rocketry_suite_passes_under_the_bridge(tmp_path):
    # Run from an empty folder with an empty ini, so this project's pytest settings
    # (asyncio mode, warning filters) do not change how Rocketry's tests behave.
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.upstream.deselect",
            "--pyargs",
            "rocketry",
            "--assert=plain",
            "-q",
            "-p",
            "no:cacheprovider",
            "-c",
            str(tmp_path / "pytest.ini"),
            "--rootdir",
            str(tmp_path),
        ],
        cwd=tmp_path,
        # Its command-task tests run `python` and compare its usage text, which names the
        # interpreter as found on PATH: that must be this one, not a shim that execs a path.
        env={
            **os.environ,
            "PYTHONPATH": str(REPO),
            "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]),
        },
        capture_output=True,
        text=True,
        timeout=900,
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr[-2000:]
    print(summary)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    passed = int(re.search(r"(\d+) passed", summary).group(1))
    assert passed > 1700, summary
    assert f"{len(DESELECTED)} deselected" in summary, summary
