"""Run one nameko service as a process: ``python -m backbone.runservice <name>``.

Patches the standard library for eventlet and picks psycopg's green-friendly wait function
*before* anything imports psycopg, starts the service's AMQP and HTTP entry points, serves
``/metrics`` and ``/health`` on the metrics port and keeps ``aid_consumer_lag_events`` fresh.
"""

from __future__ import annotations

import os
import sys

SERVICES = ("enrolment", "spotcheck", "facematch", "eligibility", "appeals", "hardship")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help") or (args[0] not in SERVICES and ":" not in args[0]):
        print(f"usage: python -m backbone.runservice {{{','.join(SERVICES)}}}\n\n{__doc__}", file=sys.stderr)
        return 0 if args and args[0] in ("-h", "--help") else 2
    target = args[0]  # a service name, or module:SERVICE for a test service
    os.environ.setdefault("PSYCOPG_WAIT_FUNC", "wait_select")
    import eventlet

    eventlet.monkey_patch()

    import importlib
    import logging
    import signal

    from nameko.runners import ServiceRunner

    from backbone import config, observability

    module = importlib.import_module(target.partition(":")[0] if ":" in target
                                     else f"services.{target}.service")
    service_cls = module.SERVICE
    name = service_cls.name
    logging.basicConfig(level=os.environ.get("AID_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    log = logging.getLogger(f"aid.{name}")
    settings = config.load()
    metrics_port, api_port = config.ports(name)
    nameko_config = {
        "AMQP_URI": settings.amqp_url,
        "WEB_SERVER_ADDRESS": f"0.0.0.0:{api_port}",
        # workers (and so the AMQP prefetch) per process; a service may ask for fewer
        "max_workers": int(os.environ.get("AID_MAX_WORKERS", getattr(service_cls, "max_workers", 10))),
        "serializer": "json",
    }
    runner = ServiceRunner(nameko_config)
    runner.add_service(service_cls)
    runner.start()

    from backbone.health import consumer_lag_loop, health_checks

    observability.serve_metrics(name, metrics_port, lambda: health_checks(settings))
    queues = [f"{name}.{ep.method_name}" for ep in runner.service_map[name].entrypoints
              if type(ep).__name__ == "EventConsumer"]
    eventlet.spawn(consumer_lag_loop, settings, name, queues)
    log.info("%s started: API on :%d, metrics and health on :%d", name, api_port, metrics_port)

    def shutdown(signum: int, frame: object) -> None:
        eventlet.spawn(runner.stop)

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    runner.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
