"""Routes of the ``/tasks`` resource: read, edit, run, terminate, disable and enable tasks."""

from control.deps import ADMINS, OPERATORS, READERS, ServiceDep
from control.routes.logs import LogFilterDep, log_list
from control.schemas import ActionAccepted, LogList, Message, RunParameters, TaskList, TaskPublic, TaskUpdate

from typing import Annotated

from fastapi import APIRouter, Body, Path, Response, status
from fastapi.concurrency import run_in_threadpool

router = APIRouter(prefix="/tasks", tags=["tasks"])

TaskName = Annotated[str, Path(max_length=255, description="The task's name")]

NOT_FOUND = {404: {"model": Message, "description": "No task has that name"}}
CONFLICT = {409: {"model": Message, "description": "The task's state does not allow it"}}


@router.get("", response_model=TaskList, dependencies=READERS)
async def list_tasks(service: ServiceDep) -> Response:
    """List every task with its conditions and latest outcomes."""
    # Rendered by the service, which keeps each task's JSON until it changes.
    return Response(service.list_tasks_json(), media_type="application/json")


@router.get("/{name}", responses=NOT_FOUND, dependencies=READERS)
async def get_task(name: TaskName, service: ServiceDep) -> TaskPublic:
    """Show one task."""
    return service.get_task(name)


@router.patch("/{name}", responses=NOT_FOUND, dependencies=ADMINS)
async def update_task(name: TaskName, changes: TaskUpdate, service: ServiceDep) -> TaskPublic:
    """Change a task's conditions, timeout, priority, execution, description or disabled flag."""
    return service.update_task(name, changes)


@router.post(
    "/{name}/run",
    status_code=status.HTTP_202_ACCEPTED,
    responses=NOT_FOUND | CONFLICT,
    dependencies=OPERATORS,
)
async def run_task(
    name: TaskName,
    service: ServiceDep,
    parameters: Annotated[RunParameters | None, Body(examples=[{"rows": 10}])] = None,
) -> ActionAccepted:
    """Start the task now, optionally with parameters for this run."""
    return await service.run_task(name, parameters)


@router.post(
    "/{name}/terminate",
    status_code=status.HTTP_202_ACCEPTED,
    responses=NOT_FOUND | CONFLICT,
    dependencies=OPERATORS,
)
async def terminate_task(name: TaskName, service: ServiceDep) -> ActionAccepted:
    """Terminate the task's running runs."""
    return service.terminate_task(name)


@router.post("/{name}/disable", responses=NOT_FOUND, dependencies=OPERATORS)
async def disable_task(name: TaskName, service: ServiceDep) -> TaskPublic:
    """Stop the task from starting until it is enabled again."""
    return service.set_disabled(name, True)


@router.post("/{name}/enable", responses=NOT_FOUND, dependencies=OPERATORS)
async def enable_task(name: TaskName, service: ServiceDep) -> TaskPublic:
    """Let the task start again when its condition holds."""
    return service.set_disabled(name, False)


@router.get("/{name}/logs", responses=NOT_FOUND, dependencies=READERS)
async def list_task_logs(name: TaskName, filters: LogFilterDep, service: ServiceDep) -> LogList:
    """Read one task's run history, newest first."""
    service.require_task(name)
    query = filters.to_query(tasks=(name,))
    return await run_in_threadpool(log_list, service, query)
