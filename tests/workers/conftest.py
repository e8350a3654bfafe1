"""Celery tests: the real service, real workers, the real broker (RabbitMQ by default)."""

import pytest
from kombu import Connection

from tests.e2e.conftest import start  # noqa: F401  (the fixture)
from tests.utils.workers import BROKER_URL, CeleryWorker, broker_available, celery_env, new_queue


@pytest.fixture
def celery_up(tmp_path, start):  # noqa: F811
    """``celery_up(workers=1, broker=..., database=...)``: a service and its workers on a queue
    of their own; all stopped, and the queue deleted, after the test."""
    if not broker_available():
        pytest.skip(f"no Celery broker at {BROKER_URL}")
    workers: list[CeleryWorker] = []
    queues: list[str] = []

    def _up(
        *,
        workers_count: int = 1,
        broker: str = BROKER_URL,
        database: str | None = None,
        env=None,
        replicas=1,
        worker_broker: str | None = None,
    ):
        queue = new_queue()
        queues.append(queue)
        database = database or str(tmp_path / "service.db")
        service_env = {**celery_env(database=database, queue=queue, broker=broker), **(env or {})}
        services = [start(database=database, env=service_env) for _ in range(replicas)]
        # Workers reach the broker directly (the service may go through a forwarder).
        worker_env = celery_env(database=database, queue=queue, broker=worker_broker or BROKER_URL)
        started = [
            CeleryWorker(tmp_path, worker_env, name=f"w{i}-{queue[-8:]}") for i in range(workers_count)
        ]
        workers.extend(started)  # stopped after the test, even if one does not come up
        for worker in started:
            worker.start()
        return (services[0] if replicas == 1 else services), started

    yield _up
    for worker in workers:
        worker.stop()
    with Connection(BROKER_URL) as connection:  # test queues on other brokers expire with them
        for queue in queues:
            try:
                connection.default_channel.queue_delete(queue)
            except Exception:
                pass
