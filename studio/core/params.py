"""Parsing `KEY=VALUE` parameter pairs from the command line into plain values.

Values are read JSON-ish, and the engine's parameter model validates them afterwards:

- decimal numbers become `int` or `float` (``3``, ``-0.5``, ``1e-3``);
- ``true``/``false`` (any case) become `bool`, ``null``/``none`` become `None`;
- a comma makes a list of such values (``1,2,3``; a trailing comma makes a one-item list);
- a value starting with ``[``, ``{`` or ``"`` is parsed as JSON (``"007"`` keeps a string);
- anything else stays a string.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from studio.core.errors import UsageError

_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)([eE][+-]?[0-9]+)?")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WORDS: dict[str, Any] = {"true": True, "false": False, "null": None, "none": None}


def parse_scalar(text: str) -> Any:
    """One value without commas: number, bool, null, or the text itself."""
    stripped = text.strip()
    if _INT.fullmatch(stripped):
        return int(stripped)
    if _FLOAT.fullmatch(stripped):
        return float(stripped)
    if stripped.lower() in _WORDS:
        return _WORDS[stripped.lower()]
    return text


def parse_value(text: str) -> Any:
    """One parameter value as typed on the command line (see the module docstring)."""
    if text[:1] in ("[", "{", '"'):
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise UsageError(f"Cannot read {text!r} as JSON: {err.msg}") from None
    if "," in text:
        parts = text.split(",")
        if parts[-1].strip() == "":
            parts.pop()
        return [parse_scalar(part.strip()) for part in parts]
    return parse_scalar(text)


def parse_param_pairs(pairs: Iterable[str]) -> dict[str, Any]:
    """``["sigma=2", "sizes=1,2"]`` -> ``{"sigma": 2, "sizes": [1, 2]}``.

    Raises `UsageError` for a pair without ``=``, a key that is not an identifier, or a key
    given twice.
    """
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep:
            raise UsageError(f"Parameter {pair!r} must look like KEY=VALUE")
        if not _KEY.fullmatch(key):
            raise UsageError(f"Parameter name {key!r} is not a valid name")
        if key in values:
            raise UsageError(f"Parameter {key!r} is given twice")
        values[key] = parse_value(raw)
    return values
