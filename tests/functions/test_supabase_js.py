"""supabase-js itself (from npm, `make setup`) against the local stack: it signs in with the
local Auth API, verifies the ES256 token against our JWKS, reaches the functions with
`functions.invoke` at `<SUPABASE_URL>/functions/v1`, joins its private Realtime topic
(another user's is refused) and follows its profile with postgres_changes, as a frontend
does."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from supabase_auth import SyncGoTrueClient

from videogen.config import LOCAL_PUBLISHABLE_KEY

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("js") / "frontend_session.mjs"


@pytest.fixture(scope="module")
def node() -> str:
    found = shutil.which("node")
    installed = (ROOT / "node_modules" / "@supabase" / "supabase-js").is_dir()
    if found is None or not installed:
        if os.environ.get("CI"):
            pytest.fail("node or @supabase/supabase-js is missing: `make setup` installs them")
        pytest.skip("node or @supabase/supabase-js is not installed (`make setup`)")
    return found


def test_supabase_js_signs_in_and_invokes_the_functions(api, node):
    base = api.url("update-credits").rsplit("/functions/v1/", 1)[0]
    done = subprocess.run(
        [node, str(SCRIPT), base, LOCAL_PUBLISHABLE_KEY],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    user_id = seen["user"]["id"]
    assert seen["user"]["is_anonymous"] is True
    assert seen["claims"] == {"sub": user_id, "role": "authenticated", "alg": "ES256"}
    assert seen["grant"]["error"] is None and seen["grant"]["data"]["success"] is True
    assert seen["grant"]["data"]["data"]["applied"] is True
    assert seen["again"]["status"] == 409
    assert seen["again"]["body"]["error"]["code"] == "ALREADY_CLAIMED"
    credits = seen["credits"]["data"]["data"]
    assert seen["credits"]["error"] is None and credits["balance"] > 0
    assert credits["initial_grant_claimed"] is True
    realtime = seen["realtime"]
    assert (realtime["vsn"], realtime["own"], realtime["other"]) == (
        "2.0.0",
        "SUBSCRIBED",
        "CHANNEL_ERROR",
    )
    assert "Unauthorized: You do not have permissions to read" in realtime["other_error"]
    assert seen["signed_out"] is True
    assert api.sql("select count(*) from public.profiles where id = %s", [user_id]) == 1


def test_supabase_js_follows_its_own_profile_with_postgres_changes(api, node):
    """channel.on('postgres_changes', …) on the user's profiles row: the balance change of
    a credit grant arrives; another user's, committed first, never does."""
    base = api.url("update-credits").rsplit("/functions/v1/", 1)[0]
    auth = SyncGoTrueClient(url=f"{base}/auth/v1", headers={"apikey": LOCAL_PUBLISHABLE_KEY})
    try:
        stranger = auth.sign_in_anonymously().user
    finally:
        auth._http_client.close()
    assert stranger is not None
    proc = subprocess.Popen(
        [node, str(SCRIPT.with_name("postgres_changes.mjs")), base, LOCAL_PUBLISHABLE_KEY],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline() or "{}")
        assert "ready" in first, proc.stderr.read() if proc.stderr else first
        uid = first["ready"]["uid"]
        [system] = first["ready"]["system"]
        assert (system["extension"], system["status"], system["message"]) == (
            "postgres_changes",
            "ok",
            "Subscribed to PostgreSQL",
        )
        grant = "select service.credits_grant(%s, %s, %s)"
        api.sql(grant, [stranger.id, 5, f"test-{uuid.uuid4().hex}"])  # committed first
        api.sql(grant, [uid, 21, f"test-{uuid.uuid4().hex}"])
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"no balance change reached supabase-js in 60 s; it printed: {out}{err}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen["vsn"] == "2.0.0"
    [change] = seen["own"]
    assert (change["eventType"], change["table"], change["errors"]) == ("UPDATE", "profiles", None)
    assert change["new"]["id"] == uid and change["new"]["balance"] == 21
    assert change["old"] == {"id": uid}
    assert change["commit_timestamp"].endswith("Z")
    # RLS kept the stranger's row out of the unfiltered binding.
    assert {e["id"] for e in seen["every"]} == {uid}
