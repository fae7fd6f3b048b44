"""Dead letters for the operations page: what each consumer's ``<service>.dlq`` holds (type,
reason, detail; never the body) and a replay, one message or all, back onto the events exchange
with the original routing key (as ``aid dlq replay`` does).

This needs a broker account that may read the dead-letter queues and publish to ``aid.events``
(the administrator's, as for ``aid dlq``): ``AID_CONSOLE_DLQ_AMQP_URL``. Without it the page
says so; the console then holds no broker credential at all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from backbone.topology import CONSUMERS, dlq_name

EXCHANGE = "aid.events"
MAX_LISTED = 200


@dataclass(frozen=True)
class DeadLetter:
    service: str
    message_id: str | None
    type: str | None
    reason: str | None
    detail: str | None
    size: int


def broker_url() -> str | None:
    return os.environ.get("AID_CONSOLE_DLQ_AMQP_URL") or None


def _channel(url: str) -> tuple[Any, Any]:
    import amqp

    from backbone.relay import _amqp_params

    connection = amqp.Connection(**_amqp_params(url))
    connection.connect()
    return connection, connection.channel()


def _text(value: Any, limit: int = 300) -> str | None:
    if value is None:
        return None
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return text[:limit]


def listed(url: str) -> list[DeadLetter]:
    """Every dead letter of every consumer (at most :data:`MAX_LISTED` each); they stay queued."""
    connection, channel = _channel(url)
    out: list[DeadLetter] = []
    try:
        for service in sorted(CONSUMERS):
            for _ in range(MAX_LISTED):
                message = channel.basic_get(dlq_name(service), no_ack=False)
                if message is None:
                    break
                headers = dict(message.headers or {})
                props = message.properties
                out.append(DeadLetter(service, _text(props.get("message_id")), _text(props.get("type")),
                                      _text(headers.get("x-aid-reason")), _text(headers.get("x-aid-detail")),
                                      len(message.body)))
            channel.basic_recover(requeue=True)
    finally:
        connection.close()
    return out


def replay(url: str, service: str, message_id: str | None = None) -> int:
    """Publish ``service``'s dead letters (or the one with ``message_id``) again; returns how
    many. The consumer handles the logged event once (processed_events), so a replay of an event
    handled meanwhile changes nothing."""
    import amqp

    if service not in CONSUMERS:
        raise ValueError(f"{service} has no dead-letter queue")
    connection, channel = _channel(url)
    moved = 0
    try:
        for _ in range(10_000):
            message = channel.basic_get(dlq_name(service), no_ack=False)
            if message is None:
                break
            if message_id is not None and message.properties.get("message_id") != message_id:
                continue  # left unacknowledged: back in the queue at the recover below
            headers = dict(message.headers or {})
            props = message.properties
            channel.basic_publish(
                amqp.Message(message.body, delivery_mode=2, content_type=props.get("content_type"),
                             message_id=props.get("message_id"), type=props.get("type")),
                exchange=EXCHANGE,
                routing_key=headers.get("x-aid-routing-key") or message.properties.get("type") or "")
            channel.basic_ack(message.delivery_tag)
            moved += 1
            if message_id is not None:
                break
        channel.basic_recover(requeue=True)
    finally:
        connection.close()
    return moved
