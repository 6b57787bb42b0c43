"""Enums given by number in a request body, named as the API reads them.

The GAPIC REST transports send enums as numbers (`$alt=json;enum-encoding=int`), which Google's APIs accept as the
proto's enum numbers. Discovery documents list only the names, so a stand-in turns numbers into names with the
request message's proto descriptor (the server's own knowledge) before checking the body against the document.
"""

from __future__ import annotations

from typing import Any


def named_enums(descriptor: Any, value: Any) -> Any:
    """`value` (the JSON of the message `descriptor` describes) with every enum number replaced by its name; an
    unknown number stays as it is, for the schema check to name it."""
    if not isinstance(value, dict) or descriptor.full_name.startswith("google.protobuf."):
        return value  # Struct, Value, Any...: JSON of their own, no field names to follow
    fields = {f.json_name: f for f in descriptor.fields} | {f.name: f for f in descriptor.fields}
    return {key: _field(fields[key], item) if key in fields else item for key, item in value.items()}


def _field(field: Any, value: Any) -> Any:
    message = field.message_type
    if message is not None and message.GetOptions().map_entry:
        inner = message.fields_by_name["value"]
        return {k: _one(inner, v) for k, v in value.items()} if isinstance(value, dict) else value
    if isinstance(value, list):
        return [_one(field, item) for item in value]
    return _one(field, value)


def _one(field: Any, value: Any) -> Any:
    if field.enum_type is not None and isinstance(value, int) and not isinstance(value, bool):
        known = field.enum_type.values_by_number.get(value)
        return known.name if known is not None else value
    if field.message_type is not None:
        return named_enums(field.message_type, value)
    return value
