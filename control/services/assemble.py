"""Builds the service layer over a Rocketry app, with the definitions and parameters stored
earlier applied to its session: code tasks get their edits back, runtime tasks are made
again, and what no longer loads is kept aside as broken (the rest starts)."""

from __future__ import annotations

from control.events import EventHub
from control.services.audit import AuditService
from control.services.builder import TaskBuilder
from control.services.catalog import TaskCatalog
from control.services.conditions import ConditionService
from control.services.definitions import DefinitionService
from control.services.history import HistoryService
from control.services.parameters import ParameterService
from control.services.replicas import ReplicaService
from control.services.session import SessionService
from control.services.tasks import TaskService
from control.services.views import TaskViews
from control.settings import Settings
from control.stores.base import Stores

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from rocketry import Rocketry


@dataclass(frozen=True)
class Services:
    tasks: TaskService
    definitions: DefinitionService
    parameters: ParameterService
    conditions: ConditionService
    history: HistoryService
    session: SessionService
    audit: AuditService
    events: EventHub
    views: TaskViews
    replicas: ReplicaService

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """What runs beside the API while it serves: the event hub on this loop, next runs
        worked out after start-up, the audit trail's pruning."""
        self.events.bind(asyncio.get_running_loop())
        self.replicas.start()
        background = [asyncio.create_task(self.views.warm()), asyncio.create_task(self.audit.keep_pruned())]
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            self.views.close()
            self.replicas.stop()


def build_services(settings: Settings, app: Rocketry, *, stores: Stores, events: EventHub) -> Services:
    session = app.session
    scheduler = session.scheduler
    builder = TaskBuilder(
        session, scheduler, allowed_packages=settings.task_func_packages, commands=settings.command_tasks
    )
    catalog = TaskCatalog(session, scheduler, builder=builder, definitions=stores.definitions, events=events)
    catalog.adopt_code_tasks()
    stored, parameters = stores.definitions.load()
    catalog.restore(stored)
    views = TaskViews(session, scheduler, catalog)
    parameter_service = ParameterService(
        session, scheduler, catalog=catalog, definitions=stores.definitions, stored=parameters
    )
    replicas = ReplicaService(
        session,
        scheduler,
        store=stores.coordination,
        replica=settings.replica_name(),
        events=events,
        definitions=stores.definitions,
        follow_task=catalog.follow,
        follow_parameters=parameter_service.follow,
    )
    tasks = TaskService(
        session, scheduler, catalog=catalog, views=views, definitions=stores.definitions, replicas=replicas
    )
    history = HistoryService(logs=stores.logs, output=stores.output, events=events, catalog=catalog)
    audit = AuditService(
        stores.audit, retention_days=settings.audit_retention_days, every=settings.retention_interval
    )
    return Services(
        tasks=tasks,
        definitions=DefinitionService(catalog=catalog, tasks=tasks, parameters=parameter_service),
        parameters=parameter_service,
        conditions=ConditionService(session, predictor=views.background),
        history=history,
        session=SessionService(
            session,
            scheduler,
            settings=settings,
            stores=stores,
            audit=audit,
            history=history,
            replicas=replicas,
        ),
        audit=audit,
        events=events,
        views=views,
        replicas=replicas,
    )
