"""appeals service: schools file appeals with their formal letter; authorities resolve them."""

from __future__ import annotations

from typing import Any

from nameko.web.handlers import http

from backbone import config
from backbone.http import endpoint, read_images, read_json
from backbone.messaging import BlobStoreProvider, EventStoreProvider
from contracts import Actor, build_envelope
from services.appeals import domain
from services.enrolment.domain import require_student, student_stream, student_view


class AppealsService:
    name = "appeals"
    store = EventStoreProvider()
    blobs = BlobStoreProvider()

    @http("POST", "/appeals")
    @endpoint("appeals", "file")
    def file(self, request: Any) -> tuple[int, dict[str, Any]]:
        body = read_json(request)
        student_id, school_id = str(body.get("student_id", "")), str(body.get("school_id", ""))
        require_student(student_view(student_id, self.store.read_stream(student_stream(student_id))), school_id)
        (letter,) = read_images(body, "letter", self.blobs)[:1]
        event = domain.file(body, letter)
        self.store.append([build_envelope(event, occurred_at=config.now(), stream=domain.appeal_stream(event.appeal_id),
                                          actor=Actor(kind="school", id=school_id, school=school_id))],
                          expected_version=0)
        return 201, {"appeal_id": event.appeal_id}

    @http("POST", "/appeals/<appeal_id>/resolve")
    @endpoint("appeals", "resolve")
    def resolve(self, request: Any, appeal_id: str) -> tuple[int, dict[str, Any]]:
        body = read_json(request)
        view = domain.appeal_view(appeal_id, self.store.read_stream(domain.appeal_stream(appeal_id)))
        event = domain.resolve(view, str(body.get("decision")), str(body.get("decided_by")))
        self.store.append([build_envelope(event, occurred_at=config.now(), stream=domain.appeal_stream(appeal_id),
                                          actor=Actor(kind="authority", id=event.decided_by))],
                          expected_version=view.version)
        return 200, {"appeal_id": appeal_id, "decision": event.decision}


SERVICE = AppealsService
