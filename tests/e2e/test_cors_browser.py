"""CORS as a browser enforces it: a page served from another origin calls every route and
method of the five functions with supabase-js (``functions.invoke``) in headless Chromium,
and reads each answer — PATCH …/profile, PUT/DELETE …/keys, PATCH/DELETE …/projects and
every JSON POST included. A method a route does not declare is refused by the browser
itself. Driven by tests/e2e/js/cors_browser.mjs; what the calls did is checked in the
database. tests/functions/test_cors.py checks the same preflights over plain HTTP."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from e2e_stack import T2V, Stack
from videogen_dev.devserver import contracts
from videogen_dev.users import ensure_user

from videogen.config import LOCAL_PUBLISHABLE_KEY, LOCAL_SECRET_KEY
from videogen.kit.auth import issue_access_token

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("js") / "cors_browser.mjs"
FAL_KEY = "3f1c9a52-cors:0a1b2c3d4e5f60718293a4b5c6d7e8f9"  # a well-formed, made-up key
ADMIN_META = {"provider": "email", "providers": ["email"], "role": "admin"}


def _run_page(stack: Stack, browser: tuple[str, str], tmp_path: Path) -> dict[str, Any]:
    """A user and an admin, then the node script in Chromium; what the page read."""
    db = stack.server.db_url
    user_id, _ = ensure_user(db, "far-away@example.com")
    admin_id, _ = ensure_user(db, "far-admin@example.com")
    config = tmp_path / "cors-config.json"
    config.write_text(
        json.dumps(
            {
                "publishable_key": LOCAL_PUBLISHABLE_KEY,
                "secret_key": LOCAL_SECRET_KEY,
                "user_token": issue_access_token(user_id, email="far-away@example.com"),
                "admin_token": issue_access_token(
                    admin_id, email="far-admin@example.com", app_metadata=ADMIN_META
                ),
                "fal_key": FAL_KEY,
                "model": T2V,
            }
        )
    )
    node, chromium = browser
    done = subprocess.run(
        [node, str(SCRIPT), stack.server.base, str(config), str(tmp_path / "chromium-profile"),
         chromium],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    print(done.stderr)
    assert done.returncode == 0, done.stderr[-4000:]
    seen: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    seen["user_id"] = user_id
    return seen


def test_a_page_on_another_origin_calls_every_route(
    stack: Stack, browser: tuple[str, str], tmp_path: Path, capsys: Any
) -> None:
    seen = _run_page(stack, browser, tmp_path)
    assert seen["page_origin"] == seen["origin"] != stack.server.base  # cross-origin
    assert seen["page_errors"] == []

    # Every declared route and method was called, and the page read every answer: no call
    # was stopped by CORS, each status was the one expected, and the exposed headers were
    # readable.
    calls = seen["calls"]
    declared = {
        (name, route, method)
        for name, contract in contracts().items()
        for route, methods in contract.all_routes()
        for method in methods
    }
    assert {(c["function"], c["route"], c["method"]) for c in calls} == declared
    for c in calls:
        where = (c["method"], c["function"], c["route"], c["error"])
        assert c["fetch_error"] is None, where
        assert c["status"] in c["expect"], where
        assert c["request_id"], where
    non_simple = [c for c in calls if c["method"] in ("PATCH", "PUT", "DELETE", "POST")]
    assert {(c["method"], c["function"], c["route"]) for c in non_simple} >= {
        ("PATCH", "update-credits", "/profile"),
        ("PUT", "update-credits", "/keys"),
        ("DELETE", "update-credits", "/keys"),
        ("PATCH", "queue-job", "/projects"),
        ("DELETE", "queue-job", "/projects"),
        ("DELETE", "queue-job", "/batches"),
        ("DELETE", "queue-job", None),
    }
    assert seen["replay"]["replayed"] == "true"
    assert seen["replay"]["data"]["id"] == seen["project"]
    assert seen["preview"]["content_type"].startswith("audio/wav")

    # The control: PATCH is no method of generate-video, so the browser refused the call
    # after its preflight, and said why.
    assert seen["control"]["status"] is None and seen["control"]["fetch_error"], seen["control"]
    assert (
        "Method PATCH is not allowed by Access-Control-Allow-Methods" in (seen["control_console"])
    )
    assert seen["origin"] in seen["control_console"]
    cors_lines = [m["text"] for m in seen["console"] if "CORS policy" in m["text"]]
    assert cors_lines == [seen["control_console"]]  # no other call was refused

    # What the calls did, in the database.
    uid = seen["user_id"]
    assert stack.sql("select theme, language from public.profiles where id = %s", uid) == [
        {"theme": "dark", "language": "pt-BR"}
    ]
    assert stack.sql("select provider from public.provider_keys where user_id = %s", uid) == []
    assert stack.sql("select 1 from public.projects where id = %s", seen["project"]) == []
    assert stack.job_row(seen["canceled"])["status"] == "canceled"
    batch = stack.sql("select status from public.jobs where batch_id = %s", seen["batch"])
    assert [r["status"] for r in batch] == ["canceled"]
    requeued = stack.job_row(seen["generated"])
    assert (requeued["status"], requeued["error_code"]) == ("queued", "ADMIN_REQUEUED")
    assert stack.sql(
        "select active from public.prompt_templates where instruction = %s",
        "Read it warmly, from afar.",
    ) == [{"active": False}]
    with capsys.disabled():
        print(
            f"\ncross-origin page {seen['origin']} → API {seen['api']}: {len(calls)} calls, "
            f"{len(non_simple)} non-simple, none refused; control refused; "
            f"browser run {seen['seconds']:.1f} s"
        )
