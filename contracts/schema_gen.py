"""Derive JSON Schemas (draft 2020-12) from the payload dataclasses in ``contracts.events`` and
the eligibility status records in ``contracts.eligibility_status``."""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from contracts.eligibility_status import SCHEMA_ID, StatusDocument
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


def _type_schema(tp: Any, defs: dict[str, Any] | None = None) -> dict[str, Any]:
    """``defs``: where records with a ``DEF`` name go (referenced as ``#/$defs/NAME``); without
    it every nested dataclass is written inline."""
    if hasattr(tp, "__metadata__"):  # Annotated[T, {JSON-Schema keywords}, ...]
        out = _type_schema(get_args(tp)[0], defs)
        for extra in tp.__metadata__:
            if isinstance(extra, dict):
                out.update(extra)
        return out
    origin = get_origin(tp)
    if origin is Literal:
        return {"enum": list(get_args(tp))}
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        inner = _type_schema(args[0], defs) if len(args) == 1 \
            else {"anyOf": [_type_schema(a, defs) for a in args]}
        return {"anyOf": [inner, {"type": "null"}]}
    if origin is list:
        (item,) = get_args(tp)
        return {"type": "array", "items": _type_schema(item, defs)}
    if origin is dict:
        key, value = get_args(tp)
        return {"type": "object",
                "additionalProperties": _type_schema(value, defs) if value is not Any else True}
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
        cls = typing.cast(type, tp)
        name = getattr(cls, "DEF", "")
        if defs is None or not name:
            return _object_schema(cls, defs)
        if name not in defs:
            defs[name] = {}  # taken before recursing: a record may contain itself
            defs[name] = _object_schema(cls, defs)
        return {"$ref": f"#/$defs/{name}"}
    raise TypeError(f"no JSON Schema mapping for {tp!r}")


def _object_schema(cls: type, defs: dict[str, Any] | None = None) -> dict[str, Any]:
    hints = get_type_hints(cls, include_extras=True)
    props: dict[str, Any] = {}
    required: list[str] = []
    for f in dataclasses.fields(cls):
        props[f.name] = _type_schema(hints[f.name], defs)
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


def status_schema() -> dict[str, Any]:
    """The eligibility status report (:class:`~contracts.eligibility_status.StatusDocument`),
    its records in ``$defs`` (``#/$defs/status`` is one projection row)."""
    defs: dict[str, Any] = {}
    root = _object_schema(StatusDocument, defs)
    title, _, rest = inspect.cleandoc(StatusDocument.__doc__ or "").partition("\n\n")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{SCHEMA_ID}.json",
        "title": title.rstrip("."),
        "description": " ".join(rest.split()),
        **root,
        "$defs": defs,
    }


def all_schemas() -> dict[str, dict[str, Any]]:
    """File name -> schema, for every event type, the envelope and the eligibility status."""
    out = {"envelope.v1.json": ENVELOPE_SCHEMA}
    for cls in ALL_EVENTS:
        out[f"{cls.TYPE}.v{cls.VERSION}.json"] = payload_schema(cls)
    out[f"{SCHEMA_ID}.json"] = status_schema()
    return out
