"""supabase-js itself (from npm, `make setup`) against the local stack: it signs in with the
local Auth API, verifies the ES256 token against our JWKS, reaches the functions with
`functions.invoke` at `<SUPABASE_URL>/functions/v1`, and joins its private Realtime topic
(another user's is refused), as a frontend does."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

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
