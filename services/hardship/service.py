"""hardship service: records family-hardship determinations (HTTP and RPC)."""

from __future__ import annotations

from typing import Any

from nameko.rpc import rpc
from nameko.web.handlers import http

from backbone import config
from backbone.errors import DomainError
from backbone.http import endpoint, read_json
from backbone.messaging import EventStoreProvider
from contracts import Actor, build_envelope
from services.hardship import domain


def _application(body: dict[str, Any]) -> domain.Application:
    try:
        return domain.Application(
            student_id=str(body["student_id"]), school_id=str(body["school_id"]),
            categories=tuple(int(c) for c in body.get("categories", [])),
            effective_semester=str(body["effective_semester"]),
            methods=tuple(str(m) for m in body.get("methods", [])),
            judged_especially_difficult=bool(body.get("judged_especially_difficult", False)),
        )
    except KeyError as exc:
        raise DomainError("MISSING_FIELD", f"missing field {exc.args[0]!r}") from exc
    except (TypeError, ValueError) as exc:
        raise DomainError("BAD_FIELD", "categories must be integers 1..8") from exc


class HardshipService:
    name = "hardship"
    store = EventStoreProvider()

    def _record(self, body: dict[str, Any]) -> dict[str, Any]:
        event = domain.determine(_application(body))
        actor = Actor(kind="school", id=str(body.get("operator", "school-office")), school=event.school_id)
        (stored,) = self.store.append([build_envelope(event, occurred_at=config.now(), stream=f"hardship-{event.student_id}", actor=actor)])
        return {"determination_id": event.determination_id, "level": event.level, "position": stored.position}

    @http("POST", "/determinations")
    @endpoint("hardship", "determine")
    def determine_http(self, request: Any) -> tuple[int, dict[str, Any]]:
        return 201, self._record(read_json(request))

    @rpc
    def determine(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._record(body)


SERVICE = HardshipService
