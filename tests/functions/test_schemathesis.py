"""Property-based requests from openapi.yaml against a live server: never a 5xx, and every
answer matches the document (status, content type, headers, body schema).

A user with credits calls every operation (with the cron secret too, so the sweep runs);
worker-signed operations are signed like a worker would, so their bodies reach the code
behind the signature check.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from videogen_dev import openapi

from videogen.config import LOCAL_CRON_SECRET
from videogen.integrations import webhooks

schema = schemathesis.openapi.from_path(openapi.default_path())

SIGNED = {"/functions/v1/job-callback", "/functions/v1/health-check-workers"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Known, documented 503s that only say "this deployment has no such key" (no FAL_KEY, no
# METRICS_TOKEN) or, for the readiness probe, that nothing can serve jobs on this server.
UNCONFIGURED = {
    "PROVIDER_NOT_CONFIGURED",
    "METRICS_NOT_CONFIGURED",
    "NOT_READY",
    "APP_STORE_NOT_CONFIGURED",
    "DEVICECHECK_NOT_CONFIGURED",
}


@pytest.fixture(scope="module")
def fuzz(fuzz_api):
    """The fuzzing server, a user with credits and one job, and an HTTP session."""
    user = fuzz_api.user(credits=1_000_000)
    seed = {"model": "reference/text-to-video", "prompt": "seed job"}
    fuzz_api.ok(fuzz_api.post("generate-video", user=user, json=seed), 202)
    with requests.Session() as session:
        yield fuzz_api.server, user, session


def _send(case: Any, server: Any, user: Any, session: requests.Session) -> requests.Response:
    headers = {"Authorization": f"Bearer {user.token}", "x-cron-secret": LOCAL_CRON_SECRET}
    kwargs = case.as_transport_kwargs(base_url=server.base, headers=headers)
    provider = (kwargs.get("params") or {}).get("provider")
    if case.method == "POST" and case.path in SIGNED and not provider and "json" in kwargs:
        body = json.dumps(kwargs.pop("json")).encode()
        kwargs["data"] = body
        kwargs["headers"].update(webhooks.sign(body))
    return session.request(**kwargs, timeout=30)


# One pytest item per operation (not schemathesis' own parametrize, whose per-operation
# results are subtests that a pytest-xdist run does not report: a failure there would pass).
OPERATIONS = [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
def test_no_server_errors_and_answers_match_the_document(operation: Any, fuzz: Any) -> None:
    server, user, session = fuzz

    @given(case=operation.as_strategy())
    @settings(
        max_examples=20,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    def answers_as_documented(case: Any) -> None:
        response = _send(case, server, user, session)
        if response.status_code == 503 and response.json()["error"]["code"] in UNCONFIGURED:
            return
        assert response.status_code < 500, response.text
        case.validate_response(response, checks=CHECKS)

    answers_as_documented()
