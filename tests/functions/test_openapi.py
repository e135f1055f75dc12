"""openapi.yaml is generated from the code and must say what the running server does."""

from __future__ import annotations

import typing

import yaml
from videogen_dev import openapi
from videogen_dev.cli import main
from videogen_dev.devserver import FUNCTIONS

from videogen.integrations.providers.registry import PROVIDERS
from videogen.models.workers import ProviderQuery


def test_openapi_yaml_is_what_the_code_generates():
    path = openapi.default_path()
    assert path.read_text(encoding="utf-8") == openapi.render(), (
        "openapi.yaml is stale: run `videogen openapi`"
    )
    assert yaml.safe_load(path.read_text(encoding="utf-8")) == openapi.build()


def test_cli_check_and_write(tmp_path, capsys):
    assert main(["openapi", "--check"]) == 0
    target = tmp_path / "openapi.yaml"
    assert main(["openapi", "--check", "--output", str(target)]) == 1
    assert main(["openapi", "--output", str(target)]) == 0
    assert main(["openapi", "--check", "--output", str(target)]) == 0
    target.write_text(target.read_text() + "# edited\n")
    assert main(["openapi", "--check", "--output", str(target)]) == 1
    assert "differs" in capsys.readouterr().err


def test_document_covers_the_contract():
    doc = openapi.build()
    assert doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) == {f"/functions/v1/{name}" for name in FUNCTIONS} | {
        # queue-job's sub-paths: the catalogue, the workspace, the wizard's free helpers,
        # prompts and the admin view
        *(
            f"/functions/v1/queue-job/{sub}"
            for sub in (
                "models",
                "voices",
                "voices/preview",
                "quote",
                "script/analyze",
                "projects",
                "batches",
                "element-templates",
                "element-templates/render",
                "enhance",
                "share-links",
                "shared",  # a share link, opened by anyone holding it
                "webhook-deliveries",
                "admin/jobs",
                "admin/workers",
                "admin/templates",
            )
        ),
        "/functions/v1/update-credits/profile",
        "/functions/v1/update-credits/keys",
        "/functions/v1/update-credits/api-keys",
        "/functions/v1/update-credits/account",
        "/functions/v1/update-credits/webhook-secret",
        "/functions/v1/update-credits/apple-notifications",  # Apple's server notifications
        # the probes and the scrape, sub-paths of the sweep
        "/functions/v1/health-check-workers/live",
        "/functions/v1/health-check-workers/ready",
        "/functions/v1/health-check-workers/metrics",
    }
    components = doc["components"]
    for model in openapi.REQUEST_MODELS:
        assert model.__name__ in components["schemas"]
    assert {
        "bearerAuth",
        "apikey",
        "personalApiKey",
        "xApiKey",
        "webhookSignature",
        "stripeSignature",
    } <= set(components["securitySchemes"])
    text = yaml.safe_dump(doc)
    assert "$defs" not in text  # every nested model is a component
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            statuses = set(op["responses"])
            assert statuses & {"200", "201", "202"}, (path, method)
            if path.endswith("/apple-notifications"):  # the body's JWS is the credential
                assert {"401", "503"} <= statuses, (path, method)
            elif path.endswith("/shared"):  # a share link: the id in the URL is the credential
                assert op["security"] == [{}] and {"302", "404", "410"} <= statuses, path
            elif op["security"] == [{}]:  # the public probes: nothing to refuse
                assert path.endswith(("/live", "/ready")), path
                assert statuses <= {"200", "503"}, (path, method)
            else:
                assert {"401", "503"} <= statuses, (path, method)
            if method == "post":
                assert "413" in statuses and "422" in statuses, path
            for status, response in op["responses"].items():
                assert "x-request-id" in response["headers"]
                if status == "429":
                    assert "Retry-After" in response["headers"]
    creates = doc["paths"]["/functions/v1/generate-video"]["post"]["responses"]
    assert {"202", "402", "404", "409", "422", "429"} <= set(creates)
    assert creates["202"]["content"]["application/json"]["schema"]["properties"]["data"] == {
        "$ref": "#/components/schemas/Job"
    }


def test_provider_names_agree_with_the_registry():
    provider = ProviderQuery.model_fields["provider"].annotation
    assert set(typing.get_args(typing.get_args(provider)[0])) == set(PROVIDERS)


def test_documented_methods_are_the_served_ones(api):
    doc = openapi.build()
    for name in FUNCTIONS:
        resp = api.http.options(api.url(name))
        served = {m.strip() for m in resp.headers["access-control-allow-methods"].split(",")}
        documented = {m.upper() for m in doc["paths"][f"/functions/v1/{name}"]}
        assert served == documented | {"OPTIONS"}, name
    for probe in ("live", "ready", "metrics"):  # GET only: anything else is a 405
        resp = api.post(f"health-check-workers/{probe}", json={})
        assert resp.status_code == 405 and resp.headers["allow"] == "GET, OPTIONS", probe
