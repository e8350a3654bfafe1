"""Reading a Server-Sent Events response as a client does."""

import json


def read_events(response, count, *, kinds=None):
    """The next ``count`` events of a Server-Sent Events response, or of an iterator over its
    lines (to read on later), of ``kinds`` if given."""
    events, current = [], {}
    for line in response.iter_lines() if hasattr(response, "iter_lines") else response:
        if line.startswith(":"):
            continue
        if not line:
            if current:
                if kinds is None or current["event"] in kinds:
                    events.append(current)
                current = {}
                if len(events) == count:
                    return events
            continue
        field, _, value = line.partition(": ")
        current[field] = json.loads(value) if field == "data" else value
    return events
