"""OpenAPI 3.1 documents generated from the route declarations (``backbone/edge.py``), and
the route x role table of the docs.

``python -m backbone.openapi generate`` writes ``docs/openapi.json`` (every service, combined)
and ``docs/access.md`` (who may call what); ``check`` exits 1 when either is stale.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from backbone.auth import ROLES
from backbone.edge import Route, routes_of
from backbone.fields import ID_PATTERN, Error

REPO = Path(__file__).resolve().parent.parent
HTTP_SERVICES = ("enrolment", "spotcheck", "facematch", "eligibility", "appeals", "hardship")
REF = "#/components/schemas/{model}"
ERRORS = {
    "400": "Malformed request (body not JSON, missing body) or a rule refused it",
    "401": "No valid credential (missing, expired or wrong token; revoked terminal)",
    "403": "The caller's role or area does not allow this",
    "404": "Not found",
    "409": "Conflicts with the current state",
    "413": "Body too large",
    "415": "Body is not JSON",
    "422": "Invalid fields (each with its path and a code) or a rule refused the request",
    "503": "The database is unavailable for a moment; retry after the Retry-After seconds",
}


def path_schema(name: str) -> dict[str, Any]:
    """Path parameters are identifiers, and a ``month`` is YYYY-MM (checked by the edge)."""
    if name == "month":
        return {"type": "string", "pattern": r"^\d{4}-(0[1-9]|1[0-2])$"}
    return {"type": "string", "pattern": ID_PATTERN, "maxLength": 64}


def _models(routes: list[Route]) -> list[type[BaseModel]]:
    models: list[type[BaseModel]] = [Error]
    for r in routes:
        for m in (r.body, r.returns):
            if m is not None and m not in models:
                models.append(m)
    return models


def document(service_cls: type, server: str | None = None) -> dict[str, Any]:
    routes = [r for r in routes_of(service_cls) if not r.public]
    models = _models(routes)
    keys, defs = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    schemas = defs.get("$defs", {})

    def ref(model: type[BaseModel]) -> dict[str, Any]:
        return keys[(model, "validation")]

    paths: dict[str, Any] = {}
    for r in routes:
        op: dict[str, Any] = {
            "operationId": f"{getattr(service_cls, 'name', 'service')}.{r.name}",
            "summary": r.summary,
            "description": f"Roles: {', '.join(sorted(r.roles))}."
                           + (" Reads personal data (recorded)." if r.personal else "")
                           + (" Accepts an Idempotency-Key." if r.idempotent else ""),
            "security": [{"bearer": []}],
            "parameters": [{"name": p, "in": "path", "required": True, "schema": path_schema(p)}
                           for p in r.path_params],
            "responses": {str(r.status): {"description": "Success", "content": {"application/json": {
                "schema": ref(r.returns) if r.returns else {"type": "object"}}}}},
        }
        if r.query is not None:
            qschema = r.query.model_json_schema(ref_template=REF)
            required = set(qschema.get("required", []))
            for pname, pschema in qschema.get("properties", {}).items():
                op["parameters"].append({"name": pname, "in": "query", "required": pname in required,
                                         "schema": pschema})
        if r.idempotent:
            op["parameters"].append({"name": "Idempotency-Key", "in": "header", "required": False,
                                     "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,128}$"}})
        if r.body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref(r.body)}}}
        for status, text in ERRORS.items():
            if status in ("413", "415") and r.body is None:
                continue
            op["responses"][status] = {"description": text,
                                       "content": {"application/json": {"schema": ref(Error)}}}
        paths.setdefault(r.openapi_path, {})[r.method.lower()] = op
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": f"student aid: {getattr(service_cls, 'name', 'service')}", "version": "1"},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    }
    if server:
        doc["servers"] = [{"url": server}]
    return doc


def service_classes() -> dict[str, type]:
    return {name: importlib.import_module(f"services.{name}.service").SERVICE for name in HTTP_SERVICES}


def combined() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for name, cls in service_classes().items():
        doc = document(cls)
        for path, ops in doc["paths"].items():
            for op in ops.values():
                op["tags"] = [name]
            paths[f"/{name}{path}"] = ops
        schemas.update(doc["components"]["schemas"])
    return {"openapi": "3.1.0",
            "info": {"title": "student aid: every service", "version": "1",
                     "description": "Each service serves its own part at /openapi.json; here the paths are"
                                    " prefixed with the service name."},
            "paths": paths,
            "components": {"schemas": schemas, "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}}}


def matrix_markdown() -> str:
    lines = ["# Who may call what", "",
             "Generated by `python -m backbone.openapi generate` from the route declarations; a test",
             "(`tests/integration/test_access_matrix.py`) walks every cell against the running services.",
             "", "✔ the role may call the route (then its area is checked: staff and terminals their",
             "school, county and city authorities their area, app tokens their own student); ✘ 403.",
             "Every route answers 401 without a valid token. `GET /openapi.json` is public.", "",
             "| service | route | " + " | ".join(ROLES) + " |",
             "|---|---|" + "---|" * len(ROLES)]
    for name, cls in service_classes().items():
        for r in routes_of(cls):
            if r.public:
                continue
            cells = ["✔" if role in r.roles else "✘" for role in ROLES]
            lines.append(f"| {name} | `{r.method} {r.openapi_path}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backbone.openapi", description=__doc__)
    parser.add_argument("action", choices=["generate", "check"])
    args = parser.parse_args(argv)
    outputs = {REPO / "docs" / "openapi.json": json.dumps(combined(), indent=1, ensure_ascii=False) + "\n",
               REPO / "docs" / "access.md": matrix_markdown()}
    stale = [p for p, text in outputs.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
    if args.action == "generate":
        for path, text in outputs.items():
            path.write_text(text, encoding="utf-8")
        print(f"wrote {', '.join(str(p.relative_to(REPO)) for p in outputs)}", file=sys.stderr)
        return 0
    if stale:
        print(f"stale: {', '.join(str(p.relative_to(REPO)) for p in stale)}; run"
              " `python -m backbone.openapi generate`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
