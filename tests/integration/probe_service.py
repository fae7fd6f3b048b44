"""A nameko service for delivery tests: it records each CheckClosed it handles in
``probe_effects`` through the real idempotent consumer, and can be told to stall mid-handling
(before or after its commit) so a test can SIGKILL it there."""

from __future__ import annotations

import os
import time
from typing import Any

from backbone.messaging import EventStoreProvider, event_consumer
from contracts.envelope import Envelope

STALL_FILE = os.environ.get("PROBE_STALL_FILE", "")
STALL_WHEN = os.environ.get("PROBE_STALL_WHEN", "")  # "before_commit" | "after_commit"
HANDLE_SLEEP = float(os.environ.get("PROBE_HANDLE_SLEEP", "0"))


def _stall(when: str) -> None:
    if when == STALL_WHEN and STALL_FILE:
        with open(STALL_FILE, "a") as f:
            f.write(when + "\n")
        time.sleep(3600)  # the test kills us here


class ProbeService:
    name = "probe"
    store = EventStoreProvider()

    @event_consumer("CheckClosed")
    def on_closed(self, envelope: Envelope) -> None:
        def effect(conn: Any) -> None:
            conn.execute("INSERT INTO probe_effects (event_id) VALUES (%s)", (envelope.event_id,))
            if HANDLE_SLEEP:
                time.sleep(HANDLE_SLEEP)
            _stall("before_commit")

        self.store.handle_once("probe", envelope, effect)
        _stall("after_commit")


SERVICE = ProbeService
