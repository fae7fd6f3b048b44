"""Schemathesis against the running services: requests generated from each service's own
``/openapi.json`` (valid ones, and invalid ones in negative mode), sent with a token of a role
the route allows. Every answer must conform to the document (status, content type, schema)
and none may be a 5xx. Bounded: a few examples per operation and mode, derandomised.

The figures (examples run, answers by status and refusal code) are printed for the notes and
``docs/benchmarks.md``; run with ``-s`` to see them."""

from __future__ import annotations

import collections
import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from backbone.edge import routes_of
from backbone.openapi import service_classes
from tests.support import metric_value

pytestmark = pytest.mark.integration
EXAMPLES = int(os.environ.get("AID_FUZZ_EXAMPLES", "20"))
PREFERENCE = ("province", "operations", "school", "terminal", "auditor", "city", "county", "student")


def roles_by_operation() -> dict[tuple[str, str, str], tuple[str, ...]]:
    table = {}
    for name, cls in service_classes().items():
        for r in routes_of(cls):
            table[(name, r.method.upper(), r.openapi_path)] = tuple(sorted(r.roles))
    return table


def fuzz(operation: Any, base: str, headers: dict[str, str], mode: GenerationMode,
         statuses: collections.Counter[int]) -> None:
    """Send up to EXAMPLES generated requests for one operation and check every answer."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        # The generated case carries a random bearer value where the document asks for one, and
        # none where a negative case removed it: put a real token in its place, or send none.
        if "Authorization" in (case.headers or {}):
            case.headers = {**case.headers, **headers}
        response = case.call(base_url=base, timeout=30)
        statuses[response.status_code] += 1
        assert response.status_code < 500, (operation.path, response.text[:300])
        # A schema-valid request may still break a rule (an ID number's check digit, a check
        # window in the past): refusing it with a documented 4xx is right, so that check is off.
        # A query string has no JSON types: a "negative" boolean true arrives as the text "true",
        # a valid identifier, so negative-data rejection is not checked for query parameters.
        excluded = [positive_data_acceptance]
        if case.query:
            excluded.append(negative_data_rejection)
        case.validate_response(response, excluded_checks=excluded)

    run()


def test_no_request_makes_a_server_error_and_every_answer_conforms(edge_system: Any) -> None:
    _, procs, tokens = edge_system
    roles = roles_by_operation()
    statuses: collections.Counter[int] = collections.Counter()
    for name, proc in procs.items():
        base = f"http://127.0.0.1:{proc.api_port}"
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
        for result in schema.get_all_operations():
            operation = result.ok()
            allowed = roles[(name, operation.method.upper(), operation.path)]
            role = next(r for r in PREFERENCE if r in allowed)
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                fuzz(operation, base, {"Authorization": f"Bearer {tokens[role]}"}, mode, statuses)
    refusals: collections.Counter[str] = collections.Counter()
    for name, proc in procs.items():
        text = proc.metrics()
        for line in text.splitlines():
            if line.startswith("aid_http_refusals_total{"):
                code = line.split('code="', 1)[1].split('"', 1)[0]
                refusals[code] += int(float(line.rsplit(" ", 1)[1]))
        assert metric_value(text, "aid_http_requests_total", status="500") == 0, name
    examples = sum(statuses.values())
    print(f"\nfuzz: {examples} requests; answers by status {dict(sorted(statuses.items()))};"
          f" refusals by code {dict(refusals.most_common())}")
    assert examples > 0 and not any(status >= 500 for status in statuses)
