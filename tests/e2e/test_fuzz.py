"""Schemathesis against the real server, from its own OpenAPI schema: with no token configured,
and with tokens (an admin's, and none at all). No answer may be a 5xx or stray from the schema,
and nothing a request sends may stop the scheduler."""

from control.auth import digest

import json
import os
import zlib

import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

from tests.utils.service_process import ServiceProcess

pytestmark = pytest.mark.slow

ADMIN_TOKEN = "rcp_fuzz-admin"
REAL_TASKS = [
    "quick",
    "failing",
    "slow_async",
    "slow_thread",
    "quick_process",
    "upstream",
    "downstream",
    "short_process",
    "slow_process",
]
TOKENS = json.dumps([{"name": "fuzzer", "role": "admin", "digest": digest(ADMIN_TOKEN)}])
# The shutdown route stops everything by design, and the event stream never ends by
# design; both are tested on their own.
SHUTDOWN = {"path": "/session/shutdown", "method": "POST"}
EVENTS = {"path": "/events", "method": "GET"}
# Some inputs are valid by the schema's types but not by their meaning, and are rightly 422:
# a condition string Rocketry cannot parse, a cursor this service never issued, run
# parameters the task's function does not take, ``since`` after ``until``.
ALWAYS_EXCLUDED = [positive_data_acceptance]
# CI runs one derandomized pass of 100 cases per operation. A longer hunt:
#   SCHEDULER_FUZZ_EXAMPLES=500 SCHEDULER_FUZZ_SEEDS=1,2,3 python -m pytest tests/e2e/test_fuzz.py
# runs that many cases per operation once per seed, each seed drawing different ones.
EXAMPLES = int(os.environ.get("SCHEDULER_FUZZ_EXAMPLES", "100"))
SEEDS = [int(s) for s in os.environ.get("SCHEDULER_FUZZ_SEEDS", "").split(",") if s.strip()]
SLOWEST = 1.0  # seconds: no answer may take longer (a slower one waited on the event loop)


def _settings(seeded: bool) -> settings:
    return settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=not seeded,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


def _serve(tmp_path_factory, env=None):
    service = ServiceProcess(tmp_path_factory.mktemp("fuzz"), env=env).start()
    service.wait_healthy()
    return service


@pytest.fixture(scope="module")
def open_service(tmp_path_factory):
    service = _serve(tmp_path_factory)
    yield service
    service.stop()


@pytest.fixture(scope="module")
def secured_service(tmp_path_factory):
    service = _serve(tmp_path_factory, env={"SCHEDULER_TOKENS": TOKENS})
    yield service
    service.stop()


def fuzz(service, *, headers=None, expect=None, excluded=()) -> tuple[dict[str, int], list[str]]:
    """Every operation of the service's schema, with ``FUZZ``'s number of generated cases;
    returns the cases tried per operation and the failures found."""
    schema = (
        schemathesis.openapi.from_url(f"{service.client.base_url}/openapi.json")
        .exclude(**SHUTDOWN)
        .exclude(**EVENTS)
    )
    tried: dict[str, int] = {}
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        tried[operation.label] = 0
        for run_seed in SEEDS or [None]:
            try:
                _fuzz_one(operation, tried, headers, expect, excluded, run_seed)
            except Exception as exc:  # collected, so one report shows every operation's failure
                failures.append(f"{operation.label} (seed {run_seed}): {exc}")
    return tried, failures


def _fuzz_one(operation, tried, headers, expect, excluded, run_seed) -> None:
    label = operation.label

    @given(case=operation.as_strategy())
    @_settings(seeded=run_seed is not None)
    def check(case):
        tried[label] += 1
        _aim_at_real_tasks(case)
        response = case.call_and_validate(headers=headers, excluded_checks=[*ALWAYS_EXCLUDED, *excluded])
        assert response.status_code < 500, (case.method, case.path, response.status_code)
        assert response.elapsed < SLOWEST, (case.method, case.path, f"{response.elapsed:.2f} s")
        if expect is not None:
            expect(case, response)

    if run_seed is not None:
        check = seed(run_seed)(check)
    check()


def _aim_at_real_tasks(case) -> None:
    """Most generated names match no task (404). Half of them are swapped for a real one, so
    the fuzzing also edits, runs, terminates and disables real tasks."""
    name = (case.path_parameters or {}).get("name")
    if isinstance(name, str):
        pick = zlib.crc32(name.encode())
        if pick % 2 == 0:
            case.path_parameters["name"] = REAL_TASKS[pick // 2 % len(REAL_TASKS)]


def test_open_service_answers_every_request_within_its_schema(open_service):
    # With no token configured the API is open by design (loopback only), so "accepts
    # invalid authentication" is what it should do there.
    tried, failures = fuzz(open_service, excluded=[ignored_auth])
    print(f"open service: {len(tried)} operations, {sum(tried.values())} cases")
    assert not failures, "\n\n".join(failures)
    assert len(tried) >= 14


def test_secured_service_with_an_admin_token(secured_service):
    tried, failures = fuzz(secured_service, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    print(f"secured service, admin token: {len(tried)} operations, {sum(tried.values())} cases")
    assert not failures, "\n\n".join(failures)


def test_secured_service_without_a_token(secured_service):
    def refused(case, response):
        public = case.path in ("/health", "/auth/session")
        if not public:
            assert response.status_code in (401, 413, 422), (case.method, case.path, response.status_code)

    tried, failures = fuzz(secured_service, expect=refused)
    print(f"secured service, no token: {len(tried)} operations, {sum(tried.values())} cases")
    assert not failures, "\n\n".join(failures)


def test_the_schedulers_survived(open_service, secured_service):
    for service in (open_service, secured_service):
        health = service.client.get("/health")
        assert health.status_code == 200, health.text
        assert health.json()["scheduler"] == "running"
        assert service.process.poll() is None
