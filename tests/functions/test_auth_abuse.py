"""The local Auth API against abuse: its settings, read from supabase/config.toml as the
Supabase CLI hands them to GoTrue.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from videogen_dev.auth_guard import (
    AuthConfigError,
    AuthSettings,
    CaptchaSettings,
    Limit,
)


# 1. Rate limits, as config.toml declares them ---------------------------------------------
def test_limits_and_captcha_are_read_from_config_toml(tmp_path: Path) -> None:
    project = AuthSettings.load(env={})  # supabase/config.toml
    assert (project.anonymous_users, project.sign_in_sign_ups, project.token_refresh) == (
        30,
        30,
        150,
    )
    assert project.refresh_token_reuse_interval == 10 and project.captcha is None
    limits = project.limits()
    assert limits["anonymous"] == Limit(30 / 3600, 30)  # an hour's worth in the bucket
    assert limits["signups"] == limits["user"] == Limit(30 / 300, 30)
    assert limits["token"] == Limit(150 / 300, 30)

    config = tmp_path / "config.toml"
    config.write_text(
        "[auth]\nrefresh_token_reuse_interval = 5\n"
        "[auth.rate_limit]\nanonymous_users = 7\n"
        '[auth.captcha]\nenabled = true\nprovider = "turnstile"\n'
        'secret = "env(TEST_CAPTCHA_SECRET)"\n'
    )
    read = AuthSettings.load(config, env={"TEST_CAPTCHA_SECRET": "0x4AAAAAAA"})
    assert (read.anonymous_users, read.sign_in_sign_ups, read.token_refresh) == (7, 30, 150)
    assert read.refresh_token_reuse_interval == 5
    assert read.captcha == CaptchaSettings("turnstile", "0x4AAAAAAA")
    # GoTrue's variables, as the CLI would set them, win over the file.
    env = {"GOTRUE_RATE_LIMIT_OTP": "3", "GOTRUE_SECURITY_CAPTCHA_ENABLED": "false"}
    overridden = AuthSettings.load(config, env=env)
    assert overridden.sign_in_sign_ups == 3 and overridden.captcha is None
    # What GoTrue refuses to start with.
    with pytest.raises(AuthConfigError, match="captcha provider secret is empty"):
        AuthSettings.load(config, env={})
    with pytest.raises(AuthConfigError, match="anonymous_users"):
        AuthSettings.load(config, env={"GOTRUE_RATE_LIMIT_ANONYMOUS_USERS": "-1"})
