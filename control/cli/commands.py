"""The commands of ``python -m control.cli``: one click command per thing an operator does."""

from control.cli import render
from control.cli.client import ApiClient, ApiError, Event
from control.cli.exits import EXIT_CODES_HELP, CliError, ExitCode

import json
import os
import sys
from collections.abc import Iterator
from typing import Any, TextIO

import click
import httpx

# The actions of a run, the kinds of the event stream that ``logs`` follows.
RUN_ACTIONS = ("run", "success", "fail", "terminate", "inaction", "crash")
# How a run ended, and whether that is a failure of ``run --wait``.
FAILED = {"fail", "terminate", "crash"}
RUN_ID_WAIT = 5.0  # seconds ``run`` (without --wait) waits to learn the new run's id


class Cli:
    """What every command needs: the client (opened on first use) and how to answer."""

    def __init__(self, url: str, token: str | None, timeout: float, as_json: bool):
        self.url, self.token, self.timeout, self.json = url, token, timeout, as_json
        self._client: ApiClient | None = None

    @property
    def client(self) -> ApiClient:
        if self._client is None:
            self._client = ApiClient(self.url, self.token, self.timeout)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def emit(self, response: httpx.Response, human: str) -> None:
        """The API's JSON as it came with --json, else the human text."""
        click.echo(response.text if self.json else human)


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.find_object(Cli).json = True


# ``--json`` is taken before or after the command (``--json tasks list``, ``tasks list --json``).
json_option = click.option(
    "--json",
    is_flag=True,
    expose_value=False,
    callback=_set_json,
    help="Print the API's JSON as it is (JSON lines when following), for scripts.",
)
pass_cli = click.make_pass_decorator(Cli)


@click.group(epilog=EXIT_CODES_HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--url",
    envvar="SCHEDULER_URL",
    default="http://127.0.0.1:8000",
    show_default=True,
    help="The service's address [env: SCHEDULER_URL].",
)
@click.option(
    "--token",
    envvar="SCHEDULER_TOKEN",
    help="An API token (python -m control.tokens makes one) [env: SCHEDULER_TOKEN].",
)
@click.option(
    "--request-timeout",
    "timeout",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds to wait for an answer (streams wait as long as they run).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON as it is, for scripts.")
@click.pass_context
def cli(ctx: click.Context, url: str, token: str | None, timeout: float, as_json: bool) -> None:
    """Watch and steer the scheduler through its HTTP API.

    Times are shown in local time. Errors are one line on stderr.
    """
    ctx.obj = Cli(url, token or None, timeout, as_json)
    ctx.call_on_close(ctx.obj.close)


# -- tasks --------------------------------------------------------------------------------


@cli.group()
def tasks() -> None:
    """List tasks, or show one."""


@tasks.command("list")
@json_option
@pass_cli
def list_tasks(cli: Cli) -> None:
    """Every task: status, execution, last and next run, start condition."""
    response = cli.client.get("/tasks")
    cli.emit(response, render.table(*render.task_rows(response.json()["data"])))


@tasks.command("show")
@click.argument("name")
@json_option
@pass_cli
def show_task(cli: Cli, name: str) -> None:
    """One task, every field."""
    response = cli.client.get(f"/tasks/{name}")
    cli.emit(response, render.details(response.json()))


# -- running ------------------------------------------------------------------------------


class Param(click.ParamType):
    """``KEY=VALUE``, the value read as JSON when it parses (3, true, [1,2], "x") and as text otherwise."""

    name = "KEY=VALUE"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, Any]:
        if isinstance(value, tuple):
            return value
        key, equals, text = value.partition("=")
        if not equals or not key:
            self.fail(f"{value!r} is not KEY=VALUE", param, ctx)
        try:
            return key, json.loads(text)
        except ValueError:
            return key, text


@cli.command()
@click.argument("name")
@click.option(
    "--param", "-p", "params", type=Param(), multiple=True, help="A parameter of this run (repeat)."
)
@click.option(
    "--wait", is_flag=True, help="Wait for the outcome; exit 8 if the run fails, is terminated or crashes."
)
@json_option
@pass_cli
def run(cli: Cli, name: str, params: tuple[tuple[str, Any], ...], wait: bool) -> None:
    """Start a task now and say which run it is.

    With --wait, follow the run to its end: a failure's traceback goes to stderr. With --json,
    the run request's answer, or with --wait the run's last record (as /events gives it).
    """
    client = cli.client
    body = dict(params) or None
    # Subscribed before asking, so the run's records cannot pass unseen.
    with client.stream(
        "/events", params={"task": name, "kind": RUN_ACTIONS}, read_timeout=None if wait else RUN_ID_WAIT
    ) as events:
        response = client.post(f"/tasks/{name}/run", json=body)
        accepted = response.json()
        if not wait:
            if cli.json:
                click.echo(response.text)
                return
            run_id = None if accepted["detail"].startswith("queued") else _new_run_id(events, name)
            click.echo(f"{name}: {accepted['detail']}" + (f" (run {run_id})" if run_id else ""))
            return
        outcome = _outcome(cli, events, name)
    _report(cli, name, outcome)


def _new_run_id(events: Iterator[Event], name: str) -> str | None:
    try:
        for event in events:
            if event.kind == "run" and event.data.get("task_name") == name:
                return event.data.get("run_id")
    except httpx.ReadTimeout:
        return None
    return None


def _outcome(cli: Cli, events: Iterator[Event], name: str) -> dict:
    """The last record of the first run of ``name`` that starts on the stream."""
    run_id = None
    for event in events:
        if event.kind == "overflow":
            raise CliError("fell behind the event stream; the run's outcome is in `logs`", ExitCode.ERROR)
        data = event.data
        if data.get("task_name") != name:
            continue
        if run_id is None:
            if event.kind == "run":
                run_id = data.get("run_id")
                if not cli.json:
                    click.echo(f"{name}: run {run_id} started")
        elif event.kind != "run" and data.get("run_id") == run_id:
            return data
    raise CliError("the event stream ended before the run did (the service stopped?)", ExitCode.UNREACHABLE)


def _report(cli: Cli, name: str, outcome: dict) -> None:
    action, run_id = outcome["action"], outcome.get("run_id")
    if cli.json:
        click.echo(json.dumps(outcome))
    elif action == "success":
        runtime = outcome.get("runtime")
        took = f" in {runtime:.3f} s" if isinstance(runtime, int | float) else ""
        click.echo(f"{name}: run {run_id} succeeded{took}")
    elif action == "inaction":
        click.echo(f"{name}: run {run_id} ended doing nothing (inaction)")
    if action in FAILED:
        if not cli.json and outcome.get("exc_text"):
            click.echo(outcome["exc_text"].rstrip("\n"), err=True)
        reason = f": {render.message(outcome)}" if render.message(outcome) else ""
        verb = {"fail": "failed", "terminate": "was terminated", "crash": "crashed"}[action]
        raise CliError(f"{name}: run {run_id} {verb}{reason}", ExitCode.TASK_FAILED)


@cli.command()
@click.argument("name")
@json_option
@pass_cli
def terminate(cli: Cli, name: str) -> None:
    """Terminate the task's running runs."""
    response = cli.client.post(f"/tasks/{name}/terminate")
    cli.emit(response, f"{name}: {response.json()['detail']}")


@cli.command()
@click.argument("name")
@json_option
@pass_cli
def enable(cli: Cli, name: str) -> None:
    """Let the task start again when its condition holds."""
    response = cli.client.post(f"/tasks/{name}/enable")
    cli.emit(response, f"{name}: enabled")


@cli.command()
@click.argument("name")
@click.option("--reason", help="Kept in the task's history.")
@json_option
@pass_cli
def disable(cli: Cli, name: str, reason: str | None) -> None:
    """Stop the task from starting (it can still be run by hand)."""
    response = cli.client.post(f"/tasks/{name}/disable", json={"reason": reason} if reason else None)
    cli.emit(response, f"{name}: disabled")


class Timeout(click.ParamType):
    """Seconds, or ``default`` (sent as null: the service's default timeout)."""

    name = "SECONDS|default"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float | str:
        if isinstance(value, float) or value == DEFAULT_TIMEOUT:
            return value
        if str(value).lower() in (DEFAULT_TIMEOUT, "null", "none"):
            return DEFAULT_TIMEOUT
        try:
            return float(value)
        except ValueError:
            self.fail(f"{value!r} is neither a number of seconds nor 'default'", param, ctx)


DEFAULT_TIMEOUT = "default"


@cli.command()
@click.argument("name")
@click.option("--start-cond", help="When it starts, e.g. 'every 10 minutes'.")
@click.option("--end-cond", help="When a running run is terminated.")
@click.option("--timeout", type=Timeout(), help="Seconds a run may take, or 'default'.")
@click.option("--priority", type=int)
@click.option("--execution", type=click.Choice(["async", "thread", "process", "celery"]))
@click.option("--description")
@json_option
@pass_cli
def edit(
    cli: Cli,
    name: str,
    start_cond: str | None,
    end_cond: str | None,
    timeout: float | str | None,
    priority: int | None,
    execution: str | None,
    description: str | None,
) -> None:
    """Change a task's fields; all or nothing, kept across restarts. Prints the task as it is now."""
    fields = {
        "start_cond": start_cond,
        "end_cond": end_cond,
        "priority": priority,
        "execution": execution,
        "description": description,
    }
    changes = {field: value for field, value in fields.items() if value is not None}
    if timeout is not None:
        changes["timeout"] = None if timeout == DEFAULT_TIMEOUT else timeout
    if not changes:
        raise click.UsageError("nothing to change: give at least one of the options")
    response = cli.client.request("PATCH", f"/tasks/{name}", json=changes)
    cli.emit(response, render.details(response.json()))


# -- history and output -------------------------------------------------------------------


@cli.command()
@click.option("--task", "-t", "task_names", multiple=True, help="Only this task (repeat for several).")
@click.option(
    "--limit", "-n", type=click.IntRange(1, 1000), default=20, show_default=True, help="Records to show."
)
@click.option("--follow", "-f", is_flag=True, help="Then print each new record as it happens (Ctrl+C stops).")
@json_option
@pass_cli
def logs(cli: Cli, task_names: tuple[str, ...], limit: int, follow: bool) -> None:
    """The latest run records, oldest first: time, task, action, run, runtime, and the
    message or the failure's last line (--json has the whole traceback)."""
    client = cli.client
    query = {"task": task_names, "limit": limit}
    if not follow:
        response = client.get("/logs", params=query)
        records = list(reversed(response.json()["data"]))
        cli.emit(response, "\n".join(render.record(record) for record in records))
        return
    # Subscribed first, then the page read: a record in both is shown once.
    with client.stream("/events", params={"task": task_names, "kind": RUN_ACTIONS}) as events:
        records = list(reversed(client.get("/logs", params=query).json()["data"]))
        shown = {_key(record) for record in records}
        for record in records:
            _echo_record(cli, {key: value for key, value in record.items() if key != "id"})
        for event in events:
            if event.kind == "overflow":
                raise CliError("fell behind the event stream; start again", ExitCode.ERROR)
            if _key(event.data) in shown:
                shown.discard(_key(event.data))
                continue
            _echo_record(cli, event.data)
    raise CliError("the event stream ended (the service stopped?)", ExitCode.UNREACHABLE)


def _key(record: dict) -> tuple:
    return record.get("task_name"), record.get("run_id"), record.get("action"), record.get("created")


def _echo_record(cli: Cli, data: dict) -> None:
    click.echo(json.dumps(data) if cli.json else render.record(data))


@cli.command()
@click.argument("ids", nargs=-1, required=True, metavar="[TASK] RUN_ID")
@click.option("--follow", "-f", is_flag=True, help="Go on printing what it writes until the run ends.")
@json_option
@pass_cli
def output(cli: Cli, ids: tuple[str, ...], follow: bool) -> None:
    """What a run wrote (prints to stdout and stderr, logging), in order.

    RUN_ID is in `run`'s answer and in `logs`; the run's task is looked up unless given.
    """
    if len(ids) > 2:
        raise click.UsageError("give RUN_ID, or TASK RUN_ID")
    task, run_id = ids if len(ids) == 2 else (_task_of_run(cli, ids[0]), ids[0])
    path = f"/tasks/{task}/runs/{run_id}/output"
    if not follow:
        response = cli.client.get(path)
        answer = response.json()
        cli.emit(response, "".join(_text(line) for line in answer["lines"]).rstrip("\n"))
        if not cli.json and not answer["finished"]:
            click.echo("(the run goes on: --follow to follow it)", err=True)
        return
    with cli.client.stream(path, params={"follow": "true"}) as events:
        for event in events:
            if event.kind == "end":
                return
            if event.kind == "line":
                if cli.json:
                    click.echo(json.dumps(event.data))
                else:
                    click.echo(_text(event.data), nl=False)
    raise CliError("the output stream ended before the run did (the service stopped?)", ExitCode.UNREACHABLE)


def _task_of_run(cli: Cli, run_id: str) -> str:
    records = cli.client.get("/logs", params={"run_id": run_id, "limit": 1}).json()["data"]
    if not records:
        raise CliError(f"not found: no run '{run_id}' in the log", ExitCode.NOT_FOUND)
    return records[0]["task_name"]


def _text(line: dict) -> str:
    text = line["text"]
    return text if text.endswith("\n") else text + "\n"


# -- definitions, session -----------------------------------------------------------------


@cli.group()
def definitions() -> None:
    """Export or import every definition made through the API (needs the admin role)."""


@definitions.command("export")
@click.argument("file", type=click.File("w"), default="-")
@pass_cli
def export_definitions(cli: Cli, file: TextIO) -> None:
    """Write the definitions document to FILE (default: stdout)."""
    document = cli.client.get("/definitions").json()
    file.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    if file is not sys.stdout and not cli.json:
        click.echo(
            f"exported {len(document.get('runtime_tasks', []))} runtime tasks, "
            f"{len(document.get('code_task_edits', {}))} code task edits and "
            f"{len(document.get('parameters', {}))} parameters to {file.name}",
            err=True,
        )


@definitions.command("import")
@click.argument("file", type=click.File("r"))
@click.option("--dry-run", is_flag=True, help="Only say what would change.")
@json_option
@pass_cli
def import_definitions(cli: Cli, file: TextIO, dry_run: bool) -> None:
    """Create or update the tasks and parameters of FILE (`-`: stdin); with any error, nothing
    is applied. Prints each task and parameter with what happens to it."""
    try:
        document = json.load(file)
    except ValueError as exc:
        raise CliError(f"{file.name} is not JSON: {exc}", ExitCode.INVALID) from exc
    params = {"dry_run": "true"} if dry_run else None
    try:
        response = cli.client.post("/definitions/import", json=document, params=params)
    except ApiError as error:
        # A refused import answers with what each item would do and the errors.
        if error.status == 422 and isinstance(error.body, dict) and "changes" in error.body:
            click.echo(json.dumps(error.body) if cli.json else _changes(error.body))
            errors = sum(item["action"] == "error" for item in error.body["changes"])
            raise CliError(
                f"import refused: {errors} error(s); nothing was applied", ExitCode.INVALID
            ) from None
        raise
    answer = response.json()
    done = "dry run: nothing was applied" if answer["dry_run"] else "applied"
    cli.emit(response, _changes(answer) + f"\n{done}")


def _changes(answer: dict) -> str:
    return "\n".join(render.change(item) for item in answer["changes"]) or "(nothing in the document)"


@cli.command()
@json_option
@pass_cli
def session(cli: Cli) -> None:
    """The scheduler's state, uptime, task counts, role and store."""
    response = cli.client.get("/session")
    info = response.json()
    store = info.get("store") or {}
    config = info.get("config") or {}
    uptime = info.get("uptime_seconds")
    summary = {
        "state": info.get("state"),
        "started_at": info.get("started_at"),
        "uptime": f"{uptime:.0f} s" if isinstance(uptime, int | float) else None,
        "tasks": info.get("task_count"),
        "running": info.get("running_count"),
        "role": info.get("role"),
        "replica": info.get("replica"),
        "leader": info.get("leader"),
        "store": f"{store.get('status')} ({store.get('pending')} pending, {store.get('lost')} lost)",
        "database": config.get("database"),
        "event_subscribers": info.get("event_subscribers"),
        "cycles": info.get("cycles"),
    }
    cli.emit(response, render.details(summary))


@cli.command()
@json_option
@pass_cli
def shutdown(cli: Cli) -> None:
    """Stop the service: running tasks are terminated, then it exits."""
    response = cli.client.post("/session/shutdown")
    cli.emit(response, response.json().get("detail", "shutting down"))


def main() -> None:
    """Run the command line; errors end it with one line on stderr and their exit code."""
    try:
        code = cli.main(prog_name="python -m control.cli", standalone_mode=False)
    except CliError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(error.code)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except click.Abort:
        sys.exit(130)  # Ctrl+C, as a shell reports SIGINT
    except BrokenPipeError:
        # The reader left (``| head``): say nothing more, and let no flush at exit complain.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(ExitCode.ERROR)
    sys.exit(code if isinstance(code, int) else ExitCode.OK)
