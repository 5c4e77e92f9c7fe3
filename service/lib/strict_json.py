"""Strict JSON bodies: what a careless or hostile client sends is a 400, never a 500 or a traceback.

Quart decodes a JSON body with ``bytes.decode()`` and ``json.loads``: invalid
UTF-8 raises UnicodeDecodeError before parsing, a deeply nested body
(``[[[[...`` 100,000 levels) raises RecursionError, and a ``\\u0000`` escape
parses into a string Postgres cannot store. :class:`StrictRequest` answers
all three, for every route, with 400 ``invalid_json`` (the one error
shape), and :func:`parse_json_text` does the same for websocket frames.
"""

from __future__ import annotations

import json
from typing import Any

from quart import Request

from service.lib.api_error import APIError

MAX_JSON_DEPTH = 32
"""Deepest nesting of arrays and objects a request body or frame may have (no route needs more than 3)."""


class JSONRefused(ValueError):
    """A body or frame that is not acceptable JSON; the message says why (safe to show the client).

    ``kind`` is ``utf8``, ``syntax``, ``depth`` or ``nul``.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def check_json_value(value: Any) -> None:
    """JSONRefused when ``value`` (parsed JSON) nests deeper than MAX_JSON_DEPTH or holds a NUL character."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise JSONRefused("nul", "Strings may not contain NUL (\\u0000) characters.")
        elif isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise JSONRefused("depth", f"JSON may nest at most {MAX_JSON_DEPTH} levels deep.")
            if isinstance(item, dict):
                stack.extend((key, depth) for key in item)
                stack.extend((child, depth + 1) for child in item.values())
            else:
                stack.extend((child, depth + 1) for child in item)


def parse_json_text(raw: str | bytes) -> Any:
    """Parse UTF-8 JSON text strictly: JSONRefused for invalid UTF-8, bad JSON, deep nesting or NUL."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        value = json.loads(text)
    except UnicodeDecodeError as exc:
        raise JSONRefused("utf8", "The body is not valid UTF-8.") from exc
    except RecursionError as exc:
        raise JSONRefused("depth", f"JSON may nest at most {MAX_JSON_DEPTH} levels deep.") from exc
    except ValueError as exc:
        raise JSONRefused("syntax", "The body is not valid JSON.") from exc
    check_json_value(value)
    return value


class StrictRequest(Request):
    """Quart's Request whose ``get_json`` refuses invalid UTF-8, deep nesting and NUL with 400 invalid_json.

    With ``silent=True`` such a body reads as None, as any other unparsable
    body does.
    """

    async def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        if cache and self._cached_json[silent] is not Ellipsis:
            return self._cached_json[silent]
        if not (force or self.is_json):
            return None
        try:
            result = parse_json_text(await self.get_data(cache=cache, as_text=False))
        except JSONRefused as exc:
            if not silent:
                raise APIError(400, "invalid_json", str(exc)) from exc
            result = None
        if cache:
            self._cached_json[silent] = result
        return result
