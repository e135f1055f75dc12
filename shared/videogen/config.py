"""One place for configuration: a pydantic-settings ``Settings`` read from the environment.

Defaults are the Supabase CLI's well-known local values, so a fresh clone runs with no
configuration at all; outside ``VIDEOGEN_ENV=local`` a missing or placeholder secret is a
start-up error rather than a silent hole.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The Supabase CLI's local defaults (`supabase status`): public knowledge, never secrets.
# ruff: noqa: S105
LOCAL_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"
LOCAL_ANON_KEY = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAi"
    "OjE5ODM4MTI5OTZ9.CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0"
)
LOCAL_SERVICE_ROLE_KEY = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6InNlcnZpY2Vfcm9s"
    "ZSIsImV4cCI6MTk4MzgxMjk5Nn0.EGIM96RAZx35lJzdJsyH-qQwv8Hdp7fsn3W0YpN81IU"
)
LOCAL_PUBLISHABLE_KEY = "sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH"
LOCAL_SECRET_KEY = "sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz"
# Standard Webhooks secret for local workers: "whsec_" + base64 of 32 bytes.
LOCAL_WEBHOOK_SECRET = "whsec_dmlkZW9nZW4tbG9jYWwtd2ViaG9vay1zZWNyZXQtMDE="
LOCAL_CRON_SECRET = "local-cron-secret"
LOCAL_DATABASE_URL = "postgresql://postgres:postgres@127.0.0.1:54322/postgres"

_LOCAL_SECRETS = {
    LOCAL_JWT_SECRET,
    LOCAL_SERVICE_ROLE_KEY,
    LOCAL_SECRET_KEY,
    LOCAL_WEBHOOK_SECRET,
    LOCAL_CRON_SECRET,
}
# Base URLs this process serves itself → an httpx transport reaching them without a
# socket. The local dev server registers its own Storage API here (a function's storage
# call would otherwise wait for a second thread of the pool serving that function);
# deployed, it stays empty and every call goes over the network.
IN_PROCESS_TRANSPORTS: dict[str, Any] = {}

_PLACEHOLDERS = {"", "changeme", "change-me", "your-secret", "xxx", "todo"}


class Settings(BaseSettings):
    """Every setting the library reads; see the README's configuration table."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    environment: Literal["local", "test", "production"] = Field("local", alias="VIDEOGEN_ENV")
    log_level: str = Field("INFO", alias="LOG_LEVEL")
    state_dir: Path = Field(Path(".videogen"), alias="VIDEOGEN_HOME")

    # Database ---------------------------------------------------------------------------
    database_url: str = Field(LOCAL_DATABASE_URL, alias="DATABASE_URL")
    db_adapter: Literal["postgres", "postgrest"] = Field("postgres", alias="DB_ADAPTER")
    db_pool_min: int = Field(1, alias="DB_POOL_MIN", ge=0)
    db_pool_max: int = Field(10, alias="DB_POOL_MAX", ge=1)

    # Supabase project -------------------------------------------------------------------
    supabase_url: str = Field("http://127.0.0.1:54321", alias="SUPABASE_URL")
    jwt_secret: SecretStr = Field(SecretStr(LOCAL_JWT_SECRET), alias="SUPABASE_JWT_SECRET")
    jwks: str | None = Field(None, alias="SUPABASE_JWKS")
    jwt_audience: str = Field("authenticated", alias="SUPABASE_JWT_AUDIENCE")
    anon_key: SecretStr = Field(SecretStr(LOCAL_ANON_KEY), alias="SUPABASE_ANON_KEY")
    service_role_key: SecretStr = Field(
        SecretStr(LOCAL_SERVICE_ROLE_KEY), alias="SUPABASE_SERVICE_ROLE_KEY"
    )
    publishable_key: SecretStr = Field(
        SecretStr(LOCAL_PUBLISHABLE_KEY), alias="SUPABASE_PUBLISHABLE_KEY"
    )
    secret_key: SecretStr = Field(SecretStr(LOCAL_SECRET_KEY), alias="SUPABASE_SECRET_KEY")
    # Named secret keys for rotation: {"default": "sb_secret_…", "previous": "sb_secret_…"}.
    secret_keys_json: SecretStr | None = Field(None, alias="SUPABASE_SECRET_KEYS")

    # Webhooks and schedulers ------------------------------------------------------------
    # Standard Webhooks secrets ("whsec_…"), comma separated; the first one signs.
    webhook_secrets: SecretStr = Field(SecretStr(LOCAL_WEBHOOK_SECRET), alias="WEBHOOK_SECRETS")
    webhook_tolerance_s: int = Field(300, alias="WEBHOOK_TOLERANCE_SECONDS", ge=1)
    cron_secret: SecretStr = Field(SecretStr(LOCAL_CRON_SECRET), alias="CRON_SECRET")
    stripe_webhook_secret: SecretStr | None = Field(None, alias="STRIPE_WEBHOOK_SECRET")
    # Bearer token for GET health-check-workers/metrics; unset: the endpoint is off (503).
    metrics_token: SecretStr | None = Field(None, alias="METRICS_TOKEN")
    # A running job's reservation is stale (money audit) this long after its lease ran out.
    audit_grace_s: int = Field(300, alias="AUDIT_GRACE_SECONDS", ge=0)
    credits_per_usd_cent: int = Field(1, alias="CREDITS_PER_USD_CENT", ge=1)
    # Unit prices for the cost of a job (ops_job_costs); the sweep writes them to the
    # database (private.settings) — see unit_prices().
    cost_per_1k_tokens_usd: float = Field(0.0006, alias="COST_PER_1K_TOKENS_USD", ge=0)
    cost_per_1m_tts_chars_usd: float = Field(16.0, alias="COST_PER_1M_TTS_CHARS_USD", ge=0)
    cost_per_render_hour_usd: float = Field(0.1, alias="COST_PER_RENDER_HOUR_USD", ge=0)
    # JSON provider → USD per second, for runs whose provider reports no cost.
    provider_cost_per_second_usd: str = Field("{}", alias="PROVIDER_COST_PER_SECOND_USD")
    credit_value_usd: float = Field(0.01, alias="CREDIT_VALUE_USD", ge=0)

    # App Store (StoreKit 2 transactions, App Store Server Notifications V2) ---------------
    apple_bundle_id: str | None = Field(None, alias="APPLE_BUNDLE_ID")
    apple_app_apple_id: int | None = Field(None, alias="APPLE_APP_APPLE_ID")
    apple_environment: Literal["Production", "Sandbox"] = Field(
        "Production", alias="APPLE_ENVIRONMENT"
    )
    # DER (or PEM) files of the roots that sign App Store data, comma separated: Apple's
    # (https://www.apple.com/certificateauthority/, "Apple Root CA - G3") in production.
    apple_root_certificates: str | None = Field(None, alias="APPLE_ROOT_CERTIFICATES")
    # OCSP revocation checks of the signing chain (network calls to Apple).
    apple_online_checks: bool = Field(True, alias="APPLE_ONLINE_CHECKS")
    # Product id → credits of each consumable pack: {"com.example.credits100": 100}.
    apple_product_credits: str = Field("{}", alias="APPLE_PRODUCT_CREDITS")
    # DeviceCheck (one initial grant per device: videogen.integrations.devicecheck). The key is the
    # .p8 Apple gives for a key with the DeviceCheck capability, PEM text.
    apple_team_id: str | None = Field(None, alias="APPLE_TEAM_ID")
    apple_devicecheck_key_id: str | None = Field(None, alias="APPLE_DEVICECHECK_KEY_ID")
    apple_devicecheck_private_key: SecretStr | None = Field(
        None, alias="APPLE_DEVICECHECK_PRIVATE_KEY"
    )
    # Tokens from development-signed builds are known only to Apple's development server.
    apple_devicecheck_environment: Literal["production", "development"] = Field(
        "production", alias="APPLE_DEVICECHECK_ENVIRONMENT"
    )
    # true: a guest (anonymous user) gets the initial grant only with a DeviceCheck token.
    guest_grant_requires_device_check: bool = Field(
        False, alias="GUEST_GRANT_REQUIRES_DEVICE_CHECK"
    )

    # HTTP ---------------------------------------------------------------------------------
    functions_url: str = Field("http://127.0.0.1:54321/functions/v1", alias="FUNCTIONS_URL")
    cors_allow_origin: str = Field("*", alias="CORS_ALLOW_ORIGIN")
    max_body_bytes: int = Field(1_048_576, alias="MAX_BODY_BYTES", ge=1024)
    max_header_bytes: int = Field(16_384, alias="MAX_HEADER_BYTES", ge=1024)
    max_url_bytes: int = Field(8_192, alias="MAX_URL_BYTES", ge=256)
    rate_limit_per_minute: int = Field(120, alias="RATE_LIMIT_PER_MINUTE", ge=1)
    # Endpoints that spend CPU or a provider call without a charge (previews, analysis,
    # enhance, quotes, the catalogue): per user, and per client address, a minute.
    free_calls_per_minute: int = Field(60, alias="FREE_CALLS_PER_MINUTE", ge=1)
    free_calls_per_address_per_minute: int = Field(
        600, alias="FREE_CALLS_PER_ADDRESS_PER_MINUTE", ge=1
    )
    # Proxies in front of the functions that append to X-Forwarded-For (Cloud Run: 1); the
    # client's address is the entry that many from the end. 0: the socket's peer address.
    trusted_proxy_hops: int | None = Field(None, alias="TRUSTED_PROXY_HOPS", ge=0, le=10)
    dispatch_timeout_s: float = Field(5.0, alias="DISPATCH_TIMEOUT_SECONDS", gt=0)
    health_timeout_s: float = Field(2.0, alias="HEALTH_TIMEOUT_SECONDS", gt=0)
    sync_render_max_seconds: float = Field(8.0, alias="SYNC_RENDER_MAX_SECONDS", ge=0)
    # An in-request render still running after this long is stopped and continues as a job
    # on a worker (a server thread is never held longer).
    sync_render_deadline_s: float = Field(20.0, alias="SYNC_RENDER_DEADLINE_SECONDS", gt=0)
    # Outbound requests to URLs users give (webhooks, media by URL: integrations.public_http)
    # go to public internet hosts only, over https. true: http and private, loopback and
    # link-local hosts too — the local stack and tests only (refused in production).
    outbound_allow_private_hosts: bool = Field(False, alias="OUTBOUND_ALLOW_PRIVATE_HOSTS")
    # Each function process drains the webhook outbox in a thread woken by NOTIFY (false:
    # only the sweep delivers, e.g. where a process gets no CPU between requests).
    webhook_drainer: bool = Field(True, alias="WEBHOOK_DRAINER")

    # Storage ------------------------------------------------------------------------------
    # Unset: Supabase Storage in production, the local disk otherwise.
    storage_backend: Literal["local", "supabase"] | None = Field(None, alias="STORAGE_BACKEND")
    storage_root: Path | None = Field(None, alias="STORAGE_ROOT")
    # How long the links in a job's answer work (signed when the job is read).
    signed_url_expires_s: int = Field(3600, alias="SIGNED_URL_EXPIRES_SECONDS", ge=60, le=604800)
    # Kept this many days, then removed by the sweep (0: kept until deleted).
    upload_retention_days: int = Field(30, alias="UPLOAD_RETENTION_DAYS", ge=0)
    output_retention_days: int = Field(0, alias="OUTPUT_RETENTION_DAYS", ge=0)
    # Deleting an account needs a sign-in (the access token's newest `amr` timestamp) at
    # most this many seconds old: a stolen token alone cannot delete it.
    account_reauth_s: int = Field(300, alias="ACCOUNT_REAUTH_SECONDS", ge=30, le=86400)

    # Generation engines -------------------------------------------------------------------
    script_engine: Literal["offline", "openai"] = Field("offline", alias="SCRIPT_ENGINE")
    # Prompt enhancement (POST queue-job/enhance): rules from the templates, or an LLM.
    prompt_engine: Literal["offline", "openai"] = Field("offline", alias="PROMPT_ENGINE")
    openai_api_key: SecretStr | None = Field(None, alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(None, alias="OPENAI_BASE_URL")
    openai_model: str = Field("gpt-4o-mini", alias="OPENAI_MODEL")
    tts_engine: Literal["espeak", "google"] = Field("espeak", alias="TTS_ENGINE")
    # Stock photos for the images step (media.stock); "none": title cards only.
    stock_photos: Literal["none", "pexels", "unsplash"] = Field("none", alias="STOCK_PHOTOS")
    pexels_api_key: SecretStr | None = Field(None, alias="PEXELS_API_KEY")
    unsplash_access_key: SecretStr | None = Field(None, alias="UNSPLASH_ACCESS_KEY")
    # Stock clips for the images step's "clip" and "mixed" sources; "none": offline clips
    # (a title card moving slowly), made without an account.
    stock_videos: Literal["none", "pexels", "pixabay"] = Field("none", alias="STOCK_VIDEOS")
    pixabay_api_key: SecretStr | None = Field(None, alias="PIXABAY_API_KEY")

    # External video providers -------------------------------------------------------------
    fal_key: SecretStr | None = Field(None, alias="FAL_KEY")
    replicate_api_token: SecretStr | None = Field(None, alias="REPLICATE_API_TOKEN")
    replicate_webhook_secret: SecretStr | None = Field(None, alias="REPLICATE_WEBHOOK_SECRET")
    runway_api_key: SecretStr | None = Field(None, alias="RUNWAY_API_KEY")
    runpod_api_key: SecretStr | None = Field(None, alias="RUNPOD_API_KEY")

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str) -> str:
        if not value.startswith(("postgres://", "postgresql://")):
            raise ValueError("DATABASE_URL must be a postgres:// or postgresql:// URL")
        return value

    @field_validator("provider_cost_per_second_usd")
    @classmethod
    def _provider_rates(cls, value: str) -> str:
        try:
            parsed = json.loads(value or "{}")
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and v >= 0
            for v in parsed.values()
        ):
            raise ValueError(
                "PROVIDER_COST_PER_SECOND_USD must be a JSON object of provider → USD per "
                'second ≥ 0, e.g. {"replicate": 0.0014}'
            )
        return value or "{}"

    @model_validator(mode="after")
    def _storage_for_the_environment(self) -> Settings:
        if self.storage_backend is None:
            self.storage_backend = "supabase" if self.environment == "production" else "local"
            self.__pydantic_fields_set__.discard("storage_backend")  # derived, not set
        elif self.environment == "production" and self.storage_backend == "local":
            raise ValueError(
                "production needs STORAGE_BACKEND=supabase: the local disk of a serverless "
                "instance is gone with it"
            )
        return self

    @model_validator(mode="after")
    def _no_private_hosts_in_production(self) -> Settings:
        if self.environment == "production" and self.outbound_allow_private_hosts:
            raise ValueError(
                "OUTBOUND_ALLOW_PRIVATE_HOSTS=true is for the local stack and tests: in "
                "production it lets users make our servers call their own network"
            )
        return self

    @model_validator(mode="after")
    def _no_local_secrets_outside_local(self) -> Settings:
        if self.environment != "production":
            return self
        checked = {
            "SUPABASE_JWT_SECRET": self.jwt_secret,
            "SUPABASE_SERVICE_ROLE_KEY": self.service_role_key,
            "SUPABASE_SECRET_KEY": self.secret_key,
            "WEBHOOK_SECRETS": self.webhook_secrets,
            "CRON_SECRET": self.cron_secret,
        }
        if self.metrics_token is not None:
            checked["METRICS_TOKEN"] = self.metrics_token
        if self.apple_devicecheck_private_key is not None:
            checked["APPLE_DEVICECHECK_PRIVATE_KEY"] = self.apple_devicecheck_private_key
        bad = [
            name
            for name, secret in checked.items()
            if secret.get_secret_value() in _LOCAL_SECRETS
            or secret.get_secret_value().strip().lower() in _PLACEHOLDERS
        ]
        if bad:
            raise ValueError(
                "production needs real secrets; still local or placeholder: " + ", ".join(bad)
            )
        return self

    # Derived values -------------------------------------------------------------------------
    @property
    def is_local(self) -> bool:
        """True for the embedded default and the test suite."""
        return self.environment != "production"

    @property
    def proxy_hops(self) -> int:
        """TRUSTED_PROXY_HOPS, or its default: 1 in production (Cloud Run's front end), 0
        locally (the dev server is reached directly)."""
        if self.trusted_proxy_hops is not None:
            return self.trusted_proxy_hops
        return 1 if self.environment == "production" else 0

    @property
    def storage_dir(self) -> Path:
        """Root folder of the local-disk storage backend."""
        return self.storage_root or (self.state_dir / "storage")

    def named_secret_keys(self) -> dict[str, str]:
        """All accepted secret keys by name (rotation), the primary one as ``default``."""
        keys = {"default": self.secret_key.get_secret_value()}
        if self.secret_keys_json is not None:
            parsed = json.loads(self.secret_keys_json.get_secret_value())
            if not isinstance(parsed, dict):
                raise ValueError("SUPABASE_SECRET_KEYS must be a JSON object of name → key")
            keys.update({str(k): str(v) for k, v in parsed.items()})
        return keys

    def apple_products(self) -> dict[str, int]:
        """APPLE_PRODUCT_CREDITS as product id → credits."""
        parsed = json.loads(self.apple_product_credits or "{}")
        if not isinstance(parsed, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in parsed.values()
        ):
            raise ValueError("APPLE_PRODUCT_CREDITS must be a JSON object of product id → credits")
        return {str(k): int(v) for k, v in parsed.items()}

    def unit_prices(self) -> dict[str, Any]:
        """The unit prices as ``service.ops_unit_prices_set`` takes them."""
        return {
            "cost_per_1k_tokens_usd": self.cost_per_1k_tokens_usd,
            "cost_per_1m_tts_chars_usd": self.cost_per_1m_tts_chars_usd,
            "cost_per_render_hour_usd": self.cost_per_render_hour_usd,
            "provider_cost_per_second_usd": json.loads(self.provider_cost_per_second_usd),
            "credit_value_usd": self.credit_value_usd,
        }

    def webhook_secret_list(self) -> list[str]:
        """Standard Webhooks secrets, the signing one first."""
        return [s.strip() for s in self.webhook_secrets.get_secret_value().split(",") if s.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, validated once."""
    return Settings()
