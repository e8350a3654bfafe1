"""Regenerates docs/dashboard.png: the dashboard over the example tasks, with a failed run open.

.venv/bin/python docs/make_screenshot.py     (needs Debian's chromium)
"""

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.utils.service_process import ServiceProcess  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {"SCHEDULER_TASK_FUNC_PACKAGES": '["tasks"]', "SCHEDULER_BATCH_EXAMPLE": "true"}
        service = ServiceProcess(Path(tmp), packages='["tasks"]', env=env).start()
        try:
            service.wait_healthy()
            # Run the flaky task until one run fails, so the history shows a traceback.
            for _ in range(30):
                service.client.post("/tasks/flaky_sync/run")
                service.wait_task("flaky_sync", lambda t: not t["is_running"] and t["status"] != "run")
                if service.task("flaky_sync")["status"] == "fail":
                    break
            service.client.post("/tasks/long_job/run")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 1000})
                page.goto(f"http://127.0.0.1:{service.port}/")
                page.get_by_text("Live", exact=True).wait_for()
                page.get_by_role("button", name="Show the history of flaky_sync").click()
                page.locator(".records .traceback").first.wait_for()
                time.sleep(0.5)
                page.screenshot(path=str(ROOT / "docs" / "dashboard.png"), full_page=True)
                browser.close()
        finally:
            service.stop()


if __name__ == "__main__":
    main()
