"""The dashboard in a real browser (Debian's Chromium driven by Playwright) against the real server."""

from control.auth import digest

import json
import re

import httpx
import pytest

pytestmark = pytest.mark.slow


def row(page, name):
    return page.locator(f'tr[data-task="{name}"]')


def test_tasks_are_listed_and_a_run_is_seen_live(start, page):
    service = start()
    page.goto(f"http://127.0.0.1:{service.port}/")
    page.get_by_text("Live", exact=True).wait_for()
    for name in ("quick", "failing", "slow_async", "downstream"):
        row(page, name).wait_for()
    assert row(page, "downstream").locator(".condition-input").input_value() == "after task 'upstream'"
    row(page, "quick").get_by_role("button", name="Run quick now").click()
    row(page, "quick").locator(".status.success").wait_for()
    # The change came over the event stream: the page was not reloaded.
    assert row(page, "quick").locator(".last-run").inner_text() != "—"


def test_terminate_disable_and_enable_from_the_page(start, page):
    service = start()
    page.goto(f"http://127.0.0.1:{service.port}/")
    slow = row(page, "slow_async")
    slow.get_by_role("button", name="Run slow_async now").click()
    slow.locator(".status.run").wait_for()
    slow.get_by_role("button", name="Terminate slow_async").click()
    slow.locator(".status.terminate").wait_for()
    slow.get_by_role("button", name="Disable slow_async").click()
    slow.locator(".status.disabled").wait_for()
    assert service.task("slow_async")["disabled"] is True
    slow.get_by_role("button", name="Enable slow_async").click()
    slow.get_by_role("button", name="Disable slow_async").wait_for()
    assert service.task("slow_async")["disabled"] is False


def test_a_bad_condition_shows_the_parse_error_and_a_good_one_is_applied(start, page):
    service = start()
    page.goto(f"http://127.0.0.1:{service.port}/")
    quick = row(page, "quick")
    field = quick.get_by_label("Start condition of quick")
    field.fill("every banana")
    quick.get_by_role("button", name="Save").click()
    error = quick.get_by_role("alert")
    error.wait_for()
    assert "every banana" in error.inner_text()
    assert field.get_attribute("aria-invalid") == "true"
    assert service.task("quick")["start_cond"] == "false"
    field.fill("every 1 hour")
    quick.get_by_role("button", name="Save").click()
    quick.locator(".status.success").wait_for()  # never ran, so due at once
    assert service.task("quick")["start_cond"] == "every 1 hour"
    assert quick.locator(".next-run").inner_text() != "—"
    assert not error.is_visible()


def test_a_failed_run_shows_its_traceback_and_output(start, page):
    service = start()
    assert service.client.patch("/tasks/chatty", json={"parameters": {"fail": True}}).status_code == 200
    page.goto(f"http://127.0.0.1:{service.port}/")
    chatty = row(page, "chatty")
    chatty.get_by_role("button", name="Run chatty now").click()
    chatty.locator(".status.fail").wait_for()
    chatty.get_by_role("button", name="Show the history of chatty").click()
    traceback = page.locator(".records .traceback").first
    traceback.wait_for()
    assert "RuntimeError: chatty failed" in traceback.inner_text()
    page.locator(".records").get_by_role("button", name=re.compile("Show the output of run")).first.click()
    page.get_by_text("The run has ended.").wait_for()
    output = page.locator("#output-lines").inner_text()
    assert "line 0\nline 1\nline 2" in output
    assert "[log] WARNING tests.chatty: a warning from the task" in output
    assert "[stderr] to stderr" in output


def test_output_of_a_run_is_followed_live(start, page):
    service = start()
    page.goto(f"http://127.0.0.1:{service.port}/")
    service.client.patch("/tasks/ticker", json={"parameters": {"count": 6, "pause": 0.4}})
    row(page, "ticker").get_by_role("button", name="Run ticker now").click()
    row(page, "ticker").get_by_role("button", name="Show the history of ticker").click()
    page.locator(".records").get_by_role("button", name=re.compile("Show the output of run")).first.click()
    page.get_by_text("Following…").wait_for()
    # (The page's CSP forbids evaluating strings, so no wait_for_function here.)
    page.locator("#output-lines", has_text="tick 1").wait_for()
    assert "tick 5" not in page.locator("#output-lines").inner_text()  # still running
    page.get_by_text("The run has ended.").wait_for()
    assert "tick 5" in page.locator("#output-lines").inner_text()


def test_sign_in_with_a_token_then_act_with_csrf(start, page):
    token = "rcp_dashboard-operator"
    entry = {"name": "ops", "role": "operate", "digest": digest(token)}
    service = start(env={"SCHEDULER_TOKENS": json.dumps([entry])})
    page.goto(f"http://127.0.0.1:{service.port}/")
    page.get_by_label("API token").fill("rcp_wrong")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("That token is not valid.").wait_for()
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    quick = row(page, "quick")
    quick.wait_for()
    quick.get_by_role("button", name="Run quick now").click()
    quick.locator(".status.success").wait_for()
    cookie = next(c for c in page.context.cookies() if c["name"] == "rcp_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("API token").wait_for()


def test_empty_and_unreachable_states(start, page):
    service = start(packages="[]")
    page.goto(f"http://127.0.0.1:{service.port}/")
    page.get_by_text("No tasks yet.").wait_for()
    service.stop()
    page.get_by_text("Reconnecting…").wait_for()
    assert "down" in page.locator("#live").get_attribute("class").split()


def test_the_page_is_served_with_a_strict_content_security_policy(start):
    service = start()
    response = httpx.get(f"http://127.0.0.1:{service.port}/")
    assert response.status_code == 200
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert '<script src="/static/app.js" defer></script>' in response.text
    assert "http" not in response.text.split("<body>")[1]  # nothing from elsewhere
