"""How answers read in a terminal: tables, times in local time, log records, changes."""

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any


def when(value: str | None) -> str:
    """An API time (ISO 8601, UTC) as local time to the second; ``-`` for none."""
    if not value:
        return "-"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns as wide as their widest cell, two spaces apart; the last one is not padded."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = []
    for row in [headers, *rows]:
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def task_rows(tasks: list[dict]) -> tuple[list[str], list[list[str]]]:
    headers = ["NAME", "STATUS", "EXECUTION", "DISABLED", "LAST RUN", "NEXT RUN", "START CONDITION"]
    rows = [
        [
            task["name"],
            task.get("status") or "-",
            task["execution"],
            "yes" if task["disabled"] else "",
            when(task.get("last_run")),
            when(task.get("next_run")),
            task["start_cond"],
        ]
        for task in sorted(tasks, key=lambda task: task["name"])
    ]
    return headers, rows


def details(fields: dict[str, Any]) -> str:
    """One ``name: value`` line per field, values that are not text as JSON."""
    width = max((len(name) for name in fields), default=0) + 1
    lines = []
    for name, value in fields.items():
        if name.endswith(("_run", "_success", "_fail", "_terminate", "_crash", "_at", "_since")):
            shown = when(value)
        elif isinstance(value, str):
            shown = value
        elif value is None:
            shown = "-"
        else:
            shown = json.dumps(value)
        lines.append(f"{name + ':':<{width}} {shown}")
    return "\n".join(lines)


def last_line(text: str | None) -> str:
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def message(data: dict) -> str:
    """A run record's message, unless it is only Rocketry's "Task 'x' status: 'y'"."""
    text = data.get("message") or ""
    return "" if text == f"Task '{data.get('task_name')}' status: '{data.get('action')}'" else text


def record(data: dict) -> str:
    """One run record (from ``/logs`` or the event stream) as one line."""
    runtime = data.get("runtime")
    summary = last_line(data.get("exc_text")) or message(data)
    parts = [
        when(data.get("created")),
        f"{data.get('task_name', ''):<16}",
        f"{data.get('action', ''):<9}",
        f"run {data.get('run_id') or '-'}",
        f"{runtime:.3f}s" if isinstance(runtime, int | float) else "",
        summary,
    ]
    return "  ".join(part for part in parts if part).rstrip()


def change(item: dict) -> str:
    """One line of an import's answer: what would change (or did), or why it cannot."""
    action, target = item["action"], item["target"]
    if action == "error":
        return f"error      {target}: {item.get('error')}"
    fields = ", ".join(
        f"{field}: {json.dumps(before)} -> {json.dumps(after)}"
        for field, (before, after) in item.get("changes", {}).items()
    )
    return f"{action:<10} {target}" + (f"  ({fields})" if fields and action == "update" else "")
