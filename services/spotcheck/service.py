"""spotcheck service: opens and closes checks, takes check-in captures, absences, forced passes."""

from __future__ import annotations

from typing import Any

from nameko.web.handlers import http

from backbone import config
from backbone.http import endpoint, read_images, read_json
from backbone.messaging import BlobStoreProvider, EventStoreProvider
from contracts import Actor, build_envelope
from services.enrolment.domain import require_student, student_stream, student_view
from services.spotcheck import domain


class SpotcheckService:
    name = "spotcheck"
    store = EventStoreProvider()
    blobs = BlobStoreProvider()

    def _check(self, check_id: str) -> domain.CheckView:
        return domain.check_view(check_id, self.store.read_stream(domain.check_stream(check_id)))

    def _student(self, body: dict[str, Any]) -> tuple[str, str, bool]:
        student_id, school_id = str(body.get("student_id", "")), str(body.get("school_id", ""))
        view = student_view(student_id, self.store.read_stream(student_stream(student_id)))
        require_student(view, school_id)
        return student_id, school_id, view.enrolled_mode is not None

    def _failed_terminal_attempts(self, check_id: str, student_id: str) -> int:
        with self.store.pool.connection() as conn:
            row = conn.execute(
                "SELECT count(*) FROM events WHERE type = 'CaptureRejected' AND payload->>'check_id' = %s"
                " AND payload->>'student_id' = %s AND payload->>'channel' = 'terminal'", (check_id, student_id),
            ).fetchone()
        return int(row[0]) if row else 0

    @http("POST", "/checks")
    @endpoint("spotcheck", "open")
    def open(self, request: Any) -> tuple[int, dict[str, Any]]:
        body = read_json(request)
        event = domain.open_check(body)
        actor = Actor(kind="authority", id=str(body.get("operator", event.initiated_by)))
        self.store.append([build_envelope(event, occurred_at=config.now(), stream=domain.check_stream(event.check_id), actor=actor)],
                          expected_version=0)
        return 201, {"check_id": event.check_id, "opens_at": event.opens_at, "closes_at": event.closes_at}

    @http("POST", "/checks/<check_id>/close")
    @endpoint("spotcheck", "close")
    def close(self, request: Any, check_id: str) -> tuple[int, dict[str, Any]]:
        view = self._check(check_id)
        event = domain.close_check(view, config.now())
        self.store.append([build_envelope(event, occurred_at=config.now(), stream=domain.check_stream(check_id),
                                          actor=Actor(kind="authority", id="province"))],
                          expected_version=view.version)
        return 200, {"check_id": check_id, "closed_at": event.closed_at}

    @http("POST", "/checks/<check_id>/captures")
    @endpoint("spotcheck", "capture")
    def capture(self, request: Any, check_id: str) -> tuple[int, dict[str, Any]]:
        body = read_json(request)
        view = self._check(check_id)
        student_id, school_id, enrolled = self._student(body)
        frames = read_images(body, "frames", self.blobs)
        event = domain.submit_capture(view, student_id, school_id, enrolled, str(body.get("channel", "app")),
                                      frames, body.get("terminal_id"), config.now(), int(body.get("attempt", 1)))
        actor = Actor(kind="terminal" if event.channel == "terminal" else "app",
                      id=str(body.get("terminal_id") or student_id), school=school_id)
        self.store.append([build_envelope(event, occurred_at=config.now(), stream=f"capture-{event.capture_id}", actor=actor)])
        return 202, {"capture_id": event.capture_id, "status": "submitted"}

    @http("POST", "/checks/<check_id>/absences")
    @endpoint("spotcheck", "absence")
    def absence(self, request: Any, check_id: str) -> tuple[int, dict[str, Any]]:
        body = read_json(request)
        view = self._check(check_id)
        student_id, school_id, _ = self._student(body)
        reported = domain.parse_instant(body.get("reported_at") or config.now().isoformat(), "reported_at")
        event, warnings = domain.mark_absence(view, student_id, school_id, str(body.get("reason")), reported)
        self.store.append([build_envelope(event, occurred_at=config.now(), stream=domain.check_stream(check_id),
                                          actor=Actor(kind="school", id=school_id, school=school_id))])
        return 201, {"check_id": check_id, "reason": event.reason, "warnings": warnings}

    @http("POST", "/checks/<check_id>/forced-passes")
    @endpoint("spotcheck", "forced_pass")
    def forced_pass(self, request: Any, check_id: str) -> tuple[int, dict[str, Any]]:
        body = read_json(request)
        view = self._check(check_id)
        student_id, school_id, _ = self._student(body)
        attempts = self._failed_terminal_attempts(check_id, student_id)
        (evidence,) = read_images(body, "evidence_photo", self.blobs)[:1]
        event = domain.force_pass(view, student_id, school_id, str(body.get("terminal_id", "")), attempts,
                                  evidence, config.now())
        self.store.append([build_envelope(event, occurred_at=config.now(), stream=domain.check_stream(check_id),
                                          actor=Actor(kind="terminal", id=event.terminal_id, school=school_id))])
        return 201, {"check_id": check_id, "forced_pass": True, "attempts": attempts}

    @http("POST", "/results/publish")
    @endpoint("spotcheck", "publish")
    def publish(self, request: Any) -> tuple[int, dict[str, Any]]:
        body = read_json(request)
        event = domain.publish_results(str(body.get("school_id", "")), str(body.get("month", "")), config.now())
        self.store.append([build_envelope(event, occurred_at=config.now(), stream=f"results-{event.school_id}-{event.month}",
                                          actor=Actor(kind="school", id=event.school_id, school=event.school_id))])
        return 201, {"school_id": event.school_id, "month": event.month, "published_on": event.published_on}


SERVICE = SpotcheckService
