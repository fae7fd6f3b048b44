"""hardship service: records family-hardship determinations."""

from __future__ import annotations

from backbone.edge import Answer, Call, EdgeService, route, student_for
from backbone.messaging import EventStoreProvider
from services.hardship import domain
from services.hardship.commands import Determine, Determined


class HardshipService(EdgeService):
    name = "hardship"
    store = EventStoreProvider()

    @route("POST", "/determinations", roles=("school",), body=Determine, returns=Determined, status=201,
           idempotent=True)
    def determine(self, call: Call) -> Answer:
        """Record a student's family-hardship determination."""
        command: Determine = call.body
        student = student_for(call, self.store, command.student_id)
        event = domain.determine(command, str(student.school_id))
        stored = self.store.record(event, domain.hardship_stream(event.student_id), call.actor())
        return 201, Determined(determination_id=event.determination_id, level=event.level,
                               position=int(stored.position or 0))


SERVICE = HardshipService
