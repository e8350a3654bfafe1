"""The e2e tests' one way to start the real service, and a real browser; everything started is stopped."""

import os
import shutil

import pytest

from tests.utils.service_process import ServiceProcess

CHROMIUM = os.environ.get("SCHEDULER_TEST_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps trying the closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


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


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright (its own browser download is not used)."""
    if not shutil.which(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh browser context and page; the test fails if the page raised an error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, errors
