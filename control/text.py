"""Text that can always be stored and sent: lone surrogates (which UTF-8 cannot encode) become escapes.

Python strings may hold lone surrogates (``"\\ud800"``: from a JSON escape, a file name
decoded with ``surrogateescape``, a task's own output). UTF-8 cannot encode them, so a
database driver, a JSON response or a WebSocket frame holding one raises. What the service
stores or sends is passed through ``storable`` first: such a character is written as the
six characters of its escape (``\\ud800``), which is clearly marked and loses nothing.
"""

from __future__ import annotations

from typing import Any


def storable(text: str) -> str:
    """``text``, with each lone surrogate written as its ``\\uXXXX`` escape."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def storable_json(value: Any) -> Any:
    """A JSON value (dicts, lists, strings...) with every string, keys included, made storable."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return {storable(str(key)): storable_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [storable_json(item) for item in value]
    return value


def first_unencodable(value: Any, path: tuple = ()) -> tuple | None:
    """Where in a JSON value the first string that UTF-8 cannot encode is (None if nowhere)."""
    if isinstance(value, str):
        return None if storable(value) is value else path
    if isinstance(value, dict):
        for key, item in value.items():
            if storable(key) is not key:
                return (*path, storable(key))
            found = first_unencodable(item, (*path, key))
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = first_unencodable(item, (*path, index))
            if found is not None:
                return found
    return None
