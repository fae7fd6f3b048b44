"""Derive JSON Schemas (draft 2020-12) from the payload dataclasses in ``contracts.events``."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from contracts.events import ALL_EVENTS, Event

ENVELOPE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "envelope.v1.json",
    "title": "Event envelope",
    "type": "object",
    "additionalProperties": False,
    "required": [
        "event_id", "type", "schema_version", "stream", "stream_version",
        "occurred_at", "actor", "payload",
    ],
    "properties": {
        "event_id": {"type": "string", "format": "uuid"},
        "type": {"type": "string", "pattern": "^[A-Z][A-Za-z]+$"},
        "schema_version": {"type": "integer", "minimum": 1},
        "stream": {"type": "string", "minLength": 1, "maxLength": 200},
        "stream_version": {"type": "integer", "minimum": 0},
        "occurred_at": {"type": "string", "format": "date-time"},
        "recorded_at": {"type": ["string", "null"], "format": "date-time"},
        "actor": {
            "type": "object",
            "additionalProperties": False,
            "required": ["kind", "id"],
            "properties": {
                "kind": {"enum": ["student", "school", "terminal", "app", "authority", "service",
                                  "operator", "system"]},
                "id": {"type": "string", "minLength": 1},
                "school": {"type": ["string", "null"]},
            },
        },
        "correlation_id": {"type": ["string", "null"], "format": "uuid"},
        "causation_id": {"type": ["string", "null"], "format": "uuid"},
        "position": {"type": ["integer", "null"]},
        "payload": {"type": "object"},
    },
}


def _type_schema(tp: Any) -> dict[str, Any]:
    origin = get_origin(tp)
    if origin is Literal:
        return {"enum": list(get_args(tp))}
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        inner = _type_schema(args[0]) if len(args) == 1 else {"anyOf": [_type_schema(a) for a in args]}
        return {"anyOf": [inner, {"type": "null"}]}
    if origin is list:
        (item,) = get_args(tp)
        return {"type": "array", "items": _type_schema(item)}
    if origin is dict:
        key, value = get_args(tp)
        return {"type": "object", "additionalProperties": _type_schema(value) if value is not Any else True}
    if tp is Any:
        return {}
    if tp is str:
        return {"type": "string"}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if tp is float:
        return {"type": "number"}
    if dataclasses.is_dataclass(tp):
        return _object_schema(typing.cast(type, tp))
    raise TypeError(f"no JSON Schema mapping for {tp!r}")


def _object_schema(cls: type) -> dict[str, Any]:
    hints = get_type_hints(cls)
    props: dict[str, Any] = {}
    required: list[str] = []
    for f in dataclasses.fields(cls):
        props[f.name] = _type_schema(hints[f.name])
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(f.name)
    return {"type": "object", "additionalProperties": False, "required": required, "properties": props}


def payload_schema(cls: type[Event]) -> dict[str, Any]:
    schema = _object_schema(cls)
    doc = (cls.__doc__ or "").strip().splitlines()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{cls.TYPE}.v{cls.VERSION}.json",
        "title": f"{cls.TYPE} v{cls.VERSION}",
        "description": doc[0] if doc else cls.TYPE,
        **schema,
    }


def all_schemas() -> dict[str, dict[str, Any]]:
    """File name -> schema, for every event type and the envelope."""
    out = {"envelope.v1.json": ENVELOPE_SCHEMA}
    for cls in ALL_EVENTS:
        out[f"{cls.TYPE}.v{cls.VERSION}.json"] = payload_schema(cls)
    return out
