"""Delivery guarantees, shown against the real PostgreSQL and RabbitMQ with real processes:
nothing is lost when a relay or a consumer is SIGKILLed, or when the broker or the database
restarts; a redelivered or duplicated event is applied once; broken messages are
dead-lettered with their reason and never crash a consumer; a message that fails every time is
retried a bounded number of times (the consumer shows as stuck on /health meanwhile) and then
dead-lettered while later messages go on; errors caused by the data are dead-lettered at once.

Processes connect to the broker with their own least-privilege users; the tests publish and
read dead-letter queues with the vhost's administrator account."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import amqp
import psycopg
import pytest

from backbone.eventstore import PostgresEventStore
from backbone.relay import _amqp_params
from contracts import Actor, build_envelope
from contracts.events import CheckClosed
from tests.support import System, metric_value, rabbitmqctl, wait_for

pytestmark = pytest.mark.integration
ACTOR = Actor(kind="system", id="test")


def closed_events(n: int, streams: int = 10) -> list[Any]:
    return [build_envelope(CheckClosed(check_id=f"c{i}", closed_at="2026-10-21T15:00:00+08:00"),
                           stream=f"check-{i % streams}", actor=ACTOR) for i in range(n)]


class Tap:
    """A queue bound to every event on the exchange; collects message ids."""

    def __init__(self, amqp_url: str) -> None:
        self.conn = amqp.Connection(**_amqp_params(amqp_url))
        self.conn.connect()
        self.channel = self.conn.channel()
        self.channel.exchange_declare("aid.events", "topic", durable=True, auto_delete=False)
        self.queue = f"tap-{uuid.uuid4().hex[:6]}"
        self.channel.queue_declare(self.queue, durable=True, auto_delete=False)
        self.channel.queue_bind(self.queue, "aid.events", "#")

    def drain(self) -> list[str]:
        ids = []
        while (message := self.channel.basic_get(self.queue, no_ack=True)) is not None:
            ids.append(message.properties["message_id"])
        return ids


def probe_table(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS probe_effects (event_id uuid NOT NULL)")


def effects(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [str(r[0]) for r in conn.execute("SELECT event_id FROM probe_effects").fetchall()]


def test_relay_killed_between_commit_and_publish_loses_nothing(system: System) -> None:
    store = PostgresEventStore(system.database_url)
    tap = Tap(system.amqp_url)
    stored = store.append(closed_events(3000))
    relay = system.relay(AID_RELAY_BATCH="100").start()
    seen: set[str] = set()

    def some_published() -> bool:
        seen.update(tap.drain())
        return len(seen) >= 300

    wait_for(some_published, what="first publications")
    relay.kill(signal.SIGKILL)  # mid-stream: the checkpoint lags what the broker has
    more = store.append(closed_events(500))  # committed while no relay runs
    relay = system.relay().start()
    expected = {str(e.event_id) for e in stored + more}
    assert len(seen) < len(expected), "the relay was killed too late to prove anything"

    def all_published() -> bool:
        seen.update(tap.drain())
        return expected <= seen

    wait_for(all_published, timeout=60, what="every event published")
    assert expected == seen  # nothing lost, nothing foreign
    relay.stop()


def test_consumer_killed_mid_handling_gets_the_event_again_and_applies_it_once(system: System,
                                                                                 tmp_path: Path) -> None:
    probe_table(system.database_url)
    store = PostgresEventStore(system.database_url)
    relay = system.relay().start()
    for when in ("before_commit", "after_commit"):
        stall = tmp_path / f"stall-{when}"
        probe = system.service("tests.integration.probe_service:SERVICE", name=f"probe-{when}",
                               PROBE_STALL_FILE=str(stall), PROBE_STALL_WHEN=when).start()
        (event,) = store.append(closed_events(1))
        wait_for(stall.exists, what=f"probe stalled {when}")
        probe.kill(signal.SIGKILL)
        probe = system.service("tests.integration.probe_service:SERVICE", name=f"probe-{when}-2").start()
        wait_for(lambda e=event: str(e.event_id) in effects(system.database_url), what="redelivery handled")
        time.sleep(1.0)
        assert effects(system.database_url).count(str(event.event_id)) == 1
        probe.stop()
    relay.stop()


def test_duplicates_and_cross_stream_reordering_change_nothing(system: System) -> None:
    probe_table(system.database_url)
    probe = system.service("tests.integration.probe_service:SERVICE").start()
    events = [e for e in PostgresEventStore(system.database_url).append(closed_events(30))]
    conn = amqp.Connection(**_amqp_params(system.amqp_url))
    conn.connect()
    channel = conn.channel()
    # publish every event twice, in reverse and shuffled orders, as a misbehaving relay might
    for batch in (list(reversed(events)), events[::2] + events[1::2]):
        for e in batch:
            channel.basic_publish(amqp.Message(json.dumps(e.to_dict()), content_type="application/json",
                                               message_id=str(e.event_id)),
                                  exchange="aid.events", routing_key=e.type)
    wait_for(lambda: len(effects(system.database_url)) >= 30, what="events handled")
    time.sleep(1.5)
    handled = effects(system.database_url)
    assert sorted(handled) == sorted(str(e.event_id) for e in events)
    text = probe.metrics()
    assert metric_value(text, "aid_consumer_handled_total", service="probe", outcome="duplicate") == 30
    conn.close()


def test_broken_messages_are_dead_lettered_with_a_reason_and_the_consumer_goes_on(system: System) -> None:
    probe_table(system.database_url)
    probe = system.service("tests.integration.probe_service:SERVICE").start()
    conn = amqp.Connection(**_amqp_params(system.amqp_url))
    conn.connect()
    channel = conn.channel()
    good = closed_events(1)[0]
    broken_payload = dict(good.to_dict(), event_id=str(uuid.uuid4()))
    broken_payload["payload"] = {"check_id": 42}
    for body, ctype in [(b"\x00not json{", "application/json"),
                        (json.dumps(broken_payload).encode(), "application/json"),
                        (json.dumps({"type": "CheckClosed"}).encode(), "application/json")]:
        channel.basic_publish(amqp.Message(body, content_type=ctype), exchange="aid.events",
                              routing_key="CheckClosed")
    PostgresEventStore(system.database_url).append([good])
    relay = system.relay().start()
    wait_for(lambda: str(good.event_id) in effects(system.database_url),
             what="good event handled after bad ones")
    reasons = []
    while (m := channel.basic_get("probe.dlq", no_ack=True)) is not None:
        reasons.append((m.headers["x-aid-reason"], m.headers["x-aid-detail"]))
    assert [r for r, _ in reasons] == ["undecodable", "contract_violation", "contract_violation"]
    assert "check_id" in reasons[1][1] and "required" in reasons[2][1]
    assert metric_value(probe.metrics(), "aid_dead_letters_total", service="probe") == 3
    relay.stop()
    conn.close()


def test_operators_list_and_replay_a_dead_letter_queue(system: System) -> None:
    import subprocess
    import sys

    probe_table(system.database_url)
    system.service("tests.integration.probe_service:SERVICE").start()
    conn = amqp.Connection(**_amqp_params(system.amqp_url))
    conn.connect()
    channel = conn.channel()
    channel.basic_publish(amqp.Message(b"{broken", content_type="application/json", type="CheckClosed"),
                          exchange="aid.events", routing_key="CheckClosed")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "backbone.cli", "dlq", *args], env=system.env(),
                              capture_output=True, text=True, timeout=60, check=True)

    listed = wait_for(lambda: (out := cli("list", "probe")).stdout.strip() and out, what="dead letter listed")
    (line,) = listed.stdout.strip().splitlines()
    assert json.loads(line)["reason"] == "undecodable"
    assert "1 message(s)" in cli("list", "probe").stderr  # listing leaves the message in place
    replayed = cli("replay", "probe")
    assert "replay: 1 message(s)" in replayed.stderr
    # replayed onto the exchange it is dead-lettered again (still broken), never lost
    wait_for(lambda: cli("list", "probe").stdout.strip(), what="dead letter back after replay")
    conn.close()


def test_a_second_relay_stands_by_and_nothing_is_published_twice(system: System) -> None:
    tap = Tap(system.amqp_url)
    first = system.relay("relay-a").start()
    second = system.relay("relay-b").start()
    stored = PostgresEventStore(system.database_url).append(closed_events(500))
    seen: list[str] = []
    wait_for(lambda: seen.extend(tap.drain()) or len(seen) >= 500, what="events published")
    time.sleep(1.0)
    seen.extend(tap.drain())
    assert sorted(seen) == sorted(str(e.event_id) for e in stored)
    assert "standing by" in second.log_tail() or "standing by" in first.log_tail()
    first.kill()  # the standby takes over
    more = PostgresEventStore(system.database_url).append(closed_events(50))
    wait_for(lambda: seen.extend(tap.drain()) or len(seen) >= 550, timeout=60, what="standby took over")
    assert sorted(seen) == sorted(str(e.event_id) for e in stored + more)


def _restart_rabbitmq() -> None:
    """A full restart of the broker process (not only its application), as after a crash."""
    rabbitmqctl("stop")
    subprocess.run(["rabbitmq-server", "-detached"], check=True, timeout=60)
    # -detached returns before the node answers: wait for it, then for its applications
    wait_for(lambda: rabbitmqctl("status", check=False).returncode == 0, timeout=60, interval=1.0,
             what="the broker node answering")
    rabbitmqctl("await_startup")


def _restart_postgres() -> None:
    clusters = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True,
                              check=True).stdout.split()
    version, cluster = clusters[0], clusters[1]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, cluster, "restart"], check=True,
                   timeout=120)


@pytest.mark.parametrize("restart", [_restart_rabbitmq, _restart_postgres], ids=["rabbitmq", "postgresql"])
def test_a_broker_or_database_restart_is_survived_with_nothing_lost(system: System, restart: Any) -> None:
    probe_table(system.database_url)
    store = PostgresEventStore(system.database_url)
    relay = system.relay().start()
    probe = system.service("tests.integration.probe_service:SERVICE", PROBE_HANDLE_SLEEP="0.01").start()
    first = store.append(closed_events(200))
    restart()

    def append_later() -> list[Any]:
        return store.append(closed_events(200))

    later = wait_for(append_later, timeout=60, what="database accepting appends again")
    expected = {str(e.event_id) for e in first + later}
    wait_for(lambda: expected <= set(effects(system.database_url)), timeout=120, what="every event handled")
    assert sorted(effects(system.database_url)) == sorted(expected)
    relay.stop()
    probe.stop()


# --------------------------------------------------------------------------- poison messages


def fail_on(url: str, failures: dict[str, str]) -> None:
    """Make the probe's effect fail, every time, for some events: event id -> SQLSTATE raised by a
    trigger on ``probe_effects`` (40001: serialization failure, transient; 22001: string too long
    and 23514: check violation, caused by the data)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS probe_failures (event_id uuid PRIMARY KEY, sqlstate text)")
        conn.execute("""
            CREATE OR REPLACE FUNCTION probe_fail() RETURNS trigger LANGUAGE plpgsql AS $$
            DECLARE code text;
            BEGIN
                SELECT sqlstate INTO code FROM probe_failures WHERE event_id = NEW.event_id;
                IF code IS NOT NULL THEN
                    RAISE EXCEPTION 'probe failure' USING ERRCODE = code;
                END IF;
                RETURN NEW;
            END $$""")
        conn.execute("DROP TRIGGER IF EXISTS probe_fail ON probe_effects")
        conn.execute("CREATE TRIGGER probe_fail BEFORE INSERT ON probe_effects"
                     " FOR EACH ROW EXECUTE FUNCTION probe_fail()")
        for event_id, sqlstate in failures.items():
            conn.execute("INSERT INTO probe_failures VALUES (%s, %s)", (event_id, sqlstate))


def health(proc: Any) -> tuple[int, Any]:
    from tests.support import http_json

    return http_json("GET", f"http://127.0.0.1:{proc.metrics_port}/health", timeout=5)


def test_a_message_that_always_fails_is_dead_lettered_after_bounded_tries_and_later_ones_go_on(
        system: System) -> None:
    probe_table(system.database_url)
    store = PostgresEventStore(system.database_url)
    (poison,) = store.append(closed_events(1))
    fail_on(system.database_url, {str(poison.event_id): "40001"})  # transient, but every time
    probe = system.service("tests.integration.probe_service:SERVICE").start()
    relay = system.relay().start()
    later = store.append(closed_events(20))

    def stuck() -> bool:
        status, body = health(probe)
        return status == 503 and "stuck" in body["checks"]["consumer probe.on_closed"]

    wait_for(stuck, timeout=20, interval=0.1, what="/health reporting the stuck consumer")
    assert metric_value(probe.metrics(), "aid_consumer_stuck", service="probe", queue="probe.on_closed") == 1
    # the 20 later events are handled while the poison one is retried
    wait_for(lambda: {str(e.event_id) for e in later} <= set(effects(system.database_url)), timeout=20,
             what="later events handled")
    assert str(poison.event_id) not in effects(system.database_url)

    def dead_lettered() -> list[Any]:
        conn = amqp.Connection(**_amqp_params(system.amqp_url))
        conn.connect()
        try:
            letters = []
            while (m := conn.channel().basic_get("probe.dlq", no_ack=True)) is not None:
                letters.append(m)
            return letters
        finally:
            conn.close()

    (letter,) = wait_for(dead_lettered, timeout=60, what="the poison message dead-lettered")
    assert letter.headers["x-aid-reason"] == "retries_exhausted"
    assert letter.headers["x-aid-detail"] == "5 attempts; last error SerializationFailure"
    assert letter.properties["message_id"] == str(poison.event_id)
    text = probe.metrics()
    assert metric_value(text, "aid_dead_letters_total", service="probe", reason="retries_exhausted") == 1
    assert metric_value(text, "aid_consumer_handled_total", service="probe", outcome="retried") == 4
    wait_for(lambda: health(probe)[0] == 200, timeout=10, what="healthy again")
    assert metric_value(probe.metrics(), "aid_consumer_stuck", service="probe", queue="probe.on_closed") == 0
    assert str(poison.event_id) not in effects(system.database_url)
    relay.stop()


def test_database_errors_caused_by_the_data_are_dead_lettered_at_once(system: System) -> None:
    probe_table(system.database_url)
    store = PostgresEventStore(system.database_url)
    too_long, violation, good = store.append(closed_events(3))
    fail_on(system.database_url, {str(too_long.event_id): "22001", str(violation.event_id): "23514"})
    probe = system.service("tests.integration.probe_service:SERVICE").start()
    system.relay().start()
    wait_for(lambda: str(good.event_id) in effects(system.database_url), what="the good event handled")
    conn = amqp.Connection(**_amqp_params(system.amqp_url))
    conn.connect()
    channel = conn.channel()
    letters: dict[str, Any] = {}

    def both_dead_lettered() -> bool:
        while (m := channel.basic_get("probe.dlq", no_ack=True)) is not None:
            letters[m.properties["message_id"]] = m
        return len(letters) == 2

    wait_for(both_dead_lettered, what="both dead-lettered")
    conn.close()
    assert letters[str(too_long.event_id)].headers["x-aid-reason"] == "data_error"
    assert letters[str(too_long.event_id)].headers["x-aid-detail"] == "StringDataRightTruncation"
    assert letters[str(violation.event_id)].headers["x-aid-reason"] == "data_error"
    assert letters[str(violation.event_id)].headers["x-aid-detail"] == "CheckViolation"
    text = probe.metrics()
    assert metric_value(text, "aid_consumer_handled_total", service="probe", outcome="retried") == 0
    assert metric_value(text, "aid_dead_letters_total", service="probe", reason="data_error") == 2
    assert effects(system.database_url) == [str(good.event_id)]
    log = probe.log_tail(50_000)  # the type and SQLSTATE of a database error, never its text (values)
    assert "StringDataRightTruncation (SQLSTATE 22001)" in log and "probe failure" not in log


def test_failure_kinds_and_stuck_rules() -> None:
    from backbone.health import ConsumerProgress
    from backbone.messaging import failure_kind

    assert failure_kind(psycopg.errors.StringDataRightTruncation()) == "data_error"
    assert failure_kind(psycopg.errors.UntranslatableCharacter()) == "data_error"
    assert failure_kind(psycopg.errors.UniqueViolation()) == "data_error"
    assert failure_kind(psycopg.errors.UndefinedColumn()) == "data_error"  # a ProgrammingError
    assert failure_kind(psycopg.errors.ProgramLimitExceeded()) == "data_error"  # an OperationalError
    assert failure_kind(psycopg.errors.SerializationFailure()) == "transient"
    assert failure_kind(psycopg.OperationalError("server closed the connection")) == "transient"
    assert failure_kind(ConnectionResetError()) == "transient"
    assert failure_kind(KeyError("x")) == "handler_error"

    progress = ConsumerProgress("svc", "svc.on_x", stuck_after=60)
    t0 = progress.last_settled
    key = progress.received()
    assert progress.stuck_reason(t0 + 30) is None
    assert "in its handler for 61s" in (progress.stuck_reason(t0 + 61) or "")  # a hung handler
    progress.failed(key, "e1", 1, "SerializationFailure")
    assert progress.stuck_reason(t0 + 1) is None  # one failure is not stuck yet
    key = progress.received()
    progress.failed(key, "e1", 2, "SerializationFailure")
    assert "failed 2 times in a row (SerializationFailure)" in (progress.stuck_reason(t0 + 1) or "")
    progress.settled(progress.received(), "e1")
    assert progress.stuck_reason() is None
    progress.depth = 3  # messages waiting, nothing settled for a minute: the consumer is not consuming
    assert "3 message(s) waiting" in (progress.stuck_reason(progress.last_settled + 61) or "")
