"""update-credits /keys over real HTTP: a user's own provider keys stored, listed masked,
rotated and deleted; never echoed or logged; malformed keys refused; other users see none."""

from __future__ import annotations

from typing import Any

Api = Any  # tests/functions/conftest.py's Api

FAL_KEY = "3f1c9a52-http:0a1b2c3d4e5f60718293a4b5c6d7e8f9"
FAL_ROTATED = "3f1c9a52-http:ffffeeeeddddccccbbbbaaaa9999wxyz"
OPENAI_KEY = "sk-proj-" + "Q" * 40 + "k3Yz"


def put(api: Api, user: Any, body: Any) -> Any:
    return api.request("PUT", "update-credits/keys", user=user, json=body)


def test_store_list_rotate_delete_never_echoing_the_key(api: Api) -> None:
    user = api.user()
    stored = put(api, user, {"provider": "fal", "key": FAL_KEY})
    assert FAL_KEY not in stored.text
    data = api.ok(stored, 201)
    assert data == {
        "provider": "fal",
        "last4": "e8f9",
        "created_at": data["created_at"],
        "rotated_at": None,
    }
    assert (
        api.ok(put(api, user, {"provider": "openai", "key": f"  {OPENAI_KEY}\n"}), 201)["last4"]
        == "k3Yz"
    )

    listed = api.get("update-credits/keys", user=user)
    assert FAL_KEY not in listed.text and OPENAI_KEY not in listed.text
    keys = api.ok(listed)["keys"]
    assert [(k["provider"], k["last4"]) for k in keys] == [("fal", "e8f9"), ("openai", "k3Yz")]

    rotated = put(api, user, {"provider": "fal", "key": FAL_ROTATED})
    assert FAL_ROTATED not in rotated.text
    after = api.ok(rotated, 200)
    assert after["last4"] == "wxyz" and after["rotated_at"] is not None
    assert after["created_at"] == data["created_at"]
    value = api.sql(
        "select d.decrypted_secret from public.provider_keys k join vault.decrypted_secrets d"
        " on d.id = k.secret_id where k.user_id = %s and k.provider = 'fal'",
        [user.id],
    )
    assert value == FAL_ROTATED  # the old value is gone

    gone = api.ok(api.delete("update-credits/keys", user=user, params={"provider": "fal"}))
    assert gone == {"provider": "fal", "deleted": True}
    assert [k["provider"] for k in api.ok(api.get("update-credits/keys", user=user))["keys"]] == [
        "openai"
    ]
    api.fails(
        api.delete("update-credits/keys", user=user, params={"provider": "fal"}),
        404,
        "PROVIDER_KEY_NOT_FOUND",
    )
    logs = api.server.logs()
    for secret in (FAL_KEY, FAL_ROTATED, OPENAI_KEY):
        assert secret not in logs


def test_malformed_keys_and_providers_are_422_without_the_value(api: Api) -> None:
    user = api.user()
    for body in (
        {"provider": "openai", "key": "pk-" + "a" * 30},
        {"provider": "fal", "key": "no-colon-here-0123456789abcdef"},
        {"provider": "runway", "key": "key_with spaces inside it"},
        {"provider": "replicate", "key": "r8_short"},
        {"provider": "github", "key": "ghp_" + "a" * 36},
        {"provider": "fal"},
        {"provider": "fal", "key": FAL_KEY, "extra": 1},
    ):
        resp = put(api, user, body)
        error = api.fails(resp, 422)
        if "key" in body:
            assert str(body["key"]) not in resp.text, error
    api.fails(put(api, user, "not an object"), 422)
    assert api.ok(api.get("update-credits/keys", user=user))["keys"] == []
    api.fails(api.delete("update-credits/keys", user=user, params={"provider": "x"}), 422)
    api.fails(api.delete("update-credits/keys", user=user), 422)


def test_authentication_comes_first_and_only_the_routes_methods_exist(api: Api) -> None:
    api.fails(api.request("PUT", "update-credits/keys", json={"provider": "x"}), 401)
    api.fails(api.get("update-credits/keys"), 401)
    api.fails(api.post("update-credits/keys", user=api.user(), json={}), 405)


def test_another_user_neither_sees_nor_removes_the_key(api: Api) -> None:
    owner, other = api.user(), api.user()
    api.ok(put(api, owner, {"provider": "fal", "key": FAL_KEY}), 201)
    assert api.ok(api.get("update-credits/keys", user=other))["keys"] == []
    api.fails(
        api.delete("update-credits/keys", user=other, params={"provider": "fal"}),
        404,
        "PROVIDER_KEY_NOT_FOUND",
    )
    # Storing their own does not touch the owner's.
    api.ok(put(api, other, {"provider": "fal", "key": FAL_ROTATED}), 201)
    rows = api.sql(
        "select jsonb_object_agg(k.user_id, d.decrypted_secret) from public.provider_keys k"
        " join vault.decrypted_secrets d on d.id = k.secret_id where k.user_id in (%s, %s)",
        [owner.id, other.id],
    )
    assert rows == {str(owner.id): FAL_KEY, str(other.id): FAL_ROTATED}
