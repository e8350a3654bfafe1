"""The FastAPI application: its routers and error handlers over a ``SchedulerService``."""

from control.handlers import add_error_handlers
from control.routes import health, logs, session, tasks
from control.service import SchedulerService

from fastapi import FastAPI


def create_app(service: SchedulerService) -> FastAPI:
    app = FastAPI(
        title="Rocketry control plane",
        summary="Run, watch and change the tasks of a running Rocketry scheduler.",
        version="0.1.0",
    )
    app.state.service = service
    add_error_handlers(app)
    for module in (tasks, logs, session, health):
        app.include_router(module.router)
    return app
