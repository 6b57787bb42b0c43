"""The one error family trigger parsers raise, and the shape checks that raise it."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

T = TypeVar("T")

# Valid UTF-8 cannot hold a surrogate: only a JSON escape \uD800-\uDFFF (any hex case) can put one in a string.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_NOT_TEXT = "not valid Unicode text (a lone surrogate escape)"
_KIND_NAMES = {str: "a string", int: "an integer", bool: "a boolean", list: "an array", dict: "an object"}


class TriggerError(Exception):
    """Bad inbound input; `status` is the 4xx to answer with, `field` names what was wrong."""

    default_status: ClassVar[int] = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.status: int = self.default_status
        self.message = message
        self.field = field

    def to_body(self) -> dict[str, Any]:
        """The JSON body to answer with."""
        return {"error": self.message, "field": self.field}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, field={self.field!r})"


class Malformed(TriggerError):
    """400: the body cannot be decoded (not UTF-8, not JSON, bad base64) or a required header is missing."""

    default_status = 400


class Unauthorized(TriggerError):
    """401: missing or invalid signature or token, or no secret configured (fail closed)."""

    default_status = 401


class PayloadTooLarge(TriggerError):
    """413: the body exceeds the configured limit."""

    default_status = 413


class UnsupportedMediaType(TriggerError):
    """415: a content type the parser does not read."""

    default_status = 415


class Unprocessable(TriggerError):
    """422: valid JSON of the wrong shape; `field` is the dotted path, e.g. "repository.full_name"."""

    default_status = 422


def lookup(root: Mapping[str, Any], path: str) -> Any:
    """The value at dotted `path`, or None when any step is absent; a non-object on the way is a 422."""
    node: Any = root
    walked: list[str] = []
    for key in path.split("."):
        if not isinstance(node, Mapping):
            raise Unprocessable(f"{'.'.join(walked)} must be an object", field=".".join(walked))
        node = node.get(key)
        walked.append(key)
        if node is None:
            return None
    return node


def check(value: Any, kind: type[T], field: str) -> T:
    """`value` if it is a `kind` (bools are not integers here), else a 422 naming `field`."""
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise Unprocessable(f"{field} must be {_KIND_NAMES.get(kind, kind.__name__)}", field=field)
    return value


def require(root: Mapping[str, Any], path: str, kind: type[T]) -> T:
    """The `kind` value at dotted `path`; absent, null or another type is a 422 naming the path."""
    value = lookup(root, path)
    if value is None:
        raise Unprocessable(f"{path} is required", field=path)
    return check(value, kind, path)


def optional(root: Mapping[str, Any], path: str, kind: type[T]) -> T | None:
    """The `kind` value at dotted `path`, None when absent or null; another type is a 422."""
    value = lookup(root, path)
    return None if value is None else check(value, kind, path)


def decode_json_object(raw: bytes, *, field: str | None = None) -> dict[str, Any]:
    """`raw` as a JSON object; not UTF-8, not JSON or not an object is a 400 naming `field`."""
    where = field or "body"
    try:
        value = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise Malformed(f"{where} is not UTF-8", field=field) from exc
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, int-digit limits, absurd nesting
        raise Malformed(f"{where} is not valid JSON", field=field) from exc
    if not isinstance(value, dict):
        raise Malformed(f"{where} must be a JSON object", field=field)
    require_text(value, raw)
    return value


def require_text(value: Any, raw: bytes | None = None, *, prefix: str = "") -> None:
    """A 422 naming the dotted path of the first string (key or value, any depth) that is not valid Unicode text.

    `raw`, the JSON the value was decoded from, skips the walk when it holds no surrogate escape (the usual case).
    """
    if raw is not None and not _SURROGATE_ESCAPE.search(raw):
        return
    path = _first_lone_surrogate(value)
    if path is not None:
        field = ".".join([prefix, *path] if prefix else path)
        raise Unprocessable(f"{field} is {_NOT_TEXT}", field=field)


def printable(value: object) -> str:
    """`value` as text fit to log and store: a lone surrogate becomes its escape."""
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")


def printable_path(key: object) -> str:
    """One step of a field path, fit to log and store: surrogates escaped, at most 64 characters."""
    return printable(key)[:64]


def _is_text(text: str) -> bool:
    if text.isascii():  # O(1) in CPython: the common case costs nothing
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _first_lone_surrogate(root: Any) -> list[str] | None:
    """The path to the first string that is not text, walked without recursion (the JSON may be deeply nested)."""
    stack: list[tuple[Any, list[str]]] = [(root, [])]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            if not _is_text(node):
                return path
        elif isinstance(node, Mapping):
            for key, child in reversed(list(node.items())):
                step = [*path, printable_path(key)]
                if isinstance(key, str) and not _is_text(key):
                    return step
                stack.append((child, step))
        elif isinstance(node, list | tuple):
            stack.extend((child, [*path, str(i)]) for i, child in reversed(list(enumerate(node))))
    return None
