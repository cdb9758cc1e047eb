"""report.json's published JSON Schema (``report.schema.json``), and the check every reader
runs before it looks at a report.

The schema is a file of the package so that other tools can validate reports with any JSON
Schema implementation; this module checks the part of JSON Schema 2020-12 the file uses
(``type``, ``const``, ``enum``, ``properties``, ``required``, ``additionalProperties``,
``items``, ``minItems``, ``maxItems``, ``minimum``, ``if``/``then`` and local ``$ref``), so
that reading a report needs no extra dependency. The first problem found is returned as one
line naming the field by its path, e.g. ``studies[0].variants[2].reference``.
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from importlib import resources
from typing import Any, cast

SCHEMA_FILE = "report.schema.json"
# Deeper than any report the plugin writes (its free-form tables are a few levels deep), and
# far below the depth at which Python's recursion gives out in the readers.
MAX_DEPTH = 32


@lru_cache(maxsize=1)
def report_schema() -> dict[str, Any]:
    """The published schema, as a dict."""
    text = resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    return cast("dict[str, Any]", json.loads(text))


def schema_problem(document: Any) -> str | None:
    """The first way ``document`` breaks report.json's schema, as one line naming the field,
    or None when it conforms."""
    too_deep = _too_deep(document)
    if too_deep is not None:
        return f"{too_deep}: nested more than {MAX_DEPTH} levels deep"
    schema = report_schema()
    problem = _check(document, schema, schema, "")
    if problem is None:
        return None
    path, _, rest = problem.partition(": ")
    entry = _entry_named(document, path)
    return f"{path} ({entry}): {rest}" if entry else problem


def _entry_named(document: Any, path: str) -> str | None:
    """What the entry at the start of ``path`` is about (study, variant, metric), so that a
    problem deep in a long list is found without counting."""
    match = re.match(r"(results|set_results|cases)\[(\d+)\]", path)
    study_match = re.match(r"studies\[(\d+)\](?:\.variants\[(\d+)\])?", path)
    try:
        if match:
            entry = document[match.group(1)][int(match.group(2))]
        elif study_match:
            study = document["studies"][int(study_match.group(1))]
            entry = study
            if study_match.group(2) is not None:
                entry = {"study": study["study"], **study["variants"][int(study_match.group(2))]}
        else:
            return None
    except (KeyError, IndexError, TypeError):
        return None
    if not isinstance(entry, dict):
        return None
    names: list[Any] = [entry.get(k) for k in ("study", "variant", "metric")]
    names = [n for n in names if isinstance(n, str)]
    return " ".join(names) or None


def _too_deep(document: Any) -> str | None:
    """The path of a value nested deeper than MAX_DEPTH, or None (without recursion, so that
    a hostile document cannot exhaust the stack here either)."""
    stack = [(document, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            return path or "top level"
        if isinstance(value, dict):
            stack.extend((v, _key_path(path, k), depth + 1) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value))
    return None


def _key_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else str(key)


_TYPE_NAMES = {
    "object": "an object",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


def _is_type(value: Any, name: str) -> bool:
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if name == "number":
        return True
    # JSON Schema's integer is a number with no fractional part (so 2.0 is one).
    return isinstance(value, int) or (math.isfinite(value) and float(value).is_integer())


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"report schema: only local references are supported, got {ref!r}")
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        schema = target
    return schema


def _check(value: Any, schema: dict[str, Any], root: dict[str, Any], path: str) -> str | None:
    schema = _resolve(schema, root)
    where = path or "top level"
    if "const" in schema and not _equal(value, schema["const"]):
        return f"{where}: got {_shown(value)}; expected {json.dumps(schema['const'])}"
    if "enum" in schema and not any(_equal(value, option) for option in schema["enum"]):
        allowed = ", ".join(json.dumps(option) for option in schema["enum"])
        return f"{where}: got {_shown(value)}; expected one of {allowed}"
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(value, name) for name in types):
            expected = " or ".join(_TYPE_NAMES[name] for name in types)
            return f"{where}: got {_shown(value)}; expected {expected}"
    if "minimum" in schema and _is_type(value, "number") and value < schema["minimum"]:
        return f"{where}: got {_shown(value)}; expected at least {schema['minimum']}"
    if isinstance(value, dict):
        problem = _check_object(value, schema, root, path)
        if problem:
            return problem
    if isinstance(value, list):
        problem = _check_array(value, schema, root, path)
        if problem:
            return problem
    if "not" in schema and _check(value, schema["not"], root, path) is None:
        forbidden = schema["not"].get("required") if isinstance(schema["not"], dict) else None
        if forbidden:
            return f"{where}: the field {forbidden[0]!r} does not belong in this version"
        return f"{where}: got {_shown(value)}, a form that is not allowed here"
    if "if" in schema:
        branch = "then" if _check(value, schema["if"], root, path) is None else "else"
        if branch in schema:
            return _check(value, schema[branch], root, path)
    return None


def _check_object(value: dict[str, Any], schema: dict[str, Any], root: dict[str, Any], path: str) -> str | None:
    for name in schema.get("required", ()):
        if name not in value:
            return f"{path or 'top level'}: the field {name!r} is missing"
    properties = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        if key in properties:
            problem = _check(item, properties[key], root, _key_path(path, key))
        elif extra is False:
            problem = f"{_key_path(path, key)}: unknown field"
        elif isinstance(extra, dict):
            problem = _check(item, extra, root, _key_path(path, key))
        else:
            problem = None
        if problem:
            return problem
    return None


def _check_array(value: list[Any], schema: dict[str, Any], root: dict[str, Any], path: str) -> str | None:
    where = path or "top level"
    if "minItems" in schema and len(value) < schema["minItems"]:
        return f"{where}: {len(value)} item(s); expected at least {schema['minItems']}"
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        return f"{where}: {len(value)} item(s); expected at most {schema['maxItems']}"
    items = schema.get("items")
    if items is None:
        return None
    for index, item in enumerate(value):
        problem = _check(item, items, root, f"{path}[{index}]")
        if problem:
            return problem
    return None


def _equal(value: Any, expected: Any) -> bool:
    """JSON equality: true is not 1, and 1 equals 1.0."""
    if isinstance(value, bool) or isinstance(expected, bool):
        return isinstance(value, bool) and isinstance(expected, bool) and value == expected
    same_kind = type(value) is type(expected) or (_is_type(value, "number") and _is_type(expected, "number"))
    return same_kind and value == expected
