"""Property tests: any text as a condition, any JSON as run parameters, never a crash."""

from control.conditions import condition_text, parse_condition
from control.errors import InvalidConditionError

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rocketry import Rocketry
from rocketry.core.condition import BaseCondition

from tests.utils.fixtures import make_settings, start_service, stop_service

# Text that looks like conditions as well as arbitrary text.
WORDS = st.sampled_from(
    [
        "every",
        "daily",
        "weekly",
        "monthly",
        "hourly",
        "after",
        "before",
        "between",
        "and",
        "on",
        "task",
        "'a'",
        "succeeded",
        "failed",
        "finished",
        "time of day",
        "cron",
        "*",
        "10:00",
        "25:99",
        "&",
        "|",
        "~",
        "(",
        ")",
        "1",
        "hour",
        "minutes",
        "true",
        "false",
        "is running",
        "has",
        "today",
    ]
)
CONDITIONS = st.one_of(
    st.text(max_size=60),
    st.lists(WORDS, min_size=1, max_size=8).map(" ".join),
)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)


@pytest.fixture(scope="module")
def session():
    return Rocketry().session


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=CONDITIONS)
def test_any_text_parses_or_is_refused_with_a_reason(session, text):
    try:
        condition = parse_condition(text, session=session)
    except InvalidConditionError as exc:
        assert str(exc)
        return
    assert isinstance(condition, BaseCondition)
    # What the API shows for it parses back to the same condition.
    assert parse_condition(condition_text(condition, session=session), session=session) == condition


@pytest.mark.slow
def test_the_api_answers_any_condition_and_parameters_without_failing(tmp_path):
    async def scenario():
        env, serving = await start_service(make_settings(tmp_path))
        loop = asyncio.get_running_loop()
        statuses = []

        def call(coroutine):
            # Hypothesis drives from a worker thread; requests run on the service's loop.
            return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=30)

        try:

            @settings(max_examples=150, deadline=None)
            @given(text=CONDITIONS, parameters=st.dictionaries(st.text(max_size=15), JSON, max_size=4))
            def explore(text, parameters):
                patch = call(env.client.patch("/tasks/quick", json={"end_cond": text}))
                run = call(env.client.post("/tasks/quick/run", json=parameters))
                statuses.extend([patch.status_code, run.status_code])

            await asyncio.to_thread(explore)
            assert env.scheduler.is_ready
        finally:
            await stop_service(env, serving)
        return statuses

    statuses = asyncio.run(scenario())
    assert set(statuses) <= {200, 202, 409, 422}, sorted(set(statuses))
    assert {200, 202, 422} <= set(statuses)  # both outcomes were reached
