"""AID_QUEUE_TYPE=quorum (the Kubernetes province overlay: a three-node RabbitMQ cluster) on the real
broker: the broker set-up declares quorum dead-letter queues, a consumer declares its work queue as a
quorum queue with the dead-letter arguments, and events flow through it (a single node runs quorum
queues too)."""

from __future__ import annotations

import urllib.parse

import psycopg
import pytest

from backbone.eventstore import PostgresEventStore
from backbone.topology import declare_dlq, dlq_name
from tests.eligibility.elig_builders import Log
from tests.support import System, broker_admin, wait_for

pytestmark = pytest.mark.integration


def test_quorum_work_and_dead_letter_queues(system: System) -> None:
    api = broker_admin()
    vhost = urllib.parse.quote(system.amqp_url.vhost, safe="")
    queue = urllib.parse.quote(dlq_name("eligibility"), safe="")
    # the fresh vhost's set-up declared classic queues: declare the dead-letter queue again as quorum
    api.call("DELETE", f"/queues/{vhost}/{queue}")
    declare_dlq(api, vhost, "aid.dlx", "eligibility", "quorum")
    assert api.call("GET", f"/queues/{vhost}/{queue}")["type"] == "quorum"

    eligibility = system.service("eligibility", AID_QUEUE_TYPE="quorum").start()
    system.relay().start()
    work = api.call("GET", f"/queues/{vhost}/{urllib.parse.quote('eligibility.on_event', safe='')}")
    assert work["type"] == "quorum"
    assert work["arguments"]["x-dead-letter-exchange"] == "aid.dlx"
    assert work["arguments"]["x-dead-letter-routing-key"] == "eligibility.dlq"

    log = Log()
    log.ordinary("S1")
    stored = PostgresEventStore(system.database_url).append(log.events)

    def applied() -> bool:
        with psycopg.connect(system.database_url) as conn:
            row = conn.execute("SELECT count(*) FROM processed_events"
                               " WHERE consumer = 'eligibility'").fetchone()
        return row is not None and row[0] == len(stored)

    wait_for(applied, 60, what="the events applied through the quorum queue")
    assert eligibility.popen is not None and eligibility.popen.poll() is None
