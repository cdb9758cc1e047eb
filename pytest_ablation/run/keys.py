"""Canonical encoding of configurations: the basis of cache keys and seeds."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any, cast
from collections.abc import Mapping


def canonical(value: Any, *, where: str = "value") -> Any:
    """Turn ``value`` into plain JSON data with a single spelling per meaning.

    Tuples become lists and mapping keys are sorted on encoding; floats keep their exact
    ``repr`` so that 0.98 and 0.980000001 never share a key. Anything else (tensors,
    arbitrary objects) is refused, because its identity cannot be hashed faithfully.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return repr(value)
        return float(value)
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: keys must be strings, got {key!r}")
            out[key] = canonical(item, where=f"{where}.{key}")
        return out
    if isinstance(value, (list, tuple)):
        return [canonical(item, where=f"{where}[{i}]") for i, item in enumerate(value)]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return canonical(value.item(), where=where)
    raise TypeError(
        f"{where}: {type(value).__name__} cannot be part of a cache key; use numbers, strings, booleans, lists or dicts"
    )


def canonical_json(value: Any) -> str:
    return json.dumps(canonical(value), sort_keys=True, separators=(",", ":"))


def digest(value: Any) -> str:
    """A sha256 hex digest of the canonical form of ``value``."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def derive_seed(*parts: Any) -> int:
    """A 63-bit seed that depends only on ``parts``: stable across processes and runs."""
    raw = hashlib.sha256(canonical_json(list(parts)).encode("utf-8")).digest()
    return int.from_bytes(raw[:8], "big") & (2**63 - 1)


def source_digest(*objects: Any) -> str | None:
    """A short digest of the code behind ``objects``, part of a cache key wherever code decides
    an output, so that editing that code invalidates what it made.

    A module named by its dotted name counts with its whole file, read without importing it
    (a warm run served from the cache never imports what would generate); a function or
    class counts with its own source. None when some source cannot be read (a function typed
    at the interpreter, a compiled module).
    """
    import importlib.util
    import inspect

    hasher = hashlib.sha256()
    for obj in objects:
        try:
            if isinstance(obj, str):
                spec = importlib.util.find_spec(obj)
                if spec is None or not spec.origin or not spec.origin.endswith(".py"):
                    return None
                with open(spec.origin, encoding="utf-8") as handle:
                    source = handle.read()
                name = obj
            else:
                source = inspect.getsource(obj)
                name = cast(str, getattr(obj, "__qualname__", None) or getattr(obj, "__name__", "?"))
        except (OSError, TypeError, ImportError, ValueError):
            return None
        try:
            code = _canonical_code(source)
        except SyntaxError:
            return None
        hasher.update(f"{name}\0{len(code)}\0".encode())
        hasher.update(code.encode("utf-8"))
    return hasher.hexdigest()[:16]


def _canonical_code(source: str) -> str:
    """The code in ``source`` without what cannot change an output: comments, docstrings,
    layout and quoting. Reformatting a file, or rewording a comment, keeps every cached entry.

    Written out node by node rather than with ``ast.dump``, whose text differs between
    Python releases (3.13 drops empty fields), so that one cache serves several Pythons.
    """
    import ast
    import textwrap

    def docstring_dropped(body: list[Any]) -> list[Any]:
        if (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            return body[1:]
        return body

    def write(node: Any) -> str:
        if isinstance(node, ast.AST):
            fields = []
            for field in node._fields:
                value: Any = getattr(node, field, None)
                if field == "body" and isinstance(
                    node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
                ):
                    value = docstring_dropped(value)
                if value is None or value == []:
                    continue
                fields.append(f"{field}={write(value)}")
            return f"{type(node).__name__}({','.join(fields)})"
        if isinstance(node, list):
            return "[" + ",".join(write(item) for item in node) + "]"
        return repr(node)

    return write(ast.parse(textwrap.dedent(source)))
