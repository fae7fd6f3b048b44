"""Thin HTTP helpers for nameko ``@http`` entry points: JSON in, JSON out, clear errors, metrics."""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from backbone import observability
from backbone.errors import DomainError
from backbone.eventstore import ConcurrencyError, IdempotencyConflict
from contracts.registry import ContractError

log = logging.getLogger("aid.http")
MAX_BODY = 20 * 1024 * 1024

Response = tuple[int, dict[str, str], str]


def _json(status: int, body: Any) -> Response:
    return status, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(body, ensure_ascii=False, default=str)


def read_json(request: Any) -> dict[str, Any]:
    length = request.content_length or 0
    if length > MAX_BODY:
        raise DomainError("BODY_TOO_LARGE", f"request body over {MAX_BODY} bytes")
    try:
        data = json.loads(request.get_data(as_text=True) or "{}")
    except json.JSONDecodeError as exc:
        raise DomainError("MALFORMED_JSON", f"request body is not JSON: {exc.msg} at line {exc.lineno}") from exc
    if not isinstance(data, dict):
        raise DomainError("MALFORMED_JSON", "request body must be a JSON object")
    return data


def endpoint(service: str, name: str) -> Callable[[Callable[..., Any]], Callable[..., Response]]:
    """Wrap a handler returning ``(status, body)``; map errors to 4xx with a code; count and time it."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Response]:
        @functools.wraps(fn)
        def handler(self: Any, request: Any, *args: Any, **kwargs: Any) -> Response:
            started = time.perf_counter()
            try:
                status, body = fn(self, request, *args, **kwargs)
                response = _json(status, body)
            except DomainError as exc:
                response = _json(exc.status, {"error": exc.code, "message": exc.message})
            except ContractError as exc:
                response = _json(422, {"error": "CONTRACT_VIOLATION", "message": exc.reason})
            except ConcurrencyError as exc:
                response = _json(409, {"error": "CONCURRENT_CHANGE", "message": str(exc)})
            except IdempotencyConflict as exc:
                response = _json(409, {"error": "IDEMPOTENCY_CONFLICT", "message": str(exc)})
            except Exception:
                log.exception("unhandled error in %s.%s", service, name)
                response = _json(500, {"error": "INTERNAL", "message": "internal error; see the service log"})
            observability.HTTP_REQUESTS.labels(service=service, endpoint=name, status=str(response[0])).inc()
            observability.HTTP_SECONDS.labels(service=service, endpoint=name).observe(time.perf_counter() - started)
            return response

        return handler

    return wrap


def read_images(body: dict[str, Any], name: str, store: Any, required: bool = True) -> list[str]:
    """Base64 images in ``body[name]`` (a string or a list) stored as blobs; returns references."""
    import base64
    import binascii

    raw = body.get(name)
    if raw in (None, "", []):
        if required:
            raise DomainError("MISSING_FIELD", f"missing field {name!r} (base64 images)")
        return []
    items = raw if isinstance(raw, list) else [raw]
    refs = []
    for index, item in enumerate(items):
        try:
            data = base64.b64decode(str(item), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise DomainError("MALFORMED_IMAGE", f"{name}[{index}] is not valid base64") from exc
        if not data:
            raise DomainError("EMPTY_IMAGE", f"{name}[{index}] is empty")
        refs.append(store.put(data))
    return refs
