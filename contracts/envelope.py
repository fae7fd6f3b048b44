"""The envelope every event travels in, on the log and on the wire."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

ActorKind = Literal["student", "school", "terminal", "app", "authority", "service", "operator", "system"]


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    id: str
    school: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "school": self.school}


@dataclass(frozen=True)
class Envelope:
    """One event. ``occurred_at`` is business time; ``recorded_at`` is when the log learned it.

    ``position`` and ``recorded_at`` are assigned by the event store on append.
    """

    type: str
    schema_version: int
    stream: str
    payload: dict[str, Any]
    occurred_at: datetime
    actor: Actor
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)
    stream_version: int = 0
    recorded_at: datetime | None = None
    correlation_id: uuid.UUID | None = None
    causation_id: uuid.UUID | None = None
    position: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": str(self.event_id),
            "type": self.type,
            "schema_version": self.schema_version,
            "stream": self.stream,
            "stream_version": self.stream_version,
            "occurred_at": self.occurred_at.isoformat(),
            "recorded_at": self.recorded_at.isoformat() if self.recorded_at else None,
            "actor": self.actor.to_dict(),
            "correlation_id": str(self.correlation_id) if self.correlation_id else None,
            "causation_id": str(self.causation_id) if self.causation_id else None,
            "position": self.position,
            "payload": self.payload,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Envelope:
        actor = data["actor"]
        return cls(
            event_id=uuid.UUID(str(data["event_id"])),
            type=data["type"],
            schema_version=int(data["schema_version"]),
            stream=data["stream"],
            stream_version=int(data["stream_version"]),
            occurred_at=_parse_instant(data["occurred_at"]),
            recorded_at=_parse_instant(data["recorded_at"]) if data.get("recorded_at") else None,
            actor=Actor(kind=actor["kind"], id=actor["id"], school=actor.get("school")),
            correlation_id=uuid.UUID(str(data["correlation_id"])) if data.get("correlation_id") else None,
            causation_id=uuid.UUID(str(data["causation_id"])) if data.get("causation_id") else None,
            position=data.get("position"),
            payload=data["payload"],
        )


def _parse_instant(value: Any) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    else:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"instant without a time zone: {value!r}")
    return parsed


def now() -> datetime:
    return datetime.now(UTC)
