"""The Celery app of the service and of its workers, configured the same on both sides."""

from __future__ import annotations

from celery import Celery

RUN = "rocketry_control.run"  # the name of the Celery task that runs a task's function
GRACE = 5.0  # seconds past a run's timeout before the worker kills it outright


def make_app(broker: str, queue: str) -> Celery:
    app = Celery("rocketry_control", broker=broker, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,  # outcomes go to the database (control.workers.execute)
        task_default_queue=queue,
        # Acknowledged when a worker takes it: a run is never delivered again after it
        # began (a worker that dies mid-run leaves a crash, not a second run).
        task_acks_late=False,
        worker_prefetch_multiplier=1,
        # What a run prints is its output (captured per run), not the worker's log.
        worker_redirect_stdouts=False,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=2.0,
        # RabbitMQ confirms each run it accepted: a sent run is one the broker holds.
        broker_transport_options={"confirm_publish": True} if broker.startswith("amqp") else {},
    )
    return app
