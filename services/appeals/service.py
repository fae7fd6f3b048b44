"""appeals service: schools file appeals with their formal letter; the same-level authority rules."""

from __future__ import annotations

from backbone.edge import Answer, Call, EdgeService, route, school_for, student_for
from backbone.errors import NotFound
from backbone.messaging import BlobStoreProvider, EventStoreProvider
from services.appeals import domain
from services.appeals.commands import FileAppeal, Filed, Resolve, Resolved


class AppealsService(EdgeService):
    name = "appeals"
    store = EventStoreProvider()
    blobs = BlobStoreProvider()

    @route("POST", "/appeals", roles=("school",), body=FileAppeal, returns=Filed, status=201, idempotent=True,
           max_body=8 * 1024 * 1024)
    def file(self, call: Call) -> Answer:
        """File an appeal for a student's month."""
        command: FileAppeal = call.body
        student = student_for(call, self.store, command.student_id)
        with self.blobs.staged() as letters:  # a failed append removes the letter this request stored
            letter = letters.put(command.letter)
            event = domain.file(command, str(student.school_id), letter)
            self.store.record(event, domain.appeal_stream(event.appeal_id), call.actor(), expected_version=0)
        return 201, Filed(appeal_id=event.appeal_id)

    @route("POST", "/appeals/<appeal_id>/resolve", roles=("county", "city", "province"), body=Resolve,
           returns=Resolved)
    def resolve(self, call: Call) -> Answer:
        """Rule on an appeal."""
        appeal_id = call.path["appeal_id"]
        view = domain.appeal_view(appeal_id, self.store.read_stream(domain.appeal_stream(appeal_id)))
        if view.filed is None:
            raise NotFound("UNKNOWN_APPEAL", f"no appeal {appeal_id}")
        school = school_for(call, self.store, view.filed.school_id)
        assert school.registered is not None
        event = domain.resolve(view, call.body, call.caller.role, school.registered.administered_by)
        self.store.record(event, domain.appeal_stream(appeal_id), call.actor(), expected_version=view.version)
        return 200, Resolved(appeal_id=appeal_id, decision=event.decision, decided_by=event.decided_by)


SERVICE = AppealsService
