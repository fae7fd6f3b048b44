"""The dead-letters page against a real RabbitMQ vhost (set up like production): it lists what
the dead-letter queues hold, with the reason, without taking it out, and replays a message."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import amqp
import pytest
from werkzeug.test import Client

from backbone.relay import _amqp_params
from console.web import ConsoleApp
from tests.console.test_console_unit import sign_in
from tests.support import VhostUrl, throwaway_vhost

pytestmark = pytest.mark.integration


@pytest.fixture()
def vhost() -> Iterator[VhostUrl]:
    with throwaway_vhost() as url:
        yield url


def queue_depth(url: str, queue: str) -> int:
    connection = amqp.Connection(**_amqp_params(url))
    connection.connect()
    try:
        return int(connection.channel().queue_declare(queue, passive=True).message_count)
    finally:
        connection.close()


def dead_letter(url: str, queue: str, message_id: str) -> None:
    connection = amqp.Connection(**_amqp_params(url))
    connection.connect()
    try:
        connection.channel().basic_publish(
            amqp.Message(b'{"event_id": "x"}', delivery_mode=2, message_id=message_id, type="CaptureVerified",
                         application_headers={"x-aid-reason": "not_in_log", "x-aid-detail": "no such event",
                                              "x-aid-routing-key": "CaptureVerified"}),
            exchange="", routing_key=queue)
    finally:
        connection.close()


def test_operations_list_dead_letters_and_replay_one(vhost: VhostUrl, monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    from backbone.issuer import load_or_create_key

    monkeypatch.setenv("AID_AUTH_KEY_FILE", str(tmp_path / "key.pem"))
    monkeypatch.setenv("AID_CONSOLE_DLQ_AMQP_URL", str(vhost))
    load_or_create_key(tmp_path / "key.pem")
    dead_letter(vhost, "enrolment.dlq", "m-1")
    dead_letter(vhost, "enrolment.dlq", "m-2")
    client = Client(ConsoleApp())
    csrf = sign_in(client, "operations")
    page = client.get("/deadletters").get_data(as_text=True)
    assert page.count("not_in_log") == 2 and "CaptureVerified" in page and "m-1" in page
    assert queue_depth(vhost, "enrolment.dlq") == 2  # listing takes nothing out
    answer = client.post("/deadletters", data={"csrf": csrf, "service": "enrolment", "message_id": "m-2"})
    assert answer.status_code == 200
    assert queue_depth(vhost, "enrolment.dlq") == 1
    page = answer.get_data(as_text=True)
    assert "m-1" in page and "m-2" not in page
    client.post("/deadletters", data={"csrf": csrf, "service": "enrolment"})
    assert queue_depth(vhost, "enrolment.dlq") == 0


def test_without_a_broker_account_the_page_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from backbone.issuer import load_or_create_key

    monkeypatch.setenv("AID_AUTH_KEY_FILE", str(tmp_path / "key.pem"))
    monkeypatch.delenv("AID_CONSOLE_DLQ_AMQP_URL", raising=False)
    load_or_create_key(tmp_path / "key.pem")
    client = Client(ConsoleApp())
    sign_in(client, "operations")
    assert "AID_CONSOLE_DLQ_AMQP_URL" in client.get("/deadletters").get_data(as_text=True)
