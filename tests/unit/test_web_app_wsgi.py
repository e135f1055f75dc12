"""The web app's WSGI app (videogen_dev.web_app), called directly: what it serves, with
which headers, and the envelopes of everything else."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from videogen_dev.web_app import FILES, STATIC_DIR, web_app
from werkzeug.test import Client

from videogen.config import LOCAL_PUBLISHABLE_KEY, LOCAL_SECRET_KEY, get_settings


@pytest.fixture
def client() -> Iterator[Client]:
    get_settings.cache_clear()
    yield Client(web_app())
    get_settings.cache_clear()


def test_serves_the_page_files_with_their_types_and_no_cache(client):
    for name, content_type in FILES.items():
        resp = client.get(f"/{name}")
        assert resp.status_code == 200
        assert resp.headers["Content-Type"] == content_type
        assert resp.headers["Cache-Control"] == "no-cache"
        assert resp.data == (STATIC_DIR / name).read_bytes()
    assert client.get("/").data == (STATIC_DIR / "index.html").read_bytes()
    assert client.head("/app.js").data == b""


def test_config_holds_the_publishable_key_only(client, monkeypatch):
    monkeypatch.setenv("SUPABASE_PUBLISHABLE_KEY", "sb_publishable_elsewhere")
    get_settings.cache_clear()
    resp = client.get("/config.json")
    assert resp.headers["Content-Type"] == "application/json"
    assert json.loads(resp.data) == {"publishable_key": "sb_publishable_elsewhere"}
    monkeypatch.delenv("SUPABASE_PUBLISHABLE_KEY")
    get_settings.cache_clear()
    body = client.get("/config.json").data.decode()
    assert json.loads(body) == {"publishable_key": LOCAL_PUBLISHABLE_KEY}
    assert LOCAL_SECRET_KEY not in body


def test_the_mount_point_redirects_to_its_slash():
    resp = Client(web_app()).get("", environ_overrides={"SCRIPT_NAME": "/app"})
    assert resp.status_code == 308 and resp.headers["Location"] == "/app/"


def test_anything_else_is_a_404_envelope(client):
    for path in ("/nope.js", "/vendor/other.js", "/webapp/app.js", "/../web_app.py"):
        resp = client.get(path)
        assert resp.status_code == 404, path
        assert resp.headers["Content-Type"] == "application/json"
        assert resp.json == {
            "success": False,
            "error": {"code": "NOT_FOUND", "message": "No such file."},
        }
    refused = client.post("/config.json")
    assert refused.status_code == 405 and refused.headers["Allow"] == "GET, HEAD"
    assert refused.json["error"]["code"] == "METHOD_NOT_ALLOWED"


def test_supabase_js_comes_from_node_modules_or_a_503_with_the_fix(client, monkeypatch, tmp_path):
    monkeypatch.setenv("VIDEOGEN_ROOT", str(tmp_path))
    resp = client.get("/vendor/supabase.js")
    assert resp.status_code == 503
    assert resp.json["error"] == {
        "code": "SERVICE_UNAVAILABLE",
        "message": "supabase-js is not installed in this project (node_modules).",
        "hint": "run make setup",
    }
    built = tmp_path / "node_modules/@supabase/supabase-js/dist/umd/supabase.js"
    built.parent.mkdir(parents=True)
    built.write_text("var supabase = {}")
    resp = client.get("/vendor/supabase.js")
    assert resp.status_code == 200 and resp.data == b"var supabase = {}"
    assert resp.headers["Content-Type"] == "text/javascript; charset=utf-8"
