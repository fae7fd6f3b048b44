"""Operations commands: ``aid migrate``, ``aid dlq list|replay SERVICE``, ``aid contracts check``,
``aid auth init|serve|token`` (the embedded development identity provider), ``aid sim ...`` (the
terminal simulator, :mod:`simulator.cli`).

Run as ``python -m backbone.cli ...`` or, once installed, ``aid ...``.
"""

from __future__ import annotations

import argparse
import contextlib
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
                    "type": message.properties.get("type"),
                    "message_id": message.properties.get("message_id"),
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


def _auth(args: argparse.Namespace) -> int:
    from backbone.issuer import TerminalCredentials, load_or_create_key, make_server, mint, person_claims

    if config.load().production:
        print("aid auth is the development identity provider; production uses the province's OIDC"
              " server (AID_AUTH_ISSUER)", file=sys.stderr)
        return 2
    key_file = config.auth_key_file()
    key = load_or_create_key(key_file)
    auth = config.auth_settings()
    if args.action == "init":
        print(f"signing key {key.kid} in {key_file}", file=sys.stderr)
        return 0
    if args.action == "token":
        try:
            claims = person_claims(args.role, args.sub, school=args.school, city=args.city,
                                   county=args.county, student=args.student, terminal=args.terminal)
            print(mint(key, auth.issuer, auth.audience, claims, args.ttl))
        except Exception as exc:  # a wrong combination of role and area: say which
            print(f"aid auth token: {exc}", file=sys.stderr)
            return 2
        return 0
    server = make_server(args.host, args.port, key, auth.issuer, auth.audience,
                         TerminalCredentials(config.load().database_url))
    print(f"issuer {auth.issuer}: JWKS at /.well-known/jwks.json, terminal tokens at POST /token;"
          f" listening on {args.host}:{args.port}", file=sys.stderr, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


def _sim(args: argparse.Namespace) -> int:
    from simulator.cli import main as sim_main

    return sim_main(list(args.args))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["sim"]:  # the simulator parses its own arguments, --help included
        from simulator.cli import main as sim_main

        return sim_main(argv[1:])
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
    p = sub.add_parser("auth", help="the embedded development identity provider (tokens, JWKS)",
                       description="init: create the signing key; serve: publish the JWKS and issue"
                                   " terminal tokens (client credentials); token: print a token for a role"
                                   " and area, e.g. aid auth token --role school --school 4101000001")
    p.add_argument("action", choices=["init", "serve", "token"])
    p.add_argument("--role", default="province", help="terminal, school, county, city, province, auditor,"
                                                      " operations or student")
    p.add_argument("--sub", help="the account name (default: made from role and area)")
    p.add_argument("--school")
    p.add_argument("--city")
    p.add_argument("--county")
    p.add_argument("--student", help="the one student an app token acts for")
    p.add_argument("--terminal")
    p.add_argument("--ttl", type=int, default=3600, help="seconds the token is valid (default 3600)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9000)
    p.set_defaults(func=_auth)
    p = sub.add_parser("sim", add_help=False, help="the terminal simulator: drive a semester by hand"
                                                   " (aid sim --help)")
    p.add_argument("args", nargs=argparse.REMAINDER)
    p.set_defaults(func=_sim)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
