"""The change primitive, through the service layer alone: every change is whole or undone, and
what the listing shows follows every change."""

from control.errors import StoreUnavailableError, TaskNotFoundError
from control.schemas.tasks import EDITABLE, TaskDefinition, TaskFields
from control.services.common import Actor
from control.stores.sql.tables import task_versions

import json
import sqlite3

import pytest
import sqlalchemy as sa

ACTOR = Actor(name="tests", client=None)
QUICK = "tests.support_tasks.probes:quick"


def break_versions(service) -> None:
    """The version table is gone: every change fails to be stored (a real fault)."""
    with sqlite3.connect(service.settings.database_url.removeprefix("sqlite:///")) as db:
        db.execute("DROP TABLE task_versions")


def mend_versions(service) -> None:
    engine = sa.create_engine(service.settings.database_url)
    task_versions.create(engine)
    engine.dispose()


def listed(service, name: str) -> dict:
    body = json.loads(service.services.tasks.list_tasks_json())
    return next(task for task in body["data"] if task["name"] == name)


async def test_an_edit_that_cannot_be_stored_is_undone(service):
    tasks = service.services.tasks
    before = tasks.get_task("quick")
    break_versions(service)
    with pytest.raises(StoreUnavailableError, match="could not be stored"):
        await tasks.update_task("quick", TaskFields(priority=5, start_cond="every 2 hours"), ACTOR)
    assert tasks.get_task("quick") == before
    assert service.services.definitions.export().code_task_edits == {}
    mend_versions(service)
    after = await tasks.update_task("quick", TaskFields(priority=5), ACTOR)  # the lock was let go
    assert after.priority == 5


async def test_a_create_or_delete_that_cannot_be_stored_is_undone(service):
    tasks = service.services.tasks
    break_versions(service)
    with pytest.raises(StoreUnavailableError):
        await tasks.create_task(TaskDefinition(name="made", func=QUICK), ACTOR)
    with pytest.raises(TaskNotFoundError):
        tasks.get_task("made")
    mend_versions(service)
    await tasks.create_task(TaskDefinition(name="made", func=QUICK, priority=3), ACTOR)
    break_versions(service)
    with pytest.raises(StoreUnavailableError):
        await tasks.delete_task("made", ACTOR, terminate=False)
    assert tasks.get_task("made").priority == 3
    await tasks.run_task("made")
    assert service.task("made").status in ("run", "success")


async def test_replacing_what_a_task_runs_is_undone_as_a_whole(service):
    tasks = service.services.tasks
    await tasks.create_task(TaskDefinition(name="made", func=QUICK), ACTOR)
    original = service.task("made")
    break_versions(service)
    other = TaskDefinition(name="made", func="tests.support_tasks.probes:failing")
    with pytest.raises(StoreUnavailableError):
        await tasks.replace_runtime(other, ACTOR, action="import")
    assert service.task("made") is original
    assert tasks.get_task("made").target == QUICK


async def test_the_listing_follows_a_change_of_every_editable_field(service):
    tasks = service.services.tasks
    values = {
        "start_cond": "every 3 hours",
        "end_cond": "every 4 hours",
        "execution": "async",
        "timeout": 12.5,
        "priority": 7,
        "parameters": {"n": 2},
        "description": "changed",
        "disabled": True,
        "overlap": "allow",
    }
    assert set(values) == set(EDITABLE)
    listed(service, "quick")  # rendered once: each change must make it render again
    for field, value in values.items():
        await tasks.update_task("quick", TaskFields(**{field: value}), ACTOR)
        assert listed(service, "quick")[field] == value, field
