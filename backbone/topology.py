"""RabbitMQ topology, and who may do what on it (least privilege, one broker user per process).

Entities:

- ``aid.events`` (topic): every event, routing key = event type. Only the relay publishes.
- ``aid.dlx`` (topic): dead letters, routing key ``<service>.dlq``, each bound to a durable queue
  ``<service>.dlq`` that keeps what a consumer could not handle, with the reason in its headers.
  A topic exchange (not direct) so that topic permissions can hold each service to its own key.
- ``<service>.<handler>``: a consumer's durable work queue, bound to the types it handles and
  dead-lettering to ``aid.dlx`` with key ``<service>.dlq``; declared by the consumer itself.
- ``nameko-rpc`` and ``rpc-<service>``: nameko RPC (declared by nameko in the RPC servers).

Who declares what: the broker set-up (:func:`setup_broker`, ``python -m backbone.topology setup``)
runs with an administrator account, through the management HTTP API, and is idempotent: the vhost,
one user per process with the permissions of :func:`grant`, both exchanges, every dead-letter
queue and its binding. ``scripts/run-system``, the ``broker-setup`` container of
docker-compose.yml and the tests' throwaway vhosts all call it. Processes run as their own user
and only check (passively) that the exchanges and their dead-letter queue exist.

Permissions (vhost-level regular expressions, anchored, matched against resource names; plus
topic permissions, matched against routing keys on ``aid.dlx`` and ``nameko-rpc``) are listed by
``python -m backbone.topology grants``.

Queue type (``AID_QUEUE_TYPE``, :func:`queue_arguments`): ``classic`` for one broker (the local run,
docker-compose), ``quorum`` where the broker is a cluster (the Kubernetes overlay ``province``: three
nodes, each queue replicated by Raft, a node may fail without losing a message). The type of an existing
queue cannot change: switching a running broker means draining and deleting the queues first.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

RPC_EXCHANGE = "nameko-rpc"
PROCESSES = ("relay", "enrolment", "spotcheck", "facematch", "eligibility", "appeals", "hardship")
#: services with ``@event_consumer`` handlers (a test checks this against the service classes)
CONSUMERS = frozenset({"enrolment", "facematch", "eligibility"})
#: services with ``@rpc`` methods (same check)
RPC_SERVERS = frozenset({"eligibility"})
NOTHING = "^$"
#: nameko replies go to the caller's reply queue with a bare uuid4 as routing key
_REPLY_KEY = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


QUEUE_TYPES = ("classic", "quorum")


def queue_arguments(queue_type: str = "classic") -> dict[str, str]:
    """The declaration arguments of a work or dead-letter queue of ``queue_type``. Classic queues are
    declared without the argument (as before it existed), so their declarations stay equivalent."""
    if queue_type not in QUEUE_TYPES:
        raise ValueError(f"queue type must be one of {', '.join(QUEUE_TYPES)}, not {queue_type!r}")
    return {} if queue_type == "classic" else {"x-queue-type": queue_type}


def dlq_name(service: str) -> str:
    return f"{service}.dlq"


def user_name(process: str, suffix: str = "") -> str:
    """The broker user of ``process`` (``aid-relay``, ``aid-enrolment`` ...)."""
    return f"aid-{process}{suffix}"


@dataclass(frozen=True)
class Grant:
    """What one broker user may do in the vhost."""

    configure: str
    write: str
    read: str
    #: exchange -> (write, read) regular expressions on routing keys (topic permissions)
    topic: dict[str, tuple[str, str]] = field(default_factory=dict)


def _any_of(names: Iterable[str]) -> str:
    names = list(names)
    return f"^(?:{'|'.join(names)})$" if names else NOTHING


def grant(process: str, exchange: str = "aid.events", dlx: str = "aid.dlx", consumer: bool | None = None,
          rpc_server: bool | None = None) -> Grant:
    """Least privilege for one process.

    - relay: write ``aid.events``; nothing else (it only checks that the exchange exists).
    - a consumer: configure/read/write its own work queues ``<service>.<handler>`` (not its DLQ),
      read ``aid.events`` (to bind its queues), write ``aid.dlx`` with routing key
      ``<service>.dlq`` only (the topic permission): its own dead-letter queue.
    - an RPC server: what nameko needs: declare ``nameko-rpc`` and ``rpc-<service>``, bind and
      consume it, publish replies (routing keys are uuids; never another service's method).
    - every process: access to the vhost (connections for health checks), nothing else.
    """
    if process == "relay":
        return Grant(NOTHING, _any_of([re.escape(exchange)]), NOTHING)
    consumer = process in CONSUMERS if consumer is None else consumer
    rpc_server = process in RPC_SERVERS if rpc_server is None else rpc_server
    me = re.escape(process)
    configure: list[str] = []
    write: list[str] = []
    read: list[str] = []
    topic: dict[str, tuple[str, str]] = {}
    if consumer:
        own = rf"{me}\.(?!dlq$)[^.]+"  # <service>.<handler>, never <service>.dlq
        configure += [own]
        write += [own, re.escape(dlx)]
        read += [own, re.escape(exchange)]
        topic[dlx] = (f"^{re.escape(dlq_name(process))}$", NOTHING)
    if rpc_server:
        queue, rpc = re.escape(f"rpc-{process}"), re.escape(RPC_EXCHANGE)
        configure += [queue, rpc]
        write += [queue, rpc]
        read += [queue, rpc]
        topic[RPC_EXCHANGE] = (_REPLY_KEY, rf"^{me}\.\*$")
    return Grant(_any_of(configure), _any_of(write), _any_of(read), topic)


# --------------------------------------------------------------------------- AMQP (processes)


def check_base(channel: Any, exchange: str, dlx: str) -> None:
    """Passive check (needs no permission) that the set-up declared both exchanges; raises
    ``amqp.exceptions.NotFound`` (and closes the channel) otherwise."""
    channel.exchange_declare(exchange, "topic", passive=True)
    channel.exchange_declare(dlx, "topic", passive=True)


def check_dlq(channel: Any, service: str) -> None:
    """Passive check that ``<service>.dlq`` exists (else dead letters would be dropped)."""
    channel.queue_declare(dlq_name(service), passive=True)


# --------------------------------------------------------------------------- set-up (administrator)


class BrokerSetupError(RuntimeError):
    pass


class ManagementApi:
    """The RabbitMQ management HTTP API as an administrator (``http://user:password@host:15672``)."""

    def __init__(self, url: str, timeout: float = 15.0) -> None:
        parts = urllib.parse.urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
        self.base: str = f"{parts.scheme}://{host}{parts.path.rstrip('/')}"
        user = urllib.parse.unquote(parts.username or "guest")
        password = urllib.parse.unquote(parts.password or "guest")
        self._auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.timeout = timeout
        # never send the administrator's credentials through a proxy from the environment
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(self, method: str, path: str, body: Any = None, ok_missing: bool = False) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + "/api" + path, data=data, method=method,
                                         headers={"Content-Type": "application/json",
                                                  "Authorization": self._auth})
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                text = response.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 404 and ok_missing:
                return None
            reason = exc.read().decode(errors="replace")[:300]
            raise BrokerSetupError(f"{method} {path}: HTTP {exc.code} {reason}") from None
        return json.loads(text) if text else None


def _q(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def setup_broker(api: ManagementApi, vhost: str, users: Mapping[str, tuple[str, str]],
                 exchange: str = "aid.events", dlx: str = "aid.dlx", consumers: Iterable[str] = (),
                 admin: str | None = None, queue_type: str = "classic") -> None:
    """Create or update (idempotently) the vhost, a user per process with its :func:`grant`, both
    exchanges, and a dead-letter queue per consumer.

    ``users`` maps a process (relay, enrolment, ...) to its (user name, password).
    ``consumers`` adds processes that consume although they are not in :data:`CONSUMERS`
    (test services). ``admin`` (the set-up's own user) gets full permissions on the vhost.
    ``queue_type`` is the type of the dead-letter queues (:func:`queue_arguments`).
    """
    extra = set(consumers)
    v = _q(vhost)
    api.call("PUT", f"/vhosts/{v}", {})
    if admin:
        api.call("PUT", f"/permissions/{v}/{_q(admin)}", {"configure": ".*", "write": ".*", "read": ".*"})
    _declare_exchange(api, v, exchange)
    _declare_exchange(api, v, dlx)
    for process in sorted({p for p in users if p in CONSUMERS or p in extra}):
        declare_dlq(api, v, dlx, process, queue_type)
    for process, (user, password) in sorted(users.items()):
        rule = grant(process, exchange, dlx, consumer=process in CONSUMERS or process in extra)
        api.call("PUT", f"/users/{_q(user)}", {"password": password, "tags": ""})
        api.call("PUT", f"/permissions/{v}/{_q(user)}",
                 {"configure": rule.configure, "write": rule.write, "read": rule.read})
        current = api.call("GET", f"/topic-permissions/{v}/{_q(user)}", ok_missing=True) or []
        if {p["exchange"] for p in current} - set(rule.topic):  # a stale one: start again
            api.call("DELETE", f"/topic-permissions/{v}/{_q(user)}", ok_missing=True)
        for topic_exchange, (write, read) in rule.topic.items():
            api.call("PUT", f"/topic-permissions/{v}/{_q(user)}",
                     {"exchange": topic_exchange, "write": write, "read": read})


def _declare_exchange(api: ManagementApi, v: str, name: str) -> None:
    spec = {"type": "topic", "durable": True, "auto_delete": False, "internal": False, "arguments": {}}
    try:
        api.call("PUT", f"/exchanges/{v}/{_q(name)}", spec)
    except BrokerSetupError as exc:
        if "inequivalent" not in str(exc):
            raise
        # An older set-up declared it as a direct exchange. Exchanges hold no messages, and the
        # dead-letter queues are bound again right after: replace it by the topic exchange.
        api.call("DELETE", f"/exchanges/{v}/{_q(name)}")
        api.call("PUT", f"/exchanges/{v}/{_q(name)}", spec)


def declare_dlq(api: ManagementApi, v: str, dlx: str, service: str, queue_type: str = "classic") -> None:
    """The one place that declares a dead-letter queue and binds it to the dead-letter exchange."""
    queue = dlq_name(service)
    api.call("PUT", f"/queues/{v}/{_q(queue)}",
             {"durable": True, "auto_delete": False, "arguments": queue_arguments(queue_type)})
    api.call("POST", f"/bindings/{v}/e/{_q(dlx)}/q/{_q(queue)}", {"routing_key": queue, "arguments": {}})


def delete_users(api: ManagementApi, users: Iterable[str]) -> None:
    for user in users:
        api.call("DELETE", f"/users/{_q(user)}", ok_missing=True)


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    from backbone import config

    parser = argparse.ArgumentParser(prog="python -m backbone.topology",
                                     description="Broker users, permissions and topology (idempotent).")
    sub = parser.add_subparsers(dest="command", required=True)
    setup = sub.add_parser("setup", help="apply users, permissions, exchanges and dead-letter queues "
                                         "(AID_BROKER_ADMIN_URL, AID_AMQP_PASSWORD_<PROCESS>)")
    setup.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the management API")
    sub.add_parser("grants", help="print the permission table (tab-separated)")
    args = parser.parse_args(argv)
    settings = config.load()
    if args.command == "grants":
        print("user\tconfigure\twrite\tread\ttopic (exchange: write / read)")
        for process in PROCESSES:
            rule = grant(process, settings.exchange, settings.dead_letter_exchange)
            topic = "; ".join(f"{x}: {w} / {r}" for x, (w, r) in rule.topic.items()) or "-"
            print(f"{user_name(process)}\t{rule.configure}\t{rule.write}\t{rule.read}\t{topic}")
        return 0
    broker = config.broker_setup()
    users = {p: (user_name(p), broker.passwords[p]) for p in PROCESSES}
    api = ManagementApi(broker.admin_url)
    deadline = time.monotonic() + args.wait
    while True:
        try:
            setup_broker(api, broker.vhost, users, settings.exchange, settings.dead_letter_exchange,
                         admin=broker.admin_user, queue_type=settings.queue_type)
            break
        except OSError as exc:  # the management API is not listening yet (the broker is starting)
            if time.monotonic() > deadline:
                raise BrokerSetupError(f"management API unreachable: {exc}") from None
            time.sleep(2)
    names = ", ".join(u for u, _ in users.values())
    print(f"broker set up: vhost {broker.vhost!r}, users {names}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
