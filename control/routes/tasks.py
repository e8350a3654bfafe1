"""Routes of the ``/tasks`` resource: read, run, terminate, edit, create and delete tasks."""

from control.deps import ADMINS, OPERATORS, READERS, ActorDep, HistoryDep, TasksDep
from control.paging import MAX_ID
from control.schemas.common import Message, PageFilter
from control.schemas.logs import LogFilter, LogList
from control.schemas.tasks import (
    ActionAccepted,
    DisableRequest,
    Explanation,
    RunParameters,
    TaskDefinition,
    TaskFields,
    TaskList,
    TaskPublic,
    VersionList,
)

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Response, status

router = APIRouter(prefix="/tasks", tags=["tasks"])

TaskName = Annotated[str, Path(max_length=255, description="The task's name")]
NOT_FOUND = {404: {"model": Message, "description": "No task has that name"}}
CONFLICT = {409: {"model": Message, "description": "The task's state does not allow it"}}
UNSTORED = {503: {"model": Message, "description": "The change could not be stored; nothing changed"}}


@router.get("", response_model=TaskList, dependencies=READERS)
async def list_tasks(tasks: TasksDep) -> Response:
    """List every task with its conditions, next run and latest outcomes."""
    # Rendered by the service, which keeps each task's JSON until it changes.
    return Response(tasks.list_tasks_json(), media_type="application/json")


@router.post("", status_code=status.HTTP_201_CREATED, responses=CONFLICT | UNSTORED, dependencies=ADMINS)
async def create_task(definition: TaskDefinition, tasks: TasksDep, actor: ActorDep) -> TaskPublic:
    """Create a task running an allowed function (or, if enabled, a command); kept across restarts."""
    return await tasks.create_task(definition, actor)


@router.get("/{name}", responses=NOT_FOUND, dependencies=READERS)
async def get_task(name: TaskName, tasks: TasksDep) -> TaskPublic:
    """Show one task."""
    return tasks.get_task(name)


@router.patch("/{name}", responses=NOT_FOUND | UNSTORED, dependencies=ADMINS)
async def update_task(name: TaskName, fields: TaskFields, tasks: TasksDep, actor: ActorDep) -> TaskPublic:
    """Change a task's conditions, timeout, priority, execution, parameters, overlap, description
    or disabled flag; all or nothing, kept across restarts."""
    return await tasks.update_task(name, fields, actor)


@router.delete(
    "/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=NOT_FOUND | CONFLICT | UNSTORED,
    dependencies=ADMINS,
)
async def delete_task(
    name: TaskName,
    tasks: TasksDep,
    actor: ActorDep,
    terminate: Annotated[bool, Query(description="Terminate it first if it is running")] = False,
) -> None:
    """Delete a task created through the API (a task defined in code is refused: it would return)."""
    await tasks.delete_task(name, actor, terminate=terminate)


@router.delete("/{name}/overrides", responses=NOT_FOUND | CONFLICT | UNSTORED, dependencies=ADMINS)
async def reset_task(name: TaskName, tasks: TasksDep, actor: ActorDep) -> TaskPublic:
    """Return a task defined in code to its code definition."""
    return await tasks.reset_task(name, actor)


@router.post(
    "/{name}/run",
    status_code=status.HTTP_202_ACCEPTED,
    responses=NOT_FOUND | CONFLICT,
    dependencies=OPERATORS,
)
async def run_task(
    name: TaskName,
    tasks: TasksDep,
    parameters: Annotated[RunParameters | None, Body(examples=[{"rows": 10}])] = None,
) -> ActionAccepted:
    """Start the task now, optionally with parameters for this run."""
    return await tasks.run_task(name, parameters)


@router.post(
    "/{name}/terminate",
    status_code=status.HTTP_202_ACCEPTED,
    responses=NOT_FOUND | CONFLICT,
    dependencies=OPERATORS,
)
async def terminate_task(name: TaskName, tasks: TasksDep) -> ActionAccepted:
    """Terminate the task's running runs."""
    return await tasks.terminate_task(name)


@router.post("/{name}/disable", responses=NOT_FOUND | UNSTORED, dependencies=OPERATORS)
async def disable_task(
    name: TaskName, tasks: TasksDep, actor: ActorDep, body: Annotated[DisableRequest | None, Body()] = None
) -> TaskPublic:
    """Stop the task from starting until it is enabled again (the reason goes in its history)."""
    return await tasks.set_disabled(name, True, actor, reason=body.reason if body else None)


@router.post("/{name}/enable", responses=NOT_FOUND | UNSTORED, dependencies=OPERATORS)
async def enable_task(name: TaskName, tasks: TasksDep, actor: ActorDep) -> TaskPublic:
    """Let the task start again when its condition holds."""
    return await tasks.set_disabled(name, False, actor)


@router.get("/{name}/explain", responses=NOT_FOUND, dependencies=READERS)
async def explain_task(name: TaskName, tasks: TasksDep) -> Explanation:
    """Say why the task would or would not start now: its condition's parts and their values."""
    return tasks.explain(name)


@router.get("/{name}/versions", responses=NOT_FOUND, dependencies=READERS)
async def list_versions(name: TaskName, tasks: TasksDep, page: Annotated[PageFilter, Query()]) -> VersionList:
    """The task's definition history, newest first: what changed, when, by whom."""
    return await tasks.versions(name, page)


@router.post(
    "/{name}/versions/{version}/restore", responses=NOT_FOUND | CONFLICT | UNSTORED, dependencies=ADMINS
)
async def restore_version(
    name: TaskName, version: Annotated[int, Path(ge=1, le=MAX_ID)], tasks: TasksDep, actor: ActorDep
) -> TaskPublic:
    """Make the task what it was after that version (a deleted runtime task comes back)."""
    return await tasks.restore(name, version, actor)


@router.get("/{name}/logs", responses=NOT_FOUND, dependencies=READERS)
async def list_task_logs(
    name: TaskName, filters: Annotated[LogFilter, Query()], history: HistoryDep
) -> LogList:
    """Read one task's run history, newest first."""
    return await history.logs(filters, task=name)
