"""The command line against a service with tokens: the token from the flag or the environment,
401 and 403 as exit code 4, and shutting the service down."""

from control.auth import digest

import json

import pytest

from tests.cli.conftest import Cli, serve

pytestmark = pytest.mark.slow

READER, ADMIN = "rcp_cli-reader", "rcp_cli-admin"
TOKENS = json.dumps(
    [
        {"name": "reader", "role": "read", "digest": digest(READER)},
        {"name": "admin", "role": "admin", "digest": digest(ADMIN)},
    ]
)


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    service = serve(tmp_path_factory.mktemp("cli-tokens"), env={"SCHEDULER_TOKENS": TOKENS})
    yield service
    service.stop()


@pytest.fixture(scope="module")
def url(service):
    return f"http://127.0.0.1:{service.port}"


def test_the_token_from_the_environment_or_the_flag(url):
    assert Cli(url, token=READER)("tasks", "show", "quick").returncode == 0
    flagged = Cli(url)("--token", READER, "tasks", "show", "quick")
    assert flagged.returncode == 0, flagged.stderr
    # The flag wins over the environment.
    assert Cli(url, token="rcp_wrong")("--token", READER, "session").returncode == 0


def test_no_token_or_a_wrong_one_exits_4(url):
    missing = Cli(url)("tasks", "list")
    assert missing.returncode == 4
    assert missing.stderr.strip() == (
        "error: unauthorised (401): this needs a token: send 'Authorization: Bearer <token>'"
    )
    wrong = Cli(url, token="rcp_wrong")("logs", "--follow")
    assert wrong.returncode == 4
    assert wrong.stderr.strip() == "error: unauthorised (401): invalid bearer token"


def test_a_token_without_the_role_exits_4(url):
    for args in (["run", "quick"], ["shutdown"], ["definitions", "export"]):
        forbidden = Cli(url, token=READER)(*args)
        assert forbidden.returncode == 4, (args, forbidden.stderr)
        assert forbidden.stderr.startswith("error: forbidden (403): token 'reader' has role 'read'")


def test_run_wait_with_a_token(url):
    done = Cli(url, token=ADMIN)("run", "quick", "--wait")
    assert done.returncode == 0, done.stderr
    assert "succeeded" in done.stdout


def test_shutdown_stops_the_service_which_exits_0(tmp_path):
    service = serve(tmp_path, env={"SCHEDULER_TOKENS": TOKENS})
    try:
        stopped = Cli(f"http://127.0.0.1:{service.port}", token=ADMIN)("shutdown")
        assert (stopped.returncode, stopped.stdout.strip()) == (0, "shutting down")
        assert service.wait_exit() == 0
    finally:
        service.stop()
