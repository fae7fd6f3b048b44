"""RabbitMQ topology: one durable topic exchange for events, one for dead letters.

Events are published to ``aid.events`` with the event type as routing key. Each consumer
owns a durable queue ``<service>.<handler>`` bound to the types it handles, dead-lettering to
``aid.dlx`` with routing key ``<service>.dlq``, where a durable queue ``<service>.dlq`` keeps
every message that could not be handled, with the reason in its headers.
"""

from __future__ import annotations

from typing import Any


def dlq_name(service: str) -> str:
    return f"{service}.dlq"


def declare_base(channel: Any, exchange: str, dlx: str) -> None:
    """Declare both exchanges with py-amqp (idempotent)."""
    channel.exchange_declare(exchange, "topic", durable=True, auto_delete=False)
    channel.exchange_declare(dlx, "direct", durable=True, auto_delete=False)


def declare_dlq(channel: Any, dlx: str, service: str) -> None:
    channel.queue_declare(dlq_name(service), durable=True, auto_delete=False)
    channel.queue_bind(dlq_name(service), dlx, dlq_name(service))
