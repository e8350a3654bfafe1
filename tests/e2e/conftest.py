"""The e2e tests' one way to start the real service; everything a test starts is stopped."""

import pytest

from tests.utils.service_process import ServiceProcess


@pytest.fixture
def start(tmp_path):
    """``start(**kwargs)`` runs ``python main.py`` (see ServiceProcess) and, unless
    ``healthy=False``, waits until it answers /health."""
    started: list[ServiceProcess] = []

    def _start(*, healthy: bool = True, **kwargs) -> ServiceProcess:
        service = ServiceProcess(tmp_path, **kwargs).start()
        started.append(service)
        if healthy:
            service.wait_healthy()
        return service

    yield _start
    for service in started:
        service.stop()
