"""Every command of ``python -m control.cli`` against one real, open service: what it prints
and the exit code it ends with."""

import json
import re
import signal

import pytest

from tests.cli.conftest import Cli, serve
from tests.utils.service_process import free_port

pytestmark = pytest.mark.slow

RUN_ID = re.compile(r"run ([0-9a-f]{32})")


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    service = serve(tmp_path_factory.mktemp("cli"))
    yield service
    service.stop()


@pytest.fixture(scope="module")
def cli(service):
    return Cli(f"http://127.0.0.1:{service.port}")


def run_id_in(text: str) -> str:
    match = RUN_ID.search(text)
    assert match, text
    return match.group(1)


def test_tasks_list_is_a_table_and_json_is_the_api_answer(cli):
    listed = cli("tasks", "list")
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split()[:3] == ["NAME", "STATUS", "EXECUTION"]
    quick = next(row for row in rows if row.split()[0] == "quick")
    assert "async" in quick and quick.rstrip().endswith("false")  # its start condition
    as_json = cli("--json", "tasks", "list")
    answer = json.loads(as_json.stdout)
    assert answer["count"] == len(answer["data"]) == len(rows)
    # --json is taken after the command too.
    assert json.loads(cli("tasks", "list", "--json").stdout) == answer


def test_tasks_show(cli):
    shown = cli("tasks", "show", "quick")
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"^target:\s+tests\.support_tasks\.probes:quick$", shown.stdout, re.M)
    assert re.search(r"^description:\s+Returns at once\.$", shown.stdout, re.M)
    assert json.loads(cli("tasks", "show", "quick", "--json").stdout)["name"] == "quick"


def test_run_wait_succeeds_with_exit_0(cli):
    done = cli("run", "quick", "--wait")
    assert done.returncode == 0, done.stderr
    run_id = run_id_in(done.stdout)
    assert f"quick: run {run_id} started" in done.stdout
    assert f"quick: run {run_id} succeeded in" in done.stdout


def test_run_wait_fails_with_its_traceback_and_exit_8(cli):
    failed = cli("run", "failing", "--wait")
    assert failed.returncode == 8, failed.stderr
    assert "Traceback (most recent call last)" in failed.stderr
    assert "ValueError: boom from the failing task" in failed.stderr
    assert re.search(r"^error: failing: run [0-9a-f]{32} failed$", failed.stderr, re.M)


def test_run_wait_json_is_the_outcome_record(cli):
    done = cli("--json", "run", "failing", "--wait")
    assert done.returncode == 8
    outcome = json.loads(done.stdout)
    assert outcome["action"] == "fail" and "boom" in outcome["exc_text"]


def test_run_with_parameters(cli):
    done = cli("run", "chatty", "--param", "lines=5", "-p", "fail=false", "--wait")
    assert done.returncode == 0, done.stderr
    written = cli("output", "chatty", run_id_in(done.stdout))
    assert cli("output", run_id_in(done.stdout)).stdout == written.stdout  # the task looked up
    assert written.returncode == 0, written.stderr
    assert written.stdout.splitlines() == [
        *(f"line {i}" for i in range(5)),
        "WARNING tests.chatty: a warning from the task",
        "to stderr",
    ]
    # A value is read as JSON when it parses, as text otherwise: "x" is no int.
    refused = cli("run", "quick", "-p", "n=x")
    assert refused.returncode == 7
    assert refused.stderr.strip() == (
        "error: invalid (422): parameters: task 'quick': parameter n: Input should be a valid integer"
    )
    bounded = cli("run", "typed", "-p", "count=1000")
    assert bounded.returncode == 7 and "less than or equal to 100" in bounded.stderr


def test_run_without_wait_says_which_run(cli, service):
    started = cli("run", "quick")
    assert started.returncode == 0, started.stderr
    assert started.stdout.startswith("quick: run requested (run ")
    run_id = run_id_in(started.stdout)
    assert any(record["run_id"] == run_id for record in service.logs(task="quick"))


def test_terminate_a_running_task(cli, running):
    waiting = running(cli, "run", "slow_async", "--wait")
    run_id = run_id_in(waiting.expect("started"))
    terminated = cli("terminate", "slow_async")
    assert terminated.returncode == 0, terminated.stderr
    assert terminated.stdout.strip() == "slow_async: termination requested"
    assert waiting.wait() == 8
    assert f"error: slow_async: run {run_id} was terminated" in waiting.stderr()


def test_conflicts_exit_6(cli, running):
    not_running = cli("terminate", "quick")
    assert not_running.returncode == 6
    assert not_running.stderr.strip() == "error: conflict (409): Task 'quick' is not running"
    napping = running(cli, "run", "nap", "-p", "seconds=30", "--wait")
    napping.expect("started")
    again = cli("run", "nap")
    assert again.returncode == 6 and "already running" in again.stderr
    assert cli("terminate", "nap").returncode == 0
    assert napping.wait() == 8


def test_unknown_tasks_and_runs_exit_5(cli):
    for args in (["tasks", "show", "nope"], ["run", "nope", "--wait"], ["enable", "nope"]):
        missing = cli(*args)
        assert missing.returncode == 5, (args, missing.stderr)
        assert missing.stderr.strip() == "error: not found (404): Task 'nope' not found"
    no_run = cli("output", "quick", "0" * 32)
    assert no_run.returncode == 5 and f"has no run '{'0' * 32}'" in no_run.stderr
    unknown = cli("output", "0" * 32)
    assert unknown.returncode == 5 and f"no run '{'0' * 32}' in the log" in unknown.stderr


def test_disable_and_enable(cli, service):
    disabled = cli("disable", "slow_process", "--reason", "maintenance")
    assert (disabled.returncode, disabled.stdout.strip()) == (0, "slow_process: disabled")
    row = next(line for line in cli("tasks", "list").stdout.splitlines() if line.startswith("slow_process "))
    assert row.split()[:4] == ["slow_process", "-", "process", "yes"]
    assert service.task("slow_process")["disabled"] is True
    enabled = cli("enable", "slow_process")
    assert (enabled.returncode, enabled.stdout.strip()) == (0, "slow_process: enabled")
    assert service.task("slow_process")["disabled"] is False


def test_edit(cli, service):
    edited = cli(
        "edit", "short_process", "--start-cond", "every 10 hours", "--timeout", "5", "--priority", "2",
        "--description", "edited from the command line",
    )  # fmt: skip
    assert edited.returncode == 0, edited.stderr
    assert re.search(r"^start_cond:\s+every 10 hours$", edited.stdout, re.M)
    task = service.task("short_process")
    assert (task["start_cond"], task["timeout"], task["priority"]) == ("every 10 hours", 5.0, 2)
    assert task["description"] == "edited from the command line"
    reset = cli("edit", "short_process", "--timeout", "default", "--json")
    assert json.loads(reset.stdout)["timeout"] is None
    unparsable = cli("edit", "short_process", "--start-cond", "every blah")
    assert unparsable.returncode == 7
    assert unparsable.stderr.startswith(
        "error: invalid (422): start_cond: cannot parse condition 'every blah'"
    )
    assert service.task("short_process")["start_cond"] == "every 10 hours"  # all or nothing
    nothing = cli("edit", "short_process")
    assert nothing.returncode == 2 and "nothing to change" in nothing.stderr


def test_logs_oldest_first(cli):
    done = cli("run", "upstream", "--wait")
    run_id = run_id_in(done.stdout)
    logs = cli("logs", "--task", "upstream", "--limit", "2")
    assert logs.returncode == 0, logs.stderr
    started, succeeded = logs.stdout.splitlines()
    assert started.split()[2:5] == ["upstream", "run", "run"] and run_id in started
    assert succeeded.split()[2:4] == ["upstream", "success"] and run_id in succeeded
    assert cli("run", "failing", "--wait").returncode == 8
    failed = cli("logs", "-t", "failing", "-n", "1")
    assert failed.stdout.rstrip().endswith("ValueError: boom from the failing task")
    page = json.loads(cli("logs", "-t", "upstream", "-n", "2", "--json").stdout)
    assert [record["action"] for record in page["data"]] == ["success", "run"]  # the API's order


def test_logs_follow(cli, running):
    first = run_id_in(cli("run", "downstream", "--wait").stdout)
    follower = running(cli, "logs", "--task", "downstream", "-n", "1", "--follow")
    # The page is read after the stream is subscribed: once it is shown, nothing is missed.
    assert first in follower.expect("success")
    second = run_id_in(cli("run", "downstream", "--wait").stdout)
    assert second in follower.expect(" run ")
    assert second in follower.expect("success")
    follower.process.send_signal(signal.SIGINT)  # Ctrl+C, to its own PID
    assert follower.wait() == 130
    assert "Traceback" not in follower.stderr()
    assert [line for line in follower.seen if first in line] == [follower.seen[0]]  # shown once


def test_logs_follow_json_lines(cli, running):
    assert cli("run", "failing", "--wait").returncode == 8  # a record for the page
    follower = running(cli, "--json", "logs", "-t", "failing", "-n", "1", "-f")
    follower.expect('"failing"')  # the page is shown: the stream is subscribed
    cli("run", "failing")
    record = json.loads(follower.expect('"fail"'))
    assert record["kind"] == "fail" and "boom" in record["exc_text"]


def test_output_follow_until_the_run_ends(cli, running):
    started = cli("run", "ticker", "-p", "count=15", "-p", "pause=0.1")
    run_id = run_id_in(started.stdout)
    follower = running(cli, "output", "ticker", run_id, "--follow")
    # It ends on its own when the run does, having printed every line once.
    assert follower.wait() == 0
    assert follower.rest() == [f"tick {i}" for i in range(15)]


def test_definitions_export_then_import_dry_run(cli, service, tmp_path):
    assert cli("edit", "typed", "--priority", "7").returncode == 0
    backup = tmp_path / "definitions.json"
    exported = cli("definitions", "export", str(backup))
    assert exported.returncode == 0, exported.stderr
    document = json.loads(backup.read_text())
    assert document["code_task_edits"]["typed"] == {"priority": 7}
    assert json.loads(cli("definitions", "export").stdout) == document  # to stdout
    document["code_task_edits"]["typed"]["priority"] = 9
    backup.write_text(json.dumps(document))
    dry = cli("definitions", "import", str(backup), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "update     typed  (priority: 7 -> 9)" in dry.stdout.splitlines()
    assert dry.stdout.splitlines()[-1] == "dry run: nothing was applied"
    assert service.task("typed")["priority"] == 7
    assert json.loads(cli("--json", "definitions", "import", str(backup), "--dry-run").stdout)["dry_run"]


def test_an_import_with_errors_applies_nothing_and_exits_7(cli, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"code_task_edits": {"nope": {"priority": 1}, "typed": {"priority": 3}}}))
    refused = cli("definitions", "import", str(bad))
    assert refused.returncode == 7
    assert any(line.startswith("error      nope:") for line in refused.stdout.splitlines())
    assert refused.stderr.strip() == "error: import refused: 1 error(s); nothing was applied"
    not_json = tmp_path / "not.json"
    not_json.write_text("{")
    assert cli("definitions", "import", str(not_json)).returncode == 7


def test_session(cli):
    shown = cli("session")
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"^state:\s+running$", shown.stdout, re.M)
    assert re.search(r"^role:\s+leader$", shown.stdout, re.M)
    assert json.loads(cli("session", "--json").stdout)["state"] == "running"


def test_an_unreachable_service_exits_3():
    url = f"http://127.0.0.1:{free_port()}"
    for args in (["tasks", "list"], ["logs", "--follow"], ["run", "quick", "--wait"]):
        unreachable = Cli(url)(*args)
        assert unreachable.returncode == 3, (args, unreachable.stderr)
        assert unreachable.stderr.startswith(f"error: cannot reach the service at {url} (")
        assert unreachable.stdout == ""


def test_help_names_the_exit_codes(cli):
    shown = cli("--help")
    assert shown.returncode == 0
    for code in ("3  the service cannot be reached", "4  unauthorised", "5  not found", "8  run --wait"):
        assert code in shown.stdout
