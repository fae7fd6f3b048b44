"""enrolment service: registers proposed-aid students and runs new capture (新增采集)."""

from __future__ import annotations

from typing import Any

from nameko.rpc import rpc
from nameko.web.handlers import http

from backbone import config
from backbone.http import endpoint, read_images, read_json
from backbone.messaging import BlobStoreProvider, EventStoreProvider, event_consumer, output_event_id
from contracts import Actor, build_envelope
from contracts.envelope import Envelope
from services.enrolment import domain

SETTINGS = config.load()


class EnrolmentService:
    name = "enrolment"
    store = EventStoreProvider()
    blobs = BlobStoreProvider()

    def _view(self, student_id: str) -> domain.StudentView:
        return domain.student_view(student_id, self.store.read_stream(domain.student_stream(student_id)))

    @http("POST", "/students")
    @endpoint("enrolment", "register")
    def register(self, request: Any) -> tuple[int, dict[str, Any]]:
        body = read_json(request)
        view = self._view(str(body.get("student_id", "")))
        event = domain.register(body, SETTINGS.id_hash_key, view)
        actor = Actor(kind="school", id=str(body.get("operator", "school-office")), school=event.school.school_id)
        self.store.append([build_envelope(event, occurred_at=config.now(), stream=domain.student_stream(event.student_id), actor=actor)],
                          expected_version=view.version)
        return 201, {"student_id": event.student_id, "id_number_masked": event.id_number_masked}

    @http("POST", "/enrolments")
    @endpoint("enrolment", "capture")
    def capture(self, request: Any) -> tuple[int, dict[str, Any]]:
        body = read_json(request)
        view = self._view(str(body.get("student_id", "")))
        domain.require_student(view, str(body.get("school_id", "")))
        frames = read_images(body, "frames", self.blobs)
        id_photo = read_images(body, "id_photo", self.blobs)
        event = domain.submit_enrolment(view, str(body["school_id"]), str(body.get("channel", "terminal")),
                                        frames, id_photo[0], body.get("terminal_id"), config.now())
        actor = Actor(kind="terminal", id=str(body.get("terminal_id")), school=event.school_id)
        self.store.append([build_envelope(event, occurred_at=config.now(), stream=f"capture-{event.capture_id}", actor=actor)])
        return 202, {"capture_id": event.capture_id, "status": "submitted"}

    @http("POST", "/enrolments/evidence")
    @endpoint("enrolment", "evidence")
    def evidence(self, request: Any) -> tuple[int, dict[str, Any]]:
        body = read_json(request)
        view = self._view(str(body.get("student_id", "")))
        domain.require_student(view, str(body.get("school_id", "")))
        (ref,) = read_images(body, "evidence_photo", self.blobs)[:1]
        event = domain.file_evidence(view, str(body["school_id"]), ref, config.now())
        actor = Actor(kind="terminal", id=str(body.get("terminal_id", "terminal")), school=event.school_id)
        self.store.append([build_envelope(event, occurred_at=config.now(), stream=domain.student_stream(event.student_id), actor=actor)])
        return 201, {"student_id": event.student_id, "mode": event.mode}

    @http("GET", "/students/<student_id>")
    @endpoint("enrolment", "student")
    def student(self, request: Any, student_id: str) -> tuple[int, dict[str, Any]]:
        view = self._view(student_id)
        domain.require_student(view, view.school_id or "")
        return 200, {"student_id": student_id, "school_id": view.school_id, "enrolled": view.enrolled_mode,
                     "semesters": view.enrolled_semesters}

    @rpc
    def enrolment_status(self, student_id: str) -> dict[str, Any]:
        view = self._view(student_id)
        return {"student_id": student_id, "registered": view.registered is not None, "enrolled": view.enrolled_mode}

    @event_consumer("CaptureVerified", "CaptureRejected")
    def on_capture_result(self, envelope: Envelope) -> None:
        def effect(conn: Any) -> list[Envelope]:
            outcome = domain.enrolment_outcome(envelope)
            if outcome is None:
                return []
            return [build_envelope(outcome, stream=domain.student_stream(outcome.student_id),
                                   actor=Actor(kind="service", id="enrolment", school=outcome.school_id),
                                   occurred_at=envelope.occurred_at,
                                   event_id=output_event_id("enrolment", envelope),
                                   correlation_id=envelope.correlation_id, causation_id=envelope.event_id)]

        self.store.handle_once("enrolment", envelope, effect)


SERVICE = EnrolmentService
