"""Validate JSON against a schema of a Google API discovery document (the published description of a REST API).

Discovery schemas are a JSON-Schema dialect: `type` (object, array, string, integer, number, boolean, any), `$ref` to
another schema by id, `properties`, `additionalProperties`, `items`, `enum`, and `format` (64-bit integers travel as
JSON strings: `type: string, format: int64`). An object property the schema does not name is a problem: a request
or a sample carrying a field the API does not define is exactly what these checks exist to catch.

The documents are cut, unchanged, from the ones google-api-python-client ships (discovery/ beside this module, see
discovery/SOURCES.md): each holds the schemas reachable from the ones a stand-in checks.
"""

from __future__ import annotations

import json
import re
import sys
from functools import cache
from pathlib import Path
from typing import Any

DOCUMENTS = Path(__file__).parent / "discovery"
_INT64 = re.compile(r"^-?[0-9]{1,20}$")
_KINDS: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "boolean": (bool,),
    "number": (int, float),
    "integer": (int,),
    "object": (dict,),
    "array": (list,),
}


@cache
def document(name: str) -> dict[str, Any]:
    """A vendored discovery document (or subset) by file stem, e.g. "logging.v2.LogEntry"."""
    loaded: dict[str, Any] = json.loads((DOCUMENTS / f"{name}.json").read_text())
    return loaded


def problems(doc: dict[str, Any], schema: str, instance: Any) -> list[str]:
    """Every way `instance` breaks the schema `schema` of `doc`, as "path: what" lines (empty: valid)."""
    found: list[str] = []
    _check(doc["schemas"], {"$ref": schema}, instance, schema, found)
    return found


def _check(schemas: dict[str, Any], rule: dict[str, Any], value: Any, path: str, found: list[str]) -> None:
    if "$ref" in rule:
        rule = schemas[rule["$ref"]]
    kind = rule.get("type", "any")
    if kind == "any":
        return
    if kind == "string" and rule.get("format") in {"int64", "uint64"}:
        if not (isinstance(value, str) and _INT64.match(value)) and not _is_int(value):
            found.append(f"{path}: must be a 64-bit integer (a JSON string), got {value!r:.60}")
        return
    expected = _KINDS.get(kind)
    if expected is None:
        found.append(f"{path}: the schema has an unknown type {kind!r}")
        return
    if not isinstance(value, expected) or (kind in {"integer", "number"} and isinstance(value, bool)):
        found.append(f"{path}: must be {kind}, got {type(value).__name__}")
        return
    if "enum" in rule and value not in rule["enum"]:
        found.append(f"{path}: {value!r:.60} is not one of {', '.join(rule['enum'])}")
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check(schemas, rule.get("items", {}), item, f"{path}[{i}]", found)
    elif isinstance(value, dict):
        _object(schemas, rule, value, path, found)


def _object(schemas: dict[str, Any], rule: dict[str, Any], value: dict[str, Any], path: str, found: list[str]) -> None:
    properties: dict[str, Any] = rule.get("properties", {})
    extra = rule.get("additionalProperties")
    for key, item in value.items():
        if key in properties:
            _check(schemas, properties[key], item, f"{path}.{key}", found)
        elif extra is not None:
            _check(schemas, extra, item, f"{path}.{key}", found)
        else:
            found.append(f"{path}.{key}: not a field of {rule.get('id', path)}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def cut(doc: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """The subset of a discovery document holding `names` and every schema they reference (what is vendored)."""
    schemas: dict[str, Any] = doc["schemas"]
    kept: dict[str, Any] = {}
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in kept:
            continue
        kept[name] = schemas[name]
        todo += _refs(schemas[name])
    head: dict[str, Any] = {key: doc[key] for key in ("name", "version", "revision") if key in doc}
    return {**head, "schemas": dict(sorted(kept.items()))}


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


if __name__ == "__main__":  # python3 -m relaunch.emulated.discovery_schema cut DOCUMENT.json SCHEMA [SCHEMA ...]
    if len(sys.argv) < 4 or sys.argv[1] != "cut":
        sys.exit("usage: python3 -m relaunch.emulated.discovery_schema cut DOCUMENT.json SCHEMA [SCHEMA ...]")
    full = json.loads(Path(sys.argv[2]).read_text())
    json.dump(cut(full, sys.argv[3:]), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
