"""The JSON Schemas shipped with vidpipe, and validation that reports located, readable errors.

The schema files live in `vidpipe/schemas/` (package data, also published for editors).
jsonschema's own messages ("Additional properties are not allowed ('x' was unexpected)")
are written for programmers; we rewrite the common ones into sentences that name the key
and say what is allowed, and locate each at the offending YAML node.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from vidpipe.errors import Problem
from vidpipe.spec.yamlsource import Path_, SourceMap

#: The schema files (package data).
SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The parsed schema `vidpipe/schemas/<name>.schema.json`.

    `asset` (one file of a project's `assets/`) is the job schema's `$defs/asset`, so an
    asset means the same in a job file, in `defaults:` and in its own file.
    """
    if name == "asset":
        job = load_schema("job")
        return {"$schema": job["$schema"], "$defs": job["$defs"], "$ref": "#/$defs/asset"}
    schema: dict[str, Any] = json.loads(_schema_text(name))
    return schema


@cache
def _schema_text(name: str) -> str:
    """The text of `vidpipe/schemas/<name>.schema.json` (`asset`: the job schema's).

    Read beside this package rather than through importlib.resources, whose import
    (tempfile, shutil, zipfile) costs more than a command that reads a cached check does.
    vidpipe is always installed as files, never run from a zip.
    """
    file = "job" if name == "asset" else name
    return (SCHEMAS / f"{file}.schema.json").read_text("utf-8")


@cache
def _validator(name: str) -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(load_schema(name))


def dotted(path: Iterable[str | int]) -> str:
    """`('scene_overrides', 1, 'index')` → `scene_overrides[1].index`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def validate(
    name: str, data: Any, source: SourceMap, *, prefix: Path_ = (), relocate: Any = None
) -> list[Problem]:
    """Validate `data` against schema `name`; return one located problem per error.

    `relocate(path) -> (path, key?)` lets a caller point errors in derived data (a matrix
    expansion) back at the YAML node the value came from.
    """
    marker = _result_file(name, data, prefix)
    errors = _cached_errors(marker)
    if errors is None:
        errors = []
        for error in _validator(name).iter_errors(data):
            message, key_path = _message(error, (*prefix, *error.absolute_path))
            errors.append((list(error.absolute_path), message, key_path))
        if marker is not None:
            from vidpipe.usercache import remember

            remember(marker, json.dumps(errors).encode("utf-8"))
    problems = []
    for error_path, message, key_path in errors:
        path: Path_ = (*prefix, *error_path)
        if key_path is not None:
            key_path = tuple(key_path)
        at, on_key = (key_path, True) if key_path is not None else (path, False)
        if relocate is not None:
            at, on_key = relocate(at, on_key)
        if not on_key:
            message += source.quote_hint(at)
        problems.append(source.problem(at, message, key=on_key))
    return problems


def _cached_errors(marker: Path | None) -> list[Any] | None:
    if marker is None:
        return None
    try:
        errors = json.loads(marker.read_bytes())
    except (OSError, ValueError):
        return None
    return errors if isinstance(errors, list) else None


def _result_file(name: str, data: Any, prefix: Path_ = ()) -> Path | None:
    """Where the errors of this data against schema `name` are cached (None: no cache).

    Importing jsonschema and building a validator costs more than the rest of `vidpipe
    validate` on one job, and the same vidpipe.yaml and job files are checked by every
    command. The file holds each error's data path and message (located in the YAML
    afresh each time); the key covers the vidpipe version, the schema, the prefix and the
    data's repr (which tells 1 from "1" and 1.0).
    """
    from vidpipe.usercache import entry

    try:
        text = repr(data)
    except RecursionError:
        return None
    return entry("schema", name, _schema_text(name), repr(prefix), text)


def _message(error: Any, path: Path_) -> tuple[str, Path_ | None]:
    """A readable message, and the key to point at when the error is about a key."""
    from difflib import get_close_matches

    field = dotted(path)
    kind = error.validator
    value = error.instance
    schema = error.schema
    if "propertyNames" in error.schema_path and kind == "enum":
        # jsonschema reports the inner `enum` against the key itself, at the mapping's path.
        choices = [str(v) for v in error.validator_value]
        hint = get_close_matches(str(value), choices, n=1)
        suggestion = f"did you mean {hint[0]!r}?" if hint else f"it can vary: {', '.join(choices)}"
        return f"{field} cannot vary {value!r}; {suggestion}", (*path, value)
    if kind == "type" and len(path) >= 2 and path[-2] == "matrix" and isinstance(value, list):
        # A list under a name that is not a job key: a misspelt key, not named values.
        choices = list(load_schema("job")["properties"]["matrix"]["properties"])
        hint = get_close_matches(str(path[-1]), choices, n=1)
        suggestion = f"did you mean {hint[0]!r}?" if hint else f"it can vary: {', '.join(choices)}"
        return f"matrix cannot vary {path[-1]!r}; {suggestion}", path
    if kind == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        extra = [k for k in value if k not in schema.get("properties", {})]
        key = extra[0]
        hint = get_close_matches(key, allowed, n=1)
        where = "" if not path else f" in {field}"
        suggestion = (
            f"; did you mean {hint[0]!r}?" if hint else f"; allowed keys: {', '.join(allowed)}"
        )
        return f"unknown key {key!r}{where}{suggestion}", (*path, key)
    if kind == "required":
        missing = [k for k in error.validator_value if k not in value]
        where = "" if not path else f" in {field}"
        return f"missing required key {missing[0]!r}{where}", None
    if kind == "enum":
        listed = ", ".join(str(v) for v in error.validator_value)
        return f"{field} must be one of {listed} (got {value!r})", None
    if kind == "type":
        expected = error.validator_value
        names: list[str] = expected if isinstance(expected, list) else [expected]
        wanted = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
        return f"{field} must be {wanted} (got {_describe(value)})", None
    if kind in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        words = {
            "minimum": "at least",
            "exclusiveMinimum": "more than",
            "maximum": "at most",
            "exclusiveMaximum": "less than",
        }[kind]
        return f"{field} must be {words} {error.validator_value} (got {value!r})", None
    if kind == "minLength":
        if error.validator_value == 1:
            return f"{field} must not be empty", None
        return f"{field} must be at least {error.validator_value} characters", None
    if kind == "maxLength":
        return (
            f"{field} is too long ({len(value)} characters, at most {error.validator_value})",
            None,
        )
    if kind == "pattern":
        if path and path[-1] == "name":
            return (
                f"name {value!r} is not a valid job name: use 1-64 lowercase letters, digits, "
                "'.', '_' or '-', starting with a letter or digit",
                None,
            )
        return f"{field} {value!r} does not match {error.validator_value}", None
    if kind == "minProperties":
        if path and path[-1] == "matrix":
            return "matrix is empty: give at least one key with a list of values", None
        return f"{field} must not be empty", None
    if kind == "minItems":
        if len(path) >= 2 and path[-2] == "matrix":
            return f"{field} has no values: give at least one", None
        return f"{field} needs at least {error.validator_value} item(s)", None
    if kind == "maxItems":
        return f"{field} has too many items (at most {error.validator_value})", None
    if kind == "oneOf" and path and path[-1] == "provider":
        return (
            "provider must be a provider name, or a mapping of storyboard/image/video to "
            "provider names",
            None,
        )
    if kind == "oneOf" and path and path[-1] in ("start_image", "end_image"):
        return (
            f"{field} must be an image path, or a mapping of path and fit (pad or crop)",
            None,
        )
    return f"{field}: {error.message}", None


_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "text",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"boolean {value!r}".lower()
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}".replace("str ", "text ")
