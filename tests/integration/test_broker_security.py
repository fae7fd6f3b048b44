"""Least privilege on the broker, and consumers that trust the event log, not the wire.

Against the real RabbitMQ and PostgreSQL: every process connects as its own broker user (never
guest); only the relay may publish events; a service reads only its own queues and dead-letters
only to its own dead-letter queue; the RPC server works with its restricted user; the broker
set-up is idempotent and upgrades the old direct dead-letter exchange. A message that is not in
the log (published with an administrator account: well-formed, contract-valid) changes nothing
and lands in the dead-letter queue with reason ``not_in_log``; a body-tampered copy of a real
event is handled as the logged event.

``SERVICE`` (the recorder) is a service of these tests (started as a process like the real ones): it records
the event id and the ``check_id`` of each CheckClosed it handles.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import amqp
import psycopg
import pytest

from backbone import config
from backbone.eventstore import PostgresEventStore
from backbone.messaging import EventStoreProvider, event_consumer
from backbone.relay import _amqp_params
from backbone.topology import CONSUMERS, PROCESSES, RPC_SERVERS, grant, setup_broker, user_name
from contracts import Actor, build_envelope
from contracts.envelope import Envelope
from contracts.events import CheckClosed
from tests.support import AMQP_BASE, TEST_CONSUMERS, System, VhostUrl, broker_admin, metric_value, wait_for

pytestmark = pytest.mark.integration
ACTOR = Actor(kind="system", id="test")
APP_SERVICES = [p for p in PROCESSES if p != "relay"]


class RecorderService:
    name = "recorder"
    store = EventStoreProvider()

    @event_consumer("CheckClosed")
    def on_closed(self, envelope: Envelope) -> None:
        def effect(conn: Any) -> None:
            conn.execute("INSERT INTO recorder_effects (event_id, check_id) VALUES (%s, %s)",
                         (envelope.event_id, envelope.payload["check_id"]))

        self.store.handle_once("recorder", envelope, effect)


SERVICE = RecorderService  # what backbone.runservice starts
RECORDER_TARGET = "tests.integration.test_broker_security:SERVICE"


def closed(check_id: str) -> Envelope:
    return build_envelope(CheckClosed(check_id=check_id, closed_at="2026-10-21T15:00:00+08:00"),
                          stream=f"check-{check_id}", actor=ACTOR)


def connect(url: str) -> amqp.Connection:
    conn = amqp.Connection(**_amqp_params(url))
    conn.connect()
    return conn


def refused(action: Any) -> str:
    """Run ``action()``; return the broker's refusal (the test fails if the broker allowed it)."""
    with pytest.raises(amqp.exceptions.AccessRefused) as caught:
        action()
    return str(caught.value)


def publish_confirmed(channel: Any, exchange: str, routing_key: str, body: bytes = b"{}",
                      **props: Any) -> None:
    channel.basic_publish_confirm(amqp.Message(body, content_type="application/json", **props),
                                  exchange=exchange, routing_key=routing_key)


def recorded(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return [(str(r[0]), r[1]) for r in conn.execute("SELECT event_id, check_id FROM recorder_effects")]


def recorder_table(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS recorder_effects"
                     " (event_id uuid NOT NULL, check_id text NOT NULL)")


def dead_letters(admin_url: str, queue: str) -> list[Any]:
    conn = connect(admin_url)
    try:
        channel = conn.channel()
        out = []
        while (m := channel.basic_get(queue, no_ack=True)) is not None:
            out.append(m)
        return out
    finally:
        conn.close()


# --------------------------------------------------------------------------- configuration


def test_each_process_composes_its_own_broker_url_and_production_refuses_guest() -> None:
    env = {"AID_AMQP_URL": "amqp://rabbitmq:5672/aid", "AID_AMQP_USER": "aid-relay",
           "AID_AMQP_PASSWORD": "p@ss:/"}
    assert config.load(env).amqp_url == "amqp://aid-relay:p%40ss%3A%2F@rabbitmq:5672/aid"
    assert _amqp_params(config.load(env).amqp_url)["password"] == "p@ss:/"
    production = {"AID_ENV": "production", "AID_SECRET_KEY": "ab" * 32, "AID_ID_HASH_KEY": "k" * 32}
    with pytest.raises(config.ConfigError, match="guest"):
        config.load(production)  # the development default: guest
    with pytest.raises(config.ConfigError, match="guest"):
        config.load({**production, "AID_AMQP_USER": "guest", "AID_AMQP_PASSWORD": "guest"})
    with pytest.raises(config.ConfigError, match="together"):
        config.load({"AID_AMQP_USER": "aid-relay"})
    assert config.load({**production, **env}).amqp_url.startswith("amqp://aid-relay:")
    # a process that does not use the broker (migrations) may have no broker account at all
    no_account = {**production, "AID_AMQP_URL": "amqp://rabbitmq:5672/"}
    assert config.load(no_account).amqp_url == "amqp://rabbitmq:5672/"
    with pytest.raises(config.ConfigError, match="AID_AMQP_PASSWORD_RELAY"):
        config.broker_setup({})


def test_the_grant_table_matches_the_entry_points_of_the_services() -> None:
    """A consumer or RPC server missing from the table would be refused at start."""
    import importlib

    from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
    from nameko.rpc import Rpc

    from backbone.messaging import EventConsumer

    consumers, rpc_servers = set(), set()
    for service in APP_SERVICES:
        cls = importlib.import_module(f"services.{service}.service").SERVICE
        for attr in vars(cls).values():
            for entrypoint in getattr(attr, ENTRYPOINT_EXTENSIONS_ATTR, ()):
                if isinstance(entrypoint, EventConsumer):
                    consumers.add(service)
                if isinstance(entrypoint, Rpc):
                    rpc_servers.add(service)
    assert consumers == set(CONSUMERS)
    assert rpc_servers == set(RPC_SERVERS)
    assert grant("relay").write == r"^(?:aid\.events)$"
    for service in APP_SERVICES:  # nobody but the relay may write to the events exchange
        assert "aid\\.events" not in grant(service).write, service


# --------------------------------------------------------------------------- the broker refuses


def test_no_service_may_publish_events_nor_change_the_exchanges(fresh_vhost: VhostUrl) -> None:
    for service in APP_SERVICES:
        conn = connect(fresh_vhost.url_for(service))
        try:
            channel = conn.channel()
            channel.confirm_select()
            reason = refused(lambda ch=channel: publish_confirmed(ch, "aid.events", "CheckClosed"))
            assert "ACCESS_REFUSED" in reason and "aid.events" in reason, service
            channel = conn.channel()
            assert "ACCESS_REFUSED" in refused(lambda ch=channel: ch.exchange_delete("aid.events"))
            channel = conn.channel()
            assert "ACCESS_REFUSED" in refused(
                lambda ch=channel: ch.exchange_declare("aid.events", "topic", durable=True,
                                                       auto_delete=False))
        finally:
            conn.close()
    conn = connect(fresh_vhost.url_for("relay"))  # the relay may, and may do nothing else
    try:
        channel = conn.channel()
        channel.confirm_select()
        publish_confirmed(channel, "aid.events", "CheckClosed")
        channel = conn.channel()
        assert "ACCESS_REFUSED" in refused(lambda: channel.basic_get("facematch.dlq"))
        channel = conn.channel()
        assert "ACCESS_REFUSED" in refused(lambda: channel.queue_declare("relay.sneaky", durable=True,
                                                                            auto_delete=False))
    finally:
        conn.close()


def test_a_service_reads_only_its_own_queues_and_dead_letters_only_to_its_own_dlq(
        fresh_vhost: VhostUrl) -> None:
    args = {"x-dead-letter-exchange": "aid.dlx", "x-dead-letter-routing-key": "facematch.dlq"}
    facematch = connect(fresh_vhost.url_for("facematch"))
    enrolment = connect(fresh_vhost.url_for("enrolment"))
    try:
        channel = facematch.channel()  # facematch declares and binds its own work queue, as at start
        channel.queue_declare("facematch.on_capture", durable=True, auto_delete=False, arguments=args)
        channel.queue_bind("facematch.on_capture", "aid.events", "CaptureSubmitted")
        assert channel.basic_get("facematch.on_capture") is None
        for queue in ("facematch.on_capture", "facematch.dlq", "enrolment.dlq"):
            channel = enrolment.channel()
            reason = refused(lambda ch=channel, q=queue: ch.basic_get(q))
            assert "ACCESS_REFUSED" in reason and queue in reason
        channel = enrolment.channel()
        assert "ACCESS_REFUSED" in refused(
            lambda: channel.basic_consume("facematch.on_capture", callback=print))
        channel = enrolment.channel()
        assert "ACCESS_REFUSED" in refused(lambda: channel.queue_purge("facematch.on_capture"))
        channel = enrolment.channel()  # nor copy another service's traffic into a queue of its own
        channel.queue_declare("enrolment.spy", durable=False, auto_delete=True,
                              arguments={"x-dead-letter-exchange": "aid.dlx"})
        assert "ACCESS_REFUSED" in refused(
            lambda: channel.queue_bind("enrolment.spy", "aid.dlx", "facematch.dlq"))
        channel = enrolment.channel()
        channel.confirm_select()
        publish_confirmed(channel, "aid.dlx", "enrolment.dlq")  # its own dead-letter queue: yes
        reason = refused(lambda: publish_confirmed(channel, "aid.dlx", "facematch.dlq"))
        assert "ACCESS_REFUSED" in reason and "facematch.dlq" in reason
    finally:
        facematch.close()
        enrolment.close()
    assert len(dead_letters(fresh_vhost, "enrolment.dlq")) == 1
    assert dead_letters(fresh_vhost, "facematch.dlq") == []


def test_every_process_connects_as_its_own_user_never_guest(system: System) -> None:
    recorder_table(system.database_url)
    system.relay().start()
    system.service(RECORDER_TARGET).start()
    vhost: VhostUrl = system.amqp_url  # type: ignore[assignment]
    expected = {vhost.users["relay"][0], vhost.users["recorder"][0]}
    api = broker_admin()

    def users() -> set[str]:
        connections = api.call("GET", f"/vhosts/{vhost.vhost}/connections") or []
        return {c["user"] for c in connections}

    wait_for(lambda: users() >= expected, what="both processes connected")
    assert users() == expected  # nobody else in the vhost: no process uses guest or the admin


def test_the_rpc_server_answers_with_its_restricted_user(system: System) -> None:
    from nameko.exceptions import RemoteError
    from nameko.standalone.rpc import ClusterRpcProxy

    system.service("eligibility").start()
    with ClusterRpcProxy({"AMQP_URI": str(system.amqp_url)}, timeout=30) as rpc:
        try:
            answer = rpc.eligibility.province_summary("2026-10")
        except RemoteError as exc:  # a domain answer still proves request and reply got through
            answer = exc.exc_type
    assert answer


def test_broker_setup_is_idempotent_and_replaces_the_old_direct_dead_letter_exchange(
        fresh_vhost: VhostUrl) -> None:
    api = broker_admin()
    v = fresh_vhost.vhost
    # a vhost as the previous version left it: aid.dlx direct, a dead letter waiting in a DLQ
    api.call("DELETE", f"/exchanges/{v}/aid.dlx")
    api.call("PUT", f"/exchanges/{v}/aid.dlx", {"type": "direct", "durable": True})
    api.call("POST", f"/bindings/{v}/e/aid.dlx/q/facematch.dlq", {"routing_key": "facematch.dlq"})
    conn = connect(fresh_vhost)
    channel = conn.channel()
    channel.confirm_select()
    publish_confirmed(channel, "aid.dlx", "facematch.dlq", b"old dead letter")
    conn.close()
    for _ in range(2):
        setup_broker(api, v, fresh_vhost.users, consumers=TEST_CONSUMERS,
                     admin=urllib.parse.urlsplit(AMQP_BASE).username or "guest")
    assert api.call("GET", f"/exchanges/{v}/aid.dlx")["type"] == "topic"
    assert [m.body for m in dead_letters(fresh_vhost, "facematch.dlq")] == [b"old dead letter"]
    permissions = api.call("GET", f"/users/{user_name('facematch', '.' + v)}/permissions")
    (mine,) = [p for p in permissions if p["vhost"] == v]
    assert mine["write"] == grant("facematch").write
    conn = connect(fresh_vhost.url_for("facematch"))  # dead-lettering works again after the upgrade
    channel = conn.channel()
    channel.confirm_select()
    publish_confirmed(channel, "aid.dlx", "facematch.dlq", b"new dead letter")
    conn.close()
    assert [m.body for m in dead_letters(fresh_vhost, "facematch.dlq")] == [b"new dead letter"]


# --------------------------------------------------------------------------- forged messages


def test_a_forged_message_changes_nothing_and_is_dead_lettered_not_in_log(system: System) -> None:
    recorder_table(system.database_url)
    recorder = system.service(RECORDER_TARGET).start()
    relay = system.relay().start()
    forged = closed("forged")  # well-formed and contract-valid, never appended to the log
    conn = connect(system.amqp_url)  # an administrator account: the broker lets it through
    channel = conn.channel()
    channel.confirm_select()
    publish_confirmed(channel, "aid.events", forged.type, json.dumps(forged.to_dict()).encode(),
                      message_id=str(forged.event_id), type=forged.type)
    conn.close()
    (real,) = PostgresEventStore(system.database_url).append([closed("real")])
    wait_for(lambda: recorded(system.database_url), what="the real event handled")
    (letter,) = wait_for(lambda: dead_letters(system.amqp_url, "recorder.dlq"),
                         what="the forged one dead-lettered")
    assert recorded(system.database_url) == [(str(real.event_id), "real")]
    assert letter.headers["x-aid-reason"] == "not_in_log"
    assert letter.properties["message_id"] == str(forged.event_id)
    text = recorder.metrics()
    assert metric_value(text, "aid_dead_letters_total", service="recorder", reason="not_in_log") == 1
    with psycopg.connect(system.database_url) as db:
        assert db.execute("SELECT count(*) FROM processed_events WHERE event_id = %s",
                          (forged.event_id,)).fetchone() == (0,)
    log = recorder.log_tail(20_000)
    assert "not in the event log" in log and "forged" not in log  # id and type, never payload values
    relay.stop()


def test_a_tampered_copy_of_a_real_event_is_handled_as_the_logged_event(system: System) -> None:
    recorder_table(system.database_url)
    (real,) = PostgresEventStore(system.database_url).append([closed("genuine")])
    recorder = system.service(RECORDER_TARGET).start()
    tampered = dict(real.to_dict(), payload={**real.payload, "check_id": "tampered"})
    conn = connect(system.amqp_url)
    channel = conn.channel()
    channel.confirm_select()
    publish_confirmed(channel, "aid.events", real.type, json.dumps(tampered).encode(),
                      message_id=str(real.event_id))
    conn.close()
    wait_for(lambda: recorded(system.database_url), what="the event handled")
    assert recorded(system.database_url) == [(str(real.event_id), "genuine")]
    assert metric_value(recorder.metrics(), "aid_consumer_body_mismatch_total", service="recorder") == 1
    assert "tampered" not in recorder.log_tail(20_000)
    system.relay().start()  # the relay publishes the real one: a duplicate, applied once
    wait_for(lambda: metric_value(recorder.metrics(), "aid_consumer_handled_total", service="recorder",
                                  outcome="duplicate") == 1, what="the relayed copy seen as a duplicate")
    assert recorded(system.database_url) == [(str(real.event_id), "genuine")]
    assert dead_letters(system.amqp_url, "recorder.dlq") == []


def test_unique_broker_users_per_vhost_are_removed_with_it() -> None:
    from tests.support import throwaway_vhost

    api = broker_admin()
    with throwaway_vhost() as url:
        names = {user for user, _ in url.users.values()}
        assert names <= {u["name"] for u in api.call("GET", "/users")}
        assert len(names) == len(url.users) and all(url.vhost in n for n in names)
    assert not names & {u["name"] for u in api.call("GET", "/users")}
