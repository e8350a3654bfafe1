"""The /conditions routes: a condition checked before it is used."""

import datetime

import pytest

from tests.utils.api import when


async def test_validate_gives_the_canonical_condition_and_the_next_due_times(service):
    response = await service.client.post(
        "/conditions/validate", json={"condition": "every 10 minutes", "count": 3}
    )
    body = response.json()
    assert body["condition"] == "every 10 minutes"
    first, second, third = (when(t) for t in body["next_runs"])
    assert (second - first, third - second) == (pytest.approx(600, abs=0.01), pytest.approx(600, abs=0.01))
    daily = (
        await service.client.post("/conditions/validate", json={"condition": "daily between 08:00 and 09:00"})
    ).json()
    starts = [datetime.datetime.fromisoformat(t) for t in daily["next_runs"]]
    assert len(starts) == 5 and all(
        datetime.time(8) <= s.astimezone().time() < datetime.time(9) for s in starts
    )
    depends = (
        await service.client.post("/conditions/validate", json={"condition": "after task 'quick'"})
    ).json()
    assert depends["next_runs"] is None
    bad = await service.client.post("/conditions/validate", json={"condition": "every banana"})
    assert bad.status_code == 422 and "every banana" in bad.json()["detail"][0]["msg"]
