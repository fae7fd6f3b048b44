"""Run the console: ``python -m console`` (``AID_API_PORT``, default 8080; ``/metrics`` and
``/health`` on ``AID_METRICS_PORT``, default 9107)."""

from __future__ import annotations

import os


def main() -> int:
    import eventlet

    eventlet.monkey_patch()
    import logging

    from eventlet import wsgi

    from backbone import observability
    from console.web import ConsoleApp

    logging.basicConfig(level=os.environ.get("AID_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    port = int(os.environ.get("AID_API_PORT", "8080"))
    metrics_port = int(os.environ.get("AID_METRICS_PORT", "9107"))
    host = os.environ.get("AID_CONSOLE_HOST", "0.0.0.0")
    observability.serve_metrics("console", metrics_port, lambda: {"pages": "ok"})
    app = ConsoleApp()
    logging.getLogger("aid.console").info("console on :%d, metrics and health on :%d", port, metrics_port)
    # log_output off: request lines would carry query strings (months, school codes); no bodies ever
    wsgi.server(eventlet.listen((host, port)), app, log_output=False, max_size=256, debug=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
