"""The dev server serves every function over real HTTP."""

import httpx
import pytest
from videogen_dev.devserver import FUNCTIONS


@pytest.mark.parametrize("name", FUNCTIONS)
def test_preflight_answers_cors(live_server, name):
    resp = httpx.options(live_server.url(name), headers={"Origin": "https://app.example"})
    assert resp.status_code == 204
    assert "authorization" in resp.headers["access-control-allow-headers"]
    assert resp.headers["x-request-id"]


def test_missing_credentials_is_401_envelope(live_server):
    resp = httpx.get(live_server.url("generate-video"))
    assert resp.status_code == 401
    body = resp.json()
    assert body["success"] is False
    assert body["error"]["code"] == "UNAUTHORIZED"
    assert resp.headers["x-content-type-options"] == "nosniff"
