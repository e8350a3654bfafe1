"""Builds the service layer over a Rocketry app: restores stored definitions and parameters."""

from __future__ import annotations

from control.definitions.catalog import TaskCatalog
from control.events import EventHub
from control.prediction import BackgroundPredictor, Predictor
from control.services.context import Context
from control.services.definitions import DefinitionService
from control.services.runtime import RuntimeService
from control.services.tasks import TaskService
from control.settings import Settings
from control.stores.base import Stores

from dataclasses import dataclass

from rocketry import Rocketry


@dataclass(frozen=True)
class Services:
    tasks: TaskService
    definitions: DefinitionService
    runtime: RuntimeService
    context: Context


def build_services(settings: Settings, app: Rocketry, *, stores: Stores, events: EventHub) -> Services:
    """The services, with the tasks and parameters stored earlier applied to the session:
    code tasks get their edits back, runtime tasks are created again, and what no longer
    loads is kept aside as broken (the rest starts)."""
    session = app.session
    catalog = TaskCatalog(
        session=session,
        scheduler=session.scheduler,
        allowed_packages=settings.task_func_packages,
        commands_enabled=settings.command_tasks,
    )
    catalog.adopt_code_tasks()
    stored, parameters = stores.definitions.load()
    catalog.restore(stored)
    session.parameters.update(parameters)
    context = Context(
        session=session,
        scheduler=session.scheduler,
        stores=stores,
        catalog=catalog,
        predictor=Predictor(session),
        background_predictor=BackgroundPredictor(session),
        settings=settings,
        events=events,
        api_parameters=set(parameters),
    )
    tasks = TaskService(context)
    return Services(
        tasks=tasks,
        definitions=DefinitionService(context, tasks),
        runtime=RuntimeService(context),
        context=context,
    )
