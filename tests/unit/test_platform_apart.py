"""The local platform stands apart from the runtime it stands in front of.

The local Auth, Storage and Realtime (and the dev server that mounts them) check
credentials with their own code (videogen_dev.platform_keys), so a bug in the runtime's
checks (videogen.kit.auth, videogen.integrations.storage…) cannot hide behind the same bug
in its stand-ins.
Every module of the platform, and every videogen_dev module it imports, is read (ast, every
import at any depth, TYPE_CHECKING ones included): the only runtime module it may import is
videogen.config, the settings and key constants the whole project shares.
"""

from __future__ import annotations

import ast
import subprocess
import time
from pathlib import Path

import jwt
import pytest
import videogen_dev
from videogen_dev import platform_keys
from videogen_dev.platform_keys import Rejected, SigningKey, identify

from videogen.config import LOCAL_JWT_SECRET, Settings

PACKAGE = Path(videogen_dev.__file__).parent
PLATFORM = (
    "auth_api",  # local Auth
    "auth_guard",
    "storage_api",  # local Storage
    "realtime_api",  # local Realtime
    "realtime_protocol",
    "realtime_replication",
    "realtime_changes",
    "devserver",  # the dev server mounting them
    "stack",  # `videogen up` / `demo`: the stack and the frontend it plays
    "job_feed",
    "users",
    "web_app",
    "servicepool",
    "localdb",
    "platform_keys",  # their own crypto
)
ALLOWED_RUNTIME = {"videogen.config"}


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it (``from x import y`` gives ``x`` and,
    for a package's submodule, ``x.y``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: relative import"
            module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def runtime_imports(modules: set[str]) -> set[str]:
    """The runtime's modules among them (``videogen`` and ``videogen.*``, not the names
    ``from videogen.config import X`` adds)."""
    runtime = set()
    for name in modules:
        if name == "videogen" or name.startswith("videogen."):
            runtime.add(name)
    # ``from videogen.config import get_settings`` also yields videogen.config.get_settings.
    return {n for n in runtime if not any(n.startswith(f"{a}.") for a in ALLOWED_RUNTIME)}


def platform_closure() -> dict[str, set[str]]:
    """The platform's modules and the videogen_dev modules they import, with their imports."""
    seen: dict[str, set[str]] = {}
    pending = list(PLATFORM)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        path = PACKAGE / f"{name}.py"
        assert path.is_file(), path
        seen[name] = imported_modules(path)
        for module in seen[name]:
            head, _, rest = module.partition(".")
            if head == "videogen_dev" and rest:
                sub = rest.split(".")[0]
                if (PACKAGE / f"{sub}.py").is_file():
                    pending.append(sub)
    return seen


def test_the_platform_imports_nothing_of_the_runtime_but_its_config() -> None:
    closure = platform_closure()
    assert set(PLATFORM) <= set(closure)
    offending = {
        name: sorted(runtime_imports(imports) - ALLOWED_RUNTIME)
        for name, imports in closure.items()
        if runtime_imports(imports) - ALLOWED_RUNTIME
    }
    assert offending == {}
    # Nor the reference worker, which is a client of the platform.
    for imports in closure.values():
        assert not any(m == "videogen_worker" or m.startswith("videogen_worker.") for m in imports)


def test_the_import_reader_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The check above would pass vacuously if the reader missed imports: it must see
    lazy, TYPE_CHECKING and ``from videogen import x`` imports alike."""
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "from videogen.config import get_settings\n"
        "if TYPE_CHECKING:\n    from videogen.kit.endpoint import Contract\n"
        "def f():\n    from videogen import auth\n    import videogen.integrations.storage\n"
    )
    assert runtime_imports(imported_modules(source)) == {
        "videogen.config",
        "videogen.kit.endpoint",
        "videogen.kit.endpoint.Contract",
        "videogen",
        "videogen.auth",
        "videogen.integrations.storage",
    }


# The platform's own checks, against tokens made independently with PyJWT ------------------


def settings() -> Settings:
    return Settings(VIDEOGEN_ENV="test")


def hs256(claims: dict[str, object], secret: str = LOCAL_JWT_SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


def user_claims(**extra: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": "6f1c1f1e-8d3a-4f6e-9a53-5d0e1b8a2c11",
        "role": "authenticated",
        "aud": "authenticated",
        "iat": now,
        "exp": now + 600,
    }
    claims.update(extra)
    return claims


def test_a_user_token_is_checked_for_signature_expiry_audience_and_role() -> None:
    good = identify(bearer=hs256(user_claims()), settings=settings())
    assert (good.kind, good.role) == ("user", "authenticated")
    refusals = {
        "expired": hs256(user_claims(exp=int(time.time()) - 60)),
        "forged": hs256(user_claims(), "another-secret-another-secret-another-1"),
        "audience": hs256(user_claims(aud="someone-else")),
        "role": hs256(user_claims(role="service_role_ish")),
        "subject": hs256(user_claims(sub="not-a-uuid")),
        "no exp": hs256({k: v for k, v in user_claims().items() if k != "exp"}),
        "alg none": jwt.encode(user_claims(), "", algorithm="none"),
    }
    reasons = {}
    for case, token in refusals.items():
        with pytest.raises(Rejected) as caught:
            identify(bearer=token, settings=settings())
        reasons[case] = caught.value.reason
    assert reasons["expired"] == "expired"
    assert {r for c, r in reasons.items() if c != "expired"} == {"invalid_token"}, reasons
    with pytest.raises(Rejected) as malformed:
        identify(bearer="not-a-jwt", settings=settings())
    assert malformed.value.reason == "malformed"


def test_es256_tokens_of_the_local_auth_key_and_of_no_other(tmp_path: Path) -> None:
    key = SigningKey(tmp_path / "auth" / "signing_key.pem")
    other = SigningKey(tmp_path / "other.pem")
    local = Settings(VIDEOGEN_ENV="test", VIDEOGEN_HOME=str(tmp_path))
    assert platform_keys.signing_key_path(local) == key.path
    token = key.sign(user_claims())
    assert platform_keys.decode_access_token(token, local, only_key=key)["role"] == "authenticated"
    with pytest.raises(platform_keys.UnknownKey):
        platform_keys.decode_access_token(other.sign(user_claims()), local, only_key=key)
    # A forged token claiming the local key's kid fails its signature.
    forged = jwt.encode(
        user_claims(), other.private_key, algorithm="ES256", headers={"kid": key.kid}
    )
    with pytest.raises(jwt.InvalidSignatureError):
        platform_keys.decode_access_token(forged, local, only_key=key)
    # Storage and Realtime (identify) take the local Auth's tokens, and no one else's.
    auth_key = platform_keys.local_signing_key(tmp_path / "elsewhere" / "signing_key.pem")
    assert auth_key is not None
    user = identify(bearer=auth_key.sign(user_claims()), settings=local)
    assert (user.kind, user.claims["sub"]) == ("user", user_claims()["sub"])
    assert identify(bearer=key.sign(user_claims()), settings=local).kind == "user"  # state dir's
    stranger = SigningKey(tmp_path / "stranger.pem")
    with pytest.raises(Rejected) as unknown:
        identify(bearer=stranger.sign(user_claims()), settings=local)
    assert unknown.value.reason == "invalid_token"


def test_api_keys_are_the_projects_or_refused() -> None:
    s = settings()
    assert identify(apikey=s.publishable_key.get_secret_value(), settings=s).role == "anon"
    assert identify(apikey=s.secret_key.get_secret_value(), settings=s).role == "service_role"
    assert identify(apikey=s.anon_key.get_secret_value(), settings=s).kind == "public"
    assert identify(bearer=s.service_role_key.get_secret_value(), settings=s).kind == "secret"
    # Signed like the legacy keys, with the JWT secret: accepted with its claims.
    minted = hs256({"role": "service_role", "exp": int(time.time()) + 60})
    assert identify(apikey=minted, settings=s).claims["role"] == "service_role"
    for wrong in (
        "sb_publishable_wrong",
        "sb_secret_wrong",
        hs256({"role": "anon"}, "another-secret-another-secret-another-1"),
    ):
        with pytest.raises(Rejected) as caught:
            identify(apikey=wrong, settings=s)
        assert caught.value.reason == "invalid_api_key"
    # A wrong key is never read as a weaker kind: an invalid secret key next to a good
    # publishable key is refused.
    with pytest.raises(Rejected):
        identify(apikey=s.publishable_key.get_secret_value(), bearer="sb_secret_wrong", settings=s)
    with pytest.raises(Rejected) as missing:
        identify(settings=s)
    assert missing.value.reason == "missing"


def test_signed_url_tokens_are_storage_s_jwts_with_a_url_claim() -> None:
    s = settings()
    token = platform_keys.sign_url_token("uploads/a/b.png", 60, now=1_000, settings=s)
    payload = jwt.decode(
        token, LOCAL_JWT_SECRET, algorithms=["HS256"], options={"verify_exp": False}
    )
    assert payload == {"url": "uploads/a/b.png", "scope": "download", "iat": 1_000, "exp": 1_060}
    upload = platform_keys.sign_url_token(
        "uploads/a/b.png", 60, scope="upload", owner="u1", upsert=True, now=1_000, settings=s
    )
    assert platform_keys.decode_url_token(upload, s) == {
        "owner": "u1",
        "url": "uploads/a/b.png",
        "upsert": True,
        "scope": "upload",
        "iat": 1_000,
        "exp": 1_060,
    }
    forged = jwt.encode(payload, "another-secret-another-secret-another-1", algorithm="HS256")
    with pytest.raises(jwt.InvalidSignatureError):
        platform_keys.decode_url_token(forged, s)


def test_the_demo_probes_a_video_as_a_frontend_would(tmp_path: Path) -> None:
    """The demo's ffprobe summary is its own (videogen_dev.stack.probe), not the runtime's."""
    from videogen_dev.stack import probe

    video = tmp_path / "clip.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:d=1",
         "-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:v", "libx264",
         "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(video)],
        check=True, timeout=60,
    )  # fmt: skip
    info = probe(video)
    assert (info["width"], info["height"], info["fps"]) == (320, 240, 25.0)
    assert (info["video_codec"], info["audio_codec"]) == ("h264", "aac")
    assert 0.9 < info["duration"] < 1.2
