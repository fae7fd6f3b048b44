"""Operations commands: ``aid migrate``, ``aid dlq list|replay SERVICE``, ``aid contracts check``.

Run as ``python -m backbone.cli ...`` or, once installed, ``aid ...``.
"""

from __future__ import annotations

import argparse
import json
import sys

from backbone import config


def _migrate(args: argparse.Namespace) -> int:
    from backbone.migrate import migrate

    settings = config.load()
    migrate(args.database_url or settings.database_url)
    return 0


def _dlq(args: argparse.Namespace) -> int:
    import amqp

    from backbone.relay import _amqp_params
    from backbone.topology import dlq_name

    settings = config.load()
    conn = amqp.Connection(**_amqp_params(settings.amqp_url))
    conn.connect()
    channel = conn.channel()
    queue = dlq_name(args.service)
    moved = 0
    try:
        while args.limit is None or moved < args.limit:
            message = channel.basic_get(queue, no_ack=False)
            if message is None:
                break
            headers = dict(message.headers or {})
            if args.action == "list":
                print(json.dumps({
                    "reason": headers.get("x-aid-reason"), "detail": headers.get("x-aid-detail"),
                    "type": message.properties.get("type"), "message_id": message.properties.get("message_id"),
                    "bytes": len(message.body),
                }))
            else:  # replay: back onto the events exchange with its original routing key
                channel.basic_publish(
                    amqp.Message(message.body, delivery_mode=2, content_type=message.content_type,
                                 message_id=message.properties.get("message_id"),
                                 type=message.properties.get("type")),
                    exchange=settings.exchange,
                    routing_key=headers.get("x-aid-routing-key") or message.properties.get("type") or "",
                )
                channel.basic_ack(message.delivery_tag)
            moved += 1
        if args.action == "list":
            channel.basic_recover(requeue=True)  # listing leaves every message in the queue
    finally:
        conn.close()
    print(f"{args.action}: {moved} message(s) in {queue}", file=sys.stderr)
    return 0


def _contracts(args: argparse.Namespace) -> int:
    from contracts.__main__ import main as contracts_main

    return contracts_main([args.action])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aid", description="Student-aid system operations.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("migrate", help="create the database if needed and apply pending schema migrations")
    p.add_argument("--database-url", help="defaults to AID_DATABASE_URL")
    p.set_defaults(func=_migrate)
    p = sub.add_parser("dlq", help="inspect or replay a service's dead-letter queue")
    p.add_argument("action", choices=["list", "replay"])
    p.add_argument("service")
    p.add_argument("--limit", type=int)
    p.set_defaults(func=_dlq)
    p = sub.add_parser("contracts", help="generate or check the JSON Schemas from the event models")
    p.add_argument("action", choices=["generate", "check"])
    p.set_defaults(func=_contracts)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
