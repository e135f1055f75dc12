"""The DeviceCheck client against Apple's recorded answers (httpx.MockTransport): the JWT
Apple authorizes us by, the bodies of query_two_bits and update_two_bits, the bits read
back (never set, set), and each failure as the error a caller turns into its answer. The
clock is a fixed, hand-moved one: nothing depends on when or how fast the tests run."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from pydantic import SecretStr

from videogen.config import Settings
from videogen.integrations.devicecheck import (
    DEVELOPMENT_URL,
    PRODUCTION_URL,
    TOKEN_LIFETIME_S,
    DeviceBits,
    DeviceCheckClient,
    DeviceCheckError,
    DeviceCheckMisconfigured,
    DeviceCheckNotConfigured,
    DeviceCheckUnavailable,
    InvalidDeviceToken,
    devicecheck_client,
)

ROOT = Path(__file__).resolve().parents[2]
TEAM_ID = "A1B2C3D4E5"
KEY_ID = "KEY9876543"
# A device token as the app sends it: base64 of an opaque blob (Apple's are ~2 KB).
DEVICE_TOKEN = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0MjQyNDI0MjQyNDI0Mg=="
NOW = 1_700_000_000.0  # 2023-11-14: fixed, and in the past, so PyJWT's iat check passes
QUERY_KEYS = {"device_token", "transaction_id", "timestamp"}


class Clock:
    """Seconds since the epoch, moved only by the test."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Apple:
    """A recorded Apple: answers in order, and every request it was sent."""

    answers: list[httpx.Response | Exception] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def body(self, n: int = -1) -> dict[str, Any]:
        """The JSON body of request ``n``."""
        parsed: dict[str, Any] = json.loads(self.requests[n].content)
        return parsed


@pytest.fixture
def key() -> ec.EllipticCurvePrivateKey:
    """A P-256 key as Apple's .p8 holds one, made for this test."""
    return ec.generate_private_key(ec.SECP256R1())


def pem_of(key: PrivateKeyTypes) -> str:
    """The key as the .p8 file's text (PKCS#8 PEM)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture
def apple() -> Apple:
    return Apple()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make(
    key: ec.EllipticCurvePrivateKey, apple: Apple, clock: Clock
) -> Iterator[Callable[..., DeviceCheckClient]]:
    """A client over the recorded Apple (closed at the end of the test)."""
    clients: list[httpx.Client] = []

    def build(**options: Any) -> DeviceCheckClient:
        http = httpx.Client(transport=httpx.MockTransport(apple))
        clients.append(http)
        return DeviceCheckClient(
            http,
            team_id=TEAM_ID,
            key_id=KEY_ID,
            private_key=SecretStr(pem_of(key)),
            clock=clock,
            **options,
        )

    yield build
    for http in clients:
        http.close()


def text(status: int, body: str = "") -> httpx.Response:
    return httpx.Response(status, text=body)


# The JWT ----------------------------------------------------------------------------------


def test_the_jwt_verifies_with_the_public_key_and_carries_team_and_key(
    make, apple: Apple, key: ec.EllipticCurvePrivateKey
) -> None:
    apple.answers.append(text(200, "Failed to find bit state"))
    make().query_two_bits(DEVICE_TOKEN)
    auth = apple.requests[0].headers["authorization"]
    assert auth.startswith("Bearer ")
    token = auth.removeprefix("Bearer ")
    header = jwt.get_unverified_header(token)
    assert (header["alg"], header["kid"]) == ("ES256", KEY_ID)
    claims = jwt.decode(token, key.public_key(), algorithms=["ES256"])
    assert claims == {"iss": TEAM_ID, "iat": int(NOW)}
    # Signed by this key and no other.
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            token, ec.generate_private_key(ec.SECP256R1()).public_key(), algorithms=["ES256"]
        )


def test_the_jwt_is_reused_for_half_an_hour_then_minted_again(
    make, apple: Apple, clock: Clock, key: ec.EllipticCurvePrivateKey
) -> None:
    client = make()
    first = client.authorization_token()
    clock.now += TOKEN_LIFETIME_S - 1
    assert client.authorization_token() == first
    clock.now += 1  # half an hour old: Apple takes up to an hour, we never send that old
    second = client.authorization_token()
    assert second != first
    assert jwt.decode(second, key.public_key(), algorithms=["ES256"])["iat"] == int(
        NOW + TOKEN_LIFETIME_S
    )
    assert TOKEN_LIFETIME_S < 3600
    assert apple.requests == []  # minting calls no one


# Query ------------------------------------------------------------------------------------


def test_a_device_never_seen_has_both_bits_unset(make, apple: Apple) -> None:
    apple.answers.append(text(200, "Failed to find bit state"))
    assert make().query_two_bits(DEVICE_TOKEN) == DeviceBits(False, False, None)
    sent = apple.requests[0]
    assert (sent.method, str(sent.url)) == ("POST", f"{PRODUCTION_URL}/query_two_bits")
    assert str(sent.url) == "https://api.devicecheck.apple.com/v1/query_two_bits"
    assert sent.headers["content-type"] == "application/json"
    body = apple.body()
    assert set(body) == QUERY_KEYS  # no bits in a query
    assert body["device_token"] == DEVICE_TOKEN
    assert body["timestamp"] == int(NOW * 1000)  # milliseconds
    assert uuid.UUID(body["transaction_id"]).version == 4


@pytest.mark.parametrize("said", ["Bit State Not Found", "failed to find bit state\n"])
def test_other_spellings_of_never_set_read_the_same(make, apple: Apple, said: str) -> None:
    apple.answers.append(text(200, said))
    assert make().query_two_bits(DEVICE_TOKEN) == DeviceBits(False, False, None)


def test_set_bits_are_read_with_their_month(make, apple: Apple) -> None:
    apple.answers.append(
        httpx.Response(200, json={"bit0": True, "bit1": False, "last_update_time": "2026-11"})
    )
    assert make().query_two_bits(DEVICE_TOKEN) == DeviceBits(True, False, "2026-11")


def test_each_request_has_its_own_transaction_id(make, apple: Apple, clock: Clock) -> None:
    client = make()
    apple.answers += [text(200, "Failed to find bit state"), text(200, "")]
    client.query_two_bits(DEVICE_TOKEN)
    clock.now += 1.5
    client.update_two_bits(DEVICE_TOKEN, bit0=True)
    first, second = apple.body(0), apple.body(1)
    assert first["transaction_id"] != second["transaction_id"]
    assert second["timestamp"] - first["timestamp"] == 1500


@pytest.mark.parametrize(
    "answer",
    [
        text(200, "<html>maintenance</html>"),
        httpx.Response(200, json={"bit0": "yes", "bit1": False}),
        httpx.Response(200, json=["bit0"]),
    ],
)
def test_an_unreadable_answer_is_not_taken_for_bits(
    make, apple: Apple, answer: httpx.Response
) -> None:
    apple.answers.append(answer)
    with pytest.raises(DeviceCheckUnavailable):
        make().query_two_bits(DEVICE_TOKEN)


# Update -----------------------------------------------------------------------------------


def test_update_sets_both_bits_on_the_development_server(make, apple: Apple) -> None:
    apple.answers.append(text(200, ""))
    assert make(development=True).update_two_bits(DEVICE_TOKEN, bit0=True, bit1=False) is None
    sent = apple.requests[0]
    assert str(sent.url) == f"{DEVELOPMENT_URL}/update_two_bits"
    assert str(sent.url) == "https://api.development.devicecheck.apple.com/v1/update_two_bits"
    body = apple.body()
    assert set(body) == QUERY_KEYS | {"bit0", "bit1"}
    assert (body["bit0"], body["bit1"]) == (True, False)  # JSON booleans, not 0/1
    assert body["device_token"] == DEVICE_TOKEN and body["timestamp"] == int(NOW * 1000)


def test_update_sends_only_the_bits_it_changes(make, apple: Apple) -> None:
    apple.answers.append(text(200, ""))
    make().update_two_bits(DEVICE_TOKEN, bit1=True)
    assert apple.body() == {**{k: apple.body()[k] for k in QUERY_KEYS}, "bit1": True}
    with pytest.raises(ValueError, match="bit0, bit1"):
        make().update_two_bits(DEVICE_TOKEN)
    assert len(apple.requests) == 1


# Failures ---------------------------------------------------------------------------------


def test_a_bad_token_is_a_422_the_caller_can_answer(make, apple: Apple) -> None:
    apple.answers.append(text(400, "Missing or incorrectly formatted device token payload"))
    with pytest.raises(InvalidDeviceToken) as caught:
        make().query_two_bits(DEVICE_TOKEN)
    err = caught.value
    assert (err.status, err.code, err.retryable, err.apple_status) == (
        422,
        "INVALID_DEVICE_TOKEN",
        False,
        400,
    )
    assert DEVICE_TOKEN not in json.dumps(err.to_dict())


@pytest.mark.parametrize("token", ["", "   ", "not base64!", "QUJD=x", "A" * 20_000])
def test_a_token_that_cannot_be_one_is_refused_before_calling_apple(
    make, apple: Apple, token: str
) -> None:
    with pytest.raises(InvalidDeviceToken):
        make().query_two_bits(token)
    with pytest.raises(InvalidDeviceToken):
        make().update_two_bits(token, bit0=True)
    assert apple.requests == []


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_a_misconfiguration(make, apple: Apple, status: int) -> None:
    apple.answers.append(text(status, "Unable to verify authorization token"))
    with pytest.raises(DeviceCheckMisconfigured) as caught:
        make().update_two_bits(DEVICE_TOKEN, bit0=True)
    err = caught.value
    assert (err.status, err.code, err.retryable, err.apple_status) == (
        503,
        "DEVICECHECK_MISCONFIGURED",
        False,
        status,
    )
    assert "APPLE_DEVICECHECK_KEY_ID" in (err.hint or "")
    assert "Unable to verify" not in err.message  # Apple's words go to the log only


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_apple_in_trouble_is_retryable(make, apple: Apple, status: int) -> None:
    apple.answers.append(text(status, "Internal Server Error"))
    with pytest.raises(DeviceCheckUnavailable) as caught:
        make().query_two_bits(DEVICE_TOKEN)
    err = caught.value
    assert (err.status, err.code, err.retryable, err.apple_status) == (
        503,
        "DEVICECHECK_UNAVAILABLE",
        True,
        status,
    )
    assert err.headers["Retry-After"]


@pytest.mark.parametrize(
    "failure",
    [httpx.ReadTimeout("slow"), httpx.ConnectTimeout("slow"), httpx.ConnectError("refused")],
)
def test_timeouts_and_network_errors_are_retryable(make, apple: Apple, failure: Exception) -> None:
    apple.answers.append(failure)
    with pytest.raises(DeviceCheckUnavailable) as caught:
        make().query_two_bits(DEVICE_TOKEN)
    assert caught.value.retryable and caught.value.apple_status is None


def test_any_other_status_is_a_plain_failure(make, apple: Apple) -> None:
    apple.answers.append(text(404, "Not Found"))
    with pytest.raises(DeviceCheckError) as caught:
        make().query_two_bits(DEVICE_TOKEN)
    assert type(caught.value) is DeviceCheckError and not caught.value.retryable


def test_the_request_has_its_own_timeout(make, apple: Apple) -> None:
    apple.answers.append(text(200, "Failed to find bit state"))
    make(timeout_s=2.5).query_two_bits(DEVICE_TOKEN)
    assert apple.requests[0].extensions["timeout"]["read"] == 2.5


# The key and the settings -----------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        "not a key",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
        "rsa",
        "p384",
    ],
)
def test_a_key_that_is_not_a_p8_is_a_misconfiguration(bad: str) -> None:
    if bad == "rsa":
        bad = pem_of(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    elif bad == "p384":
        bad = pem_of(ec.generate_private_key(ec.SECP384R1()))
    with httpx.Client() as http, pytest.raises(DeviceCheckMisconfigured) as caught:
        DeviceCheckClient(http, team_id=TEAM_ID, key_id=KEY_ID, private_key=bad)
    assert "AAAA" not in caught.value.message


DEVICECHECK_ENV = (
    "APPLE_TEAM_ID",
    "APPLE_DEVICECHECK_KEY_ID",
    "APPLE_DEVICECHECK_PRIVATE_KEY",
    "APPLE_DEVICECHECK_ENVIRONMENT",
)


@pytest.fixture
def no_devicecheck_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings from the test's arguments only, whatever the shell exports."""
    for name in (*DEVICECHECK_ENV, "VIDEOGEN_ENV", "STORAGE_BACKEND"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_devicecheck_env")
def test_the_settings_make_a_client_or_say_what_is_missing(
    key: ec.EllipticCurvePrivateKey, apple: Apple
) -> None:
    with httpx.Client(transport=httpx.MockTransport(apple)) as http:
        with pytest.raises(DeviceCheckNotConfigured) as caught:
            devicecheck_client(Settings(APPLE_TEAM_ID=TEAM_ID), http)
        assert caught.value.code == "DEVICECHECK_NOT_CONFIGURED"
        assert caught.value.hint == "Set APPLE_DEVICECHECK_KEY_ID, APPLE_DEVICECHECK_PRIVATE_KEY."

        # A secret store that keeps the PEM on one line, with \n escapes, works too.
        one_line = pem_of(key).strip().replace("\n", "\\n")
        settings = Settings(
            APPLE_TEAM_ID=TEAM_ID,
            APPLE_DEVICECHECK_KEY_ID=KEY_ID,
            APPLE_DEVICECHECK_PRIVATE_KEY=one_line,
            APPLE_DEVICECHECK_ENVIRONMENT="development",
        )
        assert one_line not in repr(settings)  # a SecretStr
        client = devicecheck_client(settings, http)
        assert client.base_url == DEVELOPMENT_URL
        token = client.authorization_token()
        assert jwt.decode(token, key.public_key(), algorithms=["ES256"])["iss"] == TEAM_ID
        production = settings.model_copy(update={"apple_devicecheck_environment": "production"})
        assert devicecheck_client(production, http).base_url == PRODUCTION_URL


@pytest.mark.usefixtures("no_devicecheck_env")
def test_settings_default_to_production_and_refuse_other_environments() -> None:
    assert Settings().apple_devicecheck_environment == "production"
    with pytest.raises(ValueError, match="production"):
        Settings(APPLE_DEVICECHECK_ENVIRONMENT="sandbox")
    # In production a placeholder key is a start-up error, as for every secret.
    real = {
        "SUPABASE_JWT_SECRET": "j" * 40,
        "SUPABASE_SERVICE_ROLE_KEY": "eyJ.real.key",
        "SUPABASE_SECRET_KEY": "sb_secret_real",
        "WEBHOOK_SECRETS": "whsec_cmVhbC1zZWNyZXQ=",
        "CRON_SECRET": "real-cron",
    }
    with pytest.raises(ValueError, match="APPLE_DEVICECHECK_PRIVATE_KEY"):
        Settings(VIDEOGEN_ENV="production", APPLE_DEVICECHECK_PRIVATE_KEY="changeme", **real)


def test_importing_the_module_loads_no_crypto() -> None:
    """jwt and cryptography load when a client is made, not with the function's code."""
    code = (
        "import sys, videogen.integrations.devicecheck; "
        "print(sorted(m for m in ('jwt', 'cryptography') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(ROOT / "shared"), "PATH": "/usr/bin:/bin"},
    )
    assert done.stdout.strip() == "[]"
