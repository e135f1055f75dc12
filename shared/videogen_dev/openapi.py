"""The OpenAPI 3.1 document of the five functions, built from the code that serves them.

Request bodies and query strings come from the pydantic models of :mod:`videogen.models`
(``model_json_schema`` with ``#/components/schemas/{model}`` refs); response shapes,
statuses and auth schemes are declared here, next to each other, once per operation.
``videogen openapi`` writes ``openapi.yaml`` at the project root and ``--check`` fails
when the file and the code disagree (a test runs the same comparison).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel

from videogen.media.script import ScriptAnalysis
from videogen.models.accounts import (
    AccountDeleted,
    AccountExport,
    ApiKey,
    ApiKeyCreated,
    ApiKeyList,
    ApiKeyQuery,
    ApiKeyRequest,
    SharedQuery,
    SharedVideo,
    ShareLink,
    ShareLinkList,
    ShareLinkQuery,
    ShareLinkRequest,
)
from videogen.models.admin import (
    ActivateTemplate,
    AdminJobAction,
    AdminJobPage,
    AdminJobQuery,
    AdminJobResult,
    CreateTemplate,
    Enhancement,
    EnhanceRequest,
    PromptTemplate,
    PromptTemplateList,
    TemplateQuery,
)
from videogen.models.catalogue import (
    ModelList,
    ModelQuery,
    Profile,
    ProfileChange,
    Quote,
    QuoteRequest,
    ScriptAnalysisRequest,
    VoiceList,
    VoicePreviewRequest,
    VoiceQuery,
)
from videogen.models.common import ErrorEnvelope, JobIdQuery, ListQuery
from videogen.models.credits import (
    AppleNotification,
    AppleTransaction,
    ClaimInitialGrant,
    CreditResult,
    CreditsOverview,
    GrantCredits,
    MergeAnonymous,
    PageQuery,
    PurchaseCredits,
)
from videogen.models.element_templates import (
    ElementTemplate,
    ElementTemplateChange,
    ElementTemplateDeleted,
    ElementTemplateOrPage,
    ElementTemplateRequest,
    JobOrBatch,
    TemplateRenderRequest,
)
from videogen.models.jobs import (
    Batch,
    BatchCanceled,
    BatchOrPage,
    BatchQuery,
    BatchRequest,
    CancelOrRemoved,
    CancelResult,
    GenerateVideoRequest,
    Job,
    JobChange,
    JobDeleteQuery,
    JobOrPage,
    JobQuery,
    JobWithEvents,
    QueueJobRequest,
)
from videogen.models.keys import (
    ProviderKey,
    ProviderKeyDeleted,
    ProviderKeyList,
    ProviderKeyQuery,
    ProviderKeyRequest,
)
from videogen.models.ops import Liveness, ReadinessAnswer, Sweep
from videogen.models.projects import (
    Project,
    ProjectChange,
    ProjectDeleted,
    ProjectOrPage,
    ProjectQuery,
    ProjectRequest,
)
from videogen.models.webhooks import (
    DeliveryQuery,
    RotateSecret,
    WebhookDeliveryPage,
    WebhookSecret,
)
from videogen.models.workers import (
    ClaimJobs,
    Heartbeat,
    JobCallback,
    ProviderQuery,
    RegisterWorker,
    Worker,
    WorkerAnswer,
    WorkerList,
)

REF = "#/components/schemas/{model}"
BASE = "/functions/v1"

#: What every error status means here (the envelope's ``code`` says precisely what).
ERROR_STATUSES: dict[int, str] = {
    400: "The body is not JSON, or the database refused an input (`BAD_REQUEST`, `INVALID_INPUT`).",
    401: "Missing or invalid credentials or signature (`UNAUTHORIZED`, `INVALID_TOKEN`, "
    "`TOKEN_EXPIRED`, `INVALID_API_KEY`, `API_KEY_REVOKED`, `API_KEY_EXPIRED`, "
    "`INVALID_SIGNATURE`, `STALE_WEBHOOK`).",
    402: "Not enough credits (`INSUFFICIENT_CREDITS`), or credits owed after a refund "
    "(`CREDITS_IN_DEBT`: no new jobs until a purchase settles the debt).",
    403: "Authenticated, but not allowed to do this (`FORBIDDEN`, `ADMIN_ONLY`; a personal "
    "API key without the scope: `API_KEY_SCOPE`, or where only a session may act: "
    "`SESSION_REQUIRED`; `REAUTHENTICATION_REQUIRED`).",
    404: "Not found, or not yours (`JOB_NOT_FOUND`, `MODEL_NOT_FOUND`, `WORKER_NOT_FOUND`, "
    "`PROJECT_NOT_FOUND`, `BATCH_NOT_FOUND`, `PROFILE_NOT_FOUND`, `TEMPLATE_NOT_FOUND`, "
    "`API_KEY_NOT_FOUND`, `SHARE_LINK_NOT_FOUND`, `NOT_FOUND`).",
    405: "This route does not take that method (`METHOD_NOT_ALLOWED`); `Allow` lists those it "
    "takes.",
    409: "Conflicts with the current state (`INVALID_TRANSITION`, `ALREADY_CLAIMED`, "
    "`MERGE_BLOCKED`, `PURCHASE_REVOKED`, `API_KEY_LIMIT`, `JOB_NOT_SHAREABLE`, "
    "`ACCOUNT_BUSY`).",
    410: "It existed and is gone: a share link revoked or expired, or its video removed "
    "(`SHARE_LINK_GONE`).",
    413: "The body is larger than `MAX_BODY_BYTES` (`PAYLOAD_TOO_LARGE`).",
    422: "The body or query is not valid (`VALIDATION_ERROR` with one detail per field, "
    "`INVALID_PARAMS`, `INVALID_AMOUNT`, `IDEMPOTENCY_KEY_REUSED`, `UNKNOWN_PRODUCT`, "
    "`NOT_ANONYMOUS`, `INVALID_ANONYMOUS_TOKEN`).",
    429: "Too many requests or running jobs (`RATE_LIMITED`, `CONCURRENCY_LIMIT`); wait "
    "`Retry-After` seconds when given.",
    503: "A dependency is unavailable or not configured; retry later (`SERVICE_UNAVAILABLE`, "
    "`MODEL_UNAVAILABLE`, `PROVIDER_NOT_CONFIGURED`, `STRIPE_NOT_CONFIGURED`, "
    "`APP_STORE_NOT_CONFIGURED`, "
    "`JWKS_UNAVAILABLE`, `METRICS_NOT_CONFIGURED`, `NOT_READY`, `PROMPT_ENGINE_FAILED`).",
}

Requirement = dict[str, list[str]]
USER: list[Requirement] = [{"bearerAuth": []}]
API_KEY: list[Requirement] = [{"personalApiKey": []}, {"xApiKey": []}]
SIGNED: Requirement = {"webhookId": [], "webhookTimestamp": [], "webhookSignature": []}
SECRET: list[Requirement] = [{"apikey": []}, {"bearerAuth": []}]
CRON: list[Requirement] = [{"cronSecret": []}, {"bearerAuth": []}]
NONE: list[Requirement] = [{}]  # no credentials at all (public probes)


# ------------------------------------------------------------------------------------------
# Schemas
# ------------------------------------------------------------------------------------------


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _obj(
    properties: dict[str, Any], required: Iterable[str] = (), description: str = ""
) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object"}
    if description:
        out["description"] = description
    out["required"] = list(required)
    out["properties"] = properties
    return out


REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    GenerateVideoRequest,
    QueueJobRequest,
    QuoteRequest,
    ScriptAnalysisRequest,
    VoicePreviewRequest,
    BatchRequest,
    ProjectRequest,
    ProjectChange,
    ElementTemplateRequest,
    ElementTemplateChange,
    TemplateRenderRequest,
    ProfileChange,
    ProviderKeyRequest,
    ApiKeyRequest,
    ShareLinkRequest,
    EnhanceRequest,
    AdminJobAction,
    CreateTemplate,
    ActivateTemplate,
    JobCallback,
    ClaimInitialGrant,
    GrantCredits,
    PurchaseCredits,
    AppleTransaction,
    MergeAnonymous,
    AppleNotification,
    RegisterWorker,
    Heartbeat,
    ClaimJobs,
    Sweep,
    RotateSecret,
)


RESPONSE_MODELS: tuple[type[BaseModel], ...] = (
    ErrorEnvelope,
    JobOrPage,
    Job,
    CancelResult,
    CancelOrRemoved,
    JobChange,
    ModelList,
    VoiceList,
    Quote,
    ScriptAnalysis,
    ProjectOrPage,
    Project,
    ProjectDeleted,
    BatchOrPage,
    Batch,
    BatchCanceled,
    ElementTemplateOrPage,
    ElementTemplate,
    ElementTemplateDeleted,
    JobOrBatch,
    Profile,
    CreditsOverview,
    CreditResult,
    Worker,
    WorkerAnswer,
    Liveness,
    ReadinessAnswer,
    Enhancement,
    ProviderKey,
    ProviderKeyList,
    ProviderKeyDeleted,
    ApiKey,
    ApiKeyCreated,
    ApiKeyList,
    ShareLink,
    ShareLinkList,
    SharedVideo,
    AccountExport,
    AccountDeleted,
    PromptTemplate,
    PromptTemplateList,
    AdminJobPage,
    WorkerList,
    AdminJobResult,
    JobWithEvents,
    WebhookSecret,
    WebhookDeliveryPage,
)
REQUESTS_BY_NAME: dict[str, type[BaseModel]] = {m.__name__: m for m in REQUEST_MODELS}


def _model_schemas() -> dict[str, dict[str, Any]]:
    """Request bodies and answers from pydantic, nested models hoisted into components."""
    out: dict[str, dict[str, Any]] = {}
    for model in (*REQUEST_MODELS, *RESPONSE_MODELS):
        schema = model.model_json_schema(ref_template=REF)
        out.update(schema.pop("$defs", {}))
        out[model.__name__] = schema
    return out


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """A query-string model as OpenAPI parameters (``null`` dropped: absent means unset)."""
    schema = model.model_json_schema(ref_template=REF)
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema["properties"].items():
        prop = dict(prop)
        prop.pop("title", None)
        if "anyOf" in prop:
            kinds = [s for s in prop.pop("anyOf") if s.get("type") != "null"]
            prop = {**kinds[0], **prop} if len(kinds) == 1 else {"anyOf": kinds, **prop}
        if prop.get("default", ...) is None:
            del prop["default"]
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
        if "description" in prop:
            param["description"] = prop.pop("description")
        param["schema"] = prop
        params.append(param)
    return params


# ------------------------------------------------------------------------------------------
# Operations
# ------------------------------------------------------------------------------------------

IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Repeat a write safely: the first answer is replayed for 24 h (with "
    "`Idempotent-Replayed: true`); a twin sent while the first runs waits for it and "
    "replays it; the same key with another body is a 422.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}
REQUEST_ID_HEADER = {
    "description": "Echoes a client's X-Request-Id (8 to 64 ASCII characters) or a new uuid.",
    "schema": {"type": "string"},
}
REPLAYED_HEADER = {
    "description": "`true` when this is the stored answer of an earlier request.",
    "schema": {"type": "string", "enum": ["true"]},
}
PREFER = {
    "name": "Prefer",
    "in": "header",
    "required": False,
    "description": "`wait=N` (RFC 7240; N ≤ 60, more is read as 60): wait up to N seconds "
    "for the job (all the batch's jobs) to finish and answer 200 with it as GET answers it; "
    "else the usual 202. The answer says `Preference-Applied: wait=N`.",
    "schema": {"type": "string", "examples": ["wait=30"]},
}
CANCEL_AFTER = {
    "name": "Cancel-After",
    "in": "header",
    "required": False,
    "description": "As the body's `cancel_after` (which wins): seconds, or an ISO 8601 "
    "duration (`PT30S`); 1 s to 7 days.",
    "schema": {"type": "string", "examples": ["600", "PT10M"]},
}
PREFERENCE_APPLIED_HEADER = {
    "description": "`wait=N` when the request said `Prefer: wait=N`.",
    "schema": {"type": "string"},
}
RETRY_AFTER_HEADER = {
    "description": "Seconds to wait before retrying.",
    "schema": {"type": "integer", "minimum": 0},
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _success(status: int, description: str, data: str, *, idempotent: bool) -> dict[str, Any]:
    headers: dict[str, Any] = {"x-request-id": REQUEST_ID_HEADER}
    if idempotent:
        headers["Idempotent-Replayed"] = REPLAYED_HEADER
    envelope = _obj({"success": {"const": True}, "data": _ref(data)}, ["success", "data"])
    return {
        str(status): {"description": description, "headers": headers, "content": _json(envelope)}
    }


def _errors(statuses: Iterable[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status in sorted(statuses):
        headers: dict[str, Any] = {"x-request-id": REQUEST_ID_HEADER}
        if status == 429:
            headers["Retry-After"] = RETRY_AFTER_HEADER
        out[str(status)] = {
            "description": ERROR_STATUSES[status],
            "headers": headers,
            "content": _json(_ref("ErrorEnvelope")),
        }
    return out


def _body(schema: dict[str, Any], *, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": _json(schema)}


def _one_of(*names: str, discriminator: str | None = "action") -> dict[str, Any]:
    out: dict[str, Any] = {"oneOf": [_ref(n) for n in names]}
    if discriminator:
        mapping: dict[str, str] = {}
        for name in names:
            model = REQUESTS_BY_NAME[name]
            for value in get_args(model.model_fields[discriminator].annotation):
                mapping[value] = REF.format(model=name)
        out["discriminator"] = {"propertyName": discriminator, "mapping": mapping}
    return out


WRITE_ERRORS = (400, 401, 403, 404, 409, 413, 422, 429, 503)
READ_ERRORS = (401, 403, 404, 422, 503)


def _job_read(tag: str) -> dict[str, Any]:
    return {
        "tags": [tag],
        "summary": "Read one of your jobs (with its events) or a page of them",
        "description": "With `id`: that job and its events (404 when it is not yours). "
        "Without: a page of your jobs, newest first unless `sort` and `order` say "
        "otherwise, optionally of one `status`.",
        "parameters": _query_parameters(JobQuery),
        "responses": {
            **_success(
                200, "The job (with `events`) or a page of jobs.", "JobOrPage", idempotent=False
            ),
            **_errors(READ_ERRORS),
        },
    }


DELIVERY_NOTE = (
    " `webhook` (https, a public host): each of `webhook_events` (default completed, failed, "
    "canceled) is POSTed there, signed with your webhook secret (Standard Webhooks; "
    "`update-credits/webhook-secret`), retried with backoff for up to a day; "
    "`cancel_after` (or `Cancel-After`) cancels the job if it has not finished by then "
    "(credits released, `error_code` DEADLINE)."
)


def _waited(responses: dict[str, Any], data: str) -> dict[str, Any]:
    """A create's answers with ``Prefer: wait``: a 200 when it finished in time, and the
    Preference-Applied header on both."""
    out = {
        **_success(
            200, "Finished within `Prefer: wait`: as GET answers it.", data, idempotent=True
        ),
        **responses,
    }
    for status in ("200", "202"):
        out[status]["headers"]["Preference-Applied"] = PREFERENCE_APPLIED_HEADER
    return out


def _job_create(tag: str, body: str, summary: str, description: str) -> dict[str, Any]:
    return {
        "tags": [tag],
        "summary": summary,
        "description": description + DELIVERY_NOTE,
        "parameters": [IDEMPOTENCY_KEY, PREFER, CANCEL_AFTER],
        "requestBody": _body(_ref(body)),
        "responses": _waited(
            {
                **_success(202, "Credits reserved, job queued and routed.", "Job", idempotent=True),
                **_errors((*WRITE_ERRORS, 402)),
            },
            "JobWithEvents",
        ),
    }


def _sync_render(operation: dict[str, Any]) -> dict[str, Any]:
    """generate-video may finish a short composed video within the request (200)."""
    done = operation["responses"]["200"]
    done["description"] = "Rendered at once, or finished within `Prefer: wait`: the finished job."
    return operation


def _probes() -> dict[str, dict[str, Any]]:
    """The liveness and readiness probes and the metrics scrape (sub-paths of the sweep)."""
    ready_503 = _errors((503,))["503"]
    ready_503["description"] = (
        "`NOT_READY`: a check failed; `details` holds one `{check, ok}` per check "
        "(database, storage, workers). Nothing else is said about the failure."
    )
    metrics_200 = {
        "description": "The Prometheus text exposition (`videogen_*` metrics).",
        "headers": {"x-request-id": REQUEST_ID_HEADER},
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
    return {
        "health-check-workers/live": {
            "get": {
                "tags": ["operations"],
                "summary": "Liveness: the process answers",
                "description": "No credentials; touches nothing (no database): for liveness "
                "probes and uptime checks.",
                "responses": _success(200, "Alive.", "Liveness", idempotent=False),
            }
        },
        "health-check-workers/ready": {
            "get": {
                "tags": ["operations"],
                "summary": "Readiness: database, storage, and someone to serve jobs",
                "description": "No credentials. The database answers one cheap query within "
                "1 s; the storage backend is reachable (Supabase Storage: a one-object list "
                "with the service key; local: its folder is writable); a healthy worker "
                "(online, fresh heartbeat) or a configured provider with available models can "
                "serve jobs. 200 when all pass, else 503 `NOT_READY`.",
                "responses": {
                    **_success(200, "Ready.", "ReadinessAnswer", idempotent=False),
                    "503": ready_503,
                },
            }
        },
        "health-check-workers/metrics": {
            "get": {
                "tags": ["operations"],
                "summary": "Prometheus metrics",
                "description": "`Authorization: Bearer <METRICS_TOKEN>`; 503 "
                "`METRICS_NOT_CONFIGURED` while METRICS_TOKEN is unset. This process's "
                "request counts and latency histograms (function, method, status) and the "
                "database's numbers read at scrape time: jobs by model and status, queue "
                "depth and oldest age, attempts, failures by error code, workers, ledger "
                "totals, render real-time factor.",
                "responses": {"200": metrics_200, **_errors((401, 503))},
            }
        },
    }


def _paths() -> dict[str, dict[str, Any]]:
    routed = (
        "Credits are reserved and the job is queued in one transaction, then routed: pushed "
        "to a push worker, submitted to its provider, or left for a pull worker to claim."
    )
    return {
        "generate-video": {
            "post": _sync_render(
                _job_create(
                    "jobs",
                    "GenerateVideoRequest",
                    "Create a video job (text/image-to-video, or a composed video)",
                    routed + " A composed video short enough to render at once answers 200 "
                    "with the finished (or failed, credits released) job instead.",
                )
            ),
            "get": _job_read("jobs"),
        },
        "queue-job": {
            "post": _job_create(
                "jobs",
                "QueueJobRequest",
                "Queue a job of any type in the catalogue",
                routed + " `params` are checked against the model.",
            ),
            "get": _job_read("jobs"),
            "delete": {
                "tags": ["jobs"],
                "summary": "Cancel one of your jobs, or remove a finished one from history",
                "description": "`action=cancel` (the default): credits are released and the "
                "worker or provider running it is told to stop; 409 INVALID_TRANSITION when it "
                "has already finished. `action=remove`: a finished job leaves your history and "
                "its files are removed (the job and its ledger entries stay); 409 while it runs.",
                "parameters": _query_parameters(JobDeleteQuery),
                "responses": {
                    **_success(
                        200,
                        "The canceled job (cancel), or the removed job (remove).",
                        "CancelOrRemoved",
                        idempotent=False,
                    ),
                    **_errors((401, 404, 409, 422, 429, 503)),
                },
            },
        },
        "queue-job/models": {
            "get": {
                "tags": ["jobs"],
                "summary": "The model catalogue",
                "description": "Every available model with its job type, limits and price rule "
                "(a job costs `credits_base + credits_per_second * duration`, times the "
                "resolution factor; a picture has no duration), featured first, optionally of "
                "one `category`. The publishable key is enough.",
                "parameters": _query_parameters(ModelQuery),
                "responses": {
                    **_success(200, "The available models.", "ModelList", idempotent=False),
                    **_errors((401, 422, 503)),
                },
            },
        },
        "queue-job/voices": {
            "get": {
                "tags": ["catalogue"],
                "summary": "The narration voices",
                "description": "Every available voice (`<engine>:<name>`; a job's `voice` "
                "param takes the name), optionally of one engine and language (`en` matches "
                "`en-US`). The publishable key is enough.",
                "parameters": _query_parameters(VoiceQuery),
                "responses": {
                    **_success(200, "The voices.", "VoiceList", idempotent=False),
                    **_errors((401, 422, 503)),
                },
            },
        },
        "queue-job/voices/preview": {
            "post": {
                "tags": ["catalogue"],
                "summary": "Hear a voice: a few seconds of it saying a line (WAV)",
                "description": "Nothing is stored or charged. `text` defaults to a stock line.",
                "requestBody": _body(_ref("VoicePreviewRequest")),
                "responses": {
                    "200": {
                        "description": "The voice saying the line.",
                        "headers": {"x-request-id": REQUEST_ID_HEADER},
                        "content": {
                            "audio/wav": {"schema": {"type": "string", "format": "binary"}}
                        },
                    },
                    **_errors((400, 401, 413, 422, 503)),
                },
            },
        },
        "queue-job/script/analyze": {
            "post": {
                "tags": ["catalogue"],
                "summary": "A script's words and reading time, per section (free)",
                "description": "What the script step answers in `output.analysis`, for a "
                "script you edited: no job, no credits.",
                "requestBody": _body(_ref("ScriptAnalysisRequest")),
                "responses": {
                    **_success(200, "The analysis.", "ScriptAnalysis", idempotent=False),
                    **_errors((400, 401, 413, 422, 503)),
                },
            },
        },
        "queue-job/quote": {
            "post": {
                "tags": ["catalogue"],
                "summary": "What requests would cost and when they would be done",
                "description": "For 1 to 20 `{model, params, priority}`: the params as a job "
                "would store them, the cost, the jobs queued ahead (exact to 100), the "
                "estimate, and for composed videos whether generate-video would render it at "
                "once; then the total, your balance and whether it covers it. Nothing is "
                "created and no credit moves.",
                "requestBody": _body(_ref("QuoteRequest")),
                "responses": {
                    **_success(200, "The quote.", "Quote", idempotent=False),
                    **_errors((400, 401, 404, 413, 422, 503)),
                },
            },
        },
        "queue-job/projects": {
            "get": {
                "tags": ["projects"],
                "summary": "One of your projects (with job counts per status), or a page",
                "parameters": _query_parameters(ProjectQuery),
                "responses": {
                    **_success(200, "The project or a page.", "ProjectOrPage", idempotent=False),
                    **_errors(READ_ERRORS),
                },
            },
            "post": {
                "tags": ["projects"],
                "summary": "Create a project",
                "description": "File jobs in it with `project_id` when you create them; "
                "list them with `GET /queue-job?project_id=`.",
                "parameters": [IDEMPOTENCY_KEY],
                "requestBody": _body(_ref("ProjectRequest")),
                "responses": {
                    **_success(201, "The new project.", "Project", idempotent=True),
                    **_errors(WRITE_ERRORS),
                },
            },
            "patch": {
                "tags": ["projects"],
                "summary": "Rename or redescribe one of your projects",
                "parameters": [
                    *_query_parameters(JobIdQuery),
                    IDEMPOTENCY_KEY,
                ],
                "requestBody": _body(_ref("ProjectChange")),
                "responses": {
                    **_success(200, "The project.", "Project", idempotent=True),
                    **_errors(WRITE_ERRORS),
                },
            },
            "delete": {
                "tags": ["projects"],
                "summary": "Delete one of your projects",
                "description": "Its jobs and batches stay, ungrouped, with every ledger entry.",
                "parameters": [
                    *_query_parameters(JobIdQuery),
                    IDEMPOTENCY_KEY,
                ],
                "responses": {
                    **_success(200, "The deleted project.", "ProjectDeleted", idempotent=True),
                    **_errors((401, 404, 422, 429, 503)),
                },
            },
        },
        "queue-job/batches": {
            "get": {
                "tags": ["projects"],
                "summary": "One of your batches (progress and jobs), or a page",
                "description": "With `id`: the batch, its progress (`counts` per status, "
                "`finished`, `percent`, `done`) and its jobs. Without: a page of batches, "
                "optionally of one `project_id`. The same progress is broadcast as "
                "`batch_progress` on `user:<uid>:jobs` with every change of one of its jobs.",
                "parameters": _query_parameters(BatchQuery),
                "responses": {
                    **_success(200, "The batch or a page.", "BatchOrPage", idempotent=False),
                    **_errors(READ_ERRORS),
                },
            },
            "post": {
                "tags": ["projects"],
                "summary": "Create 1 to 20 jobs at once, paid for together or not at all",
                "description": "Every item is checked and priced, the total reserved in one "
                "transaction (402 with `required`, `balance` and `items` in the details "
                "otherwise, nothing created), then each job is routed. A bad item names "
                "itself (`items.<n>`). `webhook`, `webhook_events` and `cancel_after` apply "
                "to every job." + DELIVERY_NOTE,
                "parameters": [IDEMPOTENCY_KEY, PREFER, CANCEL_AFTER],
                "requestBody": _body(_ref("BatchRequest")),
                "responses": _waited(
                    {
                        **_success(202, "The batch and its jobs.", "Batch", idempotent=True),
                        **_errors((*WRITE_ERRORS, 402)),
                    },
                    "Batch",
                ),
            },
            "delete": {
                "tags": ["projects"],
                "summary": "Cancel every unfinished job of one of your batches",
                "parameters": [
                    *_query_parameters(JobIdQuery),
                    IDEMPOTENCY_KEY,
                ],
                "responses": {
                    **_success(200, "The canceled batch.", "BatchCanceled", idempotent=True),
                    **_errors((401, 404, 422, 429, 503)),
                },
            },
        },
        "queue-job/element-templates": {
            "get": {
                "tags": ["projects"],
                "summary": "One of your element templates, or a page",
                "parameters": _query_parameters(ListQuery),
                "responses": {
                    **_success(
                        200, "The template or a page.", "ElementTemplateOrPage", idempotent=False
                    ),
                    **_errors(READ_ERRORS),
                },
            },
            "post": {
                "tags": ["projects"],
                "summary": "Save a timeline of elements with `{{name}}` merge fields",
                "description": "Fields may stand in any string of the elements: a text, an "
                "upload's path, a colour (a whole-string field may also be a number). The "
                "shape is checked as a direct `elements` request's; the answer lists the "
                "`fields`.",
                "parameters": [IDEMPOTENCY_KEY],
                "requestBody": _body(_ref("ElementTemplateRequest")),
                "responses": {
                    **_success(201, "The saved template.", "ElementTemplate", idempotent=True),
                    **_errors(WRITE_ERRORS),
                },
            },
            "patch": {
                "tags": ["projects"],
                "summary": "Change one of your element templates",
                "parameters": [*_query_parameters(JobIdQuery), IDEMPOTENCY_KEY],
                "requestBody": _body(_ref("ElementTemplateChange")),
                "responses": {
                    **_success(200, "The template.", "ElementTemplate", idempotent=True),
                    **_errors(WRITE_ERRORS),
                },
            },
            "delete": {
                "tags": ["projects"],
                "summary": "Delete one of your element templates",
                "parameters": [*_query_parameters(JobIdQuery), IDEMPOTENCY_KEY],
                "responses": {
                    **_success(
                        200, "The deleted template.", "ElementTemplateDeleted", idempotent=True
                    ),
                    **_errors((401, 404, 422, 429, 503)),
                },
            },
        },
        "queue-job/element-templates/render": {
            "post": {
                "tags": ["projects"],
                "summary": "Render a template with values: one job, or a batch",
                "description": "`values` makes one job (rendered at once when short, as "
                "generate-video does); `values_list` makes a batch (1-20 jobs, all reserved "
                "together or none). Before any money moves, each set must have every field "
                "and no other (422 `TEMPLATE_FIELDS_MISMATCH`, details with `missing` and "
                "`extra` per set), and the filled-in timeline and its uploads are checked "
                "as a direct `elements` request's.",
                "parameters": [IDEMPOTENCY_KEY],
                "requestBody": _body(_ref("TemplateRenderRequest")),
                "responses": {
                    **_success(200, "The job, rendered.", "Job", idempotent=True),
                    **_success(202, "The job queued, or the batch.", "JobOrBatch", idempotent=True),
                    **_errors((*WRITE_ERRORS, 402)),
                },
            },
        },
        "queue-job/webhook-deliveries": {
            "get": {
                "tags": ["webhooks"],
                "summary": "Your webhook deliveries and their attempts, newest first",
                "description": "One delivery per event of a job with a `webhook`; its `id` "
                "is the `webhook-id` header, the same on every retry (deduplicate on it). "
                "`status`: pending (to send, again at `next_attempt_at`), delivered (a 2xx "
                "came back), failed (given up after `webhook_max_attempts` tries or a day). "
                "`attempts_log`: each try's status code, error and duration. Optionally of "
                "one `job_id`.",
                "parameters": _query_parameters(DeliveryQuery),
                "responses": {
                    **_success(
                        200, "A page of deliveries.", "WebhookDeliveryPage", idempotent=False
                    ),
                    **_errors((401, 422, 503)),
                },
            }
        },
        "queue-job/enhance": {
            "post": {
                "tags": ["prompts"],
                "summary": "An improved prompt for a model's job type, for you to use or not",
                "description": "The job type's active template (set by admins) improves the "
                "prompt: the offline engine adds the camera, lighting, motion and style cues "
                "it lacks after your own words; the openai engine (`PROMPT_ENGINE`) asks an "
                "OpenAI-compatible model with the template's instruction. Nothing is charged "
                "or stored; it counts against your rate limit like a write. To keep both, "
                "create the job with `params.prompt` = `enhanced` and "
                "`params.original_prompt` = `original`.",
                "requestBody": _body(_ref("EnhanceRequest")),
                "responses": {
                    **_success(200, "The enhanced prompt.", "Enhancement", idempotent=False),
                    **_errors((400, 401, 404, 413, 422, 429, 503)),
                },
            }
        },
        "queue-job/share-links": {
            "get": {
                "tags": ["projects"],
                "summary": "Your share links, newest first, each with its public URL",
                "responses": {
                    **_success(200, "Your links.", "ShareLinkList", idempotent=False),
                    **_errors(READ_ERRORS),
                },
            },
            "post": {
                "tags": ["projects"],
                "summary": "A public link to one of your completed videos",
                "description": "The link's id is 192 random bits; anyone holding `url` gets "
                "the video without credentials until you revoke it or `expires_in_seconds` "
                "passes. 409 JOB_NOT_SHAREABLE for a job without a video (unfinished, failed, "
                "its files expired).",
                "parameters": [IDEMPOTENCY_KEY],
                "requestBody": _body(_ref("ShareLinkRequest")),
                "responses": {
                    **_success(201, "The link.", "ShareLink", idempotent=True),
                    **_errors(WRITE_ERRORS),
                },
            },
            "delete": {
                "tags": ["projects"],
                "summary": "Revoke a share link",
                "description": "From now on it answers 410; a CDN may serve a cached redirect "
                "for at most 300 s more.",
                "parameters": [*_query_parameters(ShareLinkQuery), IDEMPOTENCY_KEY],
                "responses": {
                    **_success(200, "Revoked.", "ShareLink", idempotent=True),
                    **_errors((401, 403, 404, 422, 429, 503)),
                },
            },
        },
        "queue-job/shared": {
            "get": {
                "tags": ["projects"],
                "summary": "A shared video (anyone holding the link; no credentials)",
                "description": "302 to a freshly signed URL of the video, or with "
                "`format=json` its metadata and signed URLs. `Cache-Control: public, "
                "max-age=N` with N at most 300 s, half the signed URL's life and the time left "
                "on the link; errors are `no-store`. 404 for an unknown id, 410 once revoked "
                "or expired.",
                "parameters": _query_parameters(SharedQuery),
                "responses": {
                    "302": {
                        "description": "To the video's signed URL.",
                        "headers": {
                            "Location": {
                                "description": "A signed URL of the video.",
                                "schema": {"type": "string"},
                            },
                            "Cache-Control": {
                                "description": "`public, max-age=N`.",
                                "schema": {"type": "string"},
                            },
                            "x-request-id": REQUEST_ID_HEADER,
                        },
                    },
                    **_success(200, "The video (format=json).", "SharedVideo", idempotent=False),
                    **_errors((404, 410, 422, 503)),
                },
            }
        },
        "queue-job/admin/jobs": {
            "get": {
                "tags": ["admin"],
                "summary": "Every user's jobs, newest first (admins)",
                "description": "For a token with `app_metadata.role = admin` (403 "
                "`ADMIN_ONLY` otherwise): RLS lets an admin read every job, removed ones "
                "too, filtered by `status`, `user_id` or `model`.",
                "parameters": _query_parameters(AdminJobQuery),
                "responses": {
                    **_success(200, "A page of jobs.", "AdminJobPage", idempotent=False),
                    **_errors((401, 403, 422, 503)),
                },
            },
            "post": {
                "tags": ["admin"],
                "summary": "Requeue a stuck job, or fail it (admins)",
                "description": "`requeue`: back in the queue at once (worker and lease "
                "cleared, progress 0, not counted as a failure; the next dispatch is a new "
                "attempt, so the old one's reports are stale), then routed; credits stay "
                "reserved. `fail`: finished as failed (`ADMIN_FAILED`), its credits released. "
                "Whoever ran it is told to stop. 409 `INVALID_TRANSITION` once finished.",
                "parameters": [IDEMPOTENCY_KEY],
                "requestBody": _body(_ref("AdminJobAction")),
                "responses": {
                    **_success(200, "The job after it.", "AdminJobResult", idempotent=True),
                    **_errors(WRITE_ERRORS),
                },
            },
        },
        "queue-job/admin/workers": {
            "get": {
                "tags": ["admin"],
                "summary": "Every registered worker (admins)",
                "responses": {
                    **_success(200, "The workers.", "WorkerList", idempotent=False),
                    **_errors((401, 403, 503)),
                },
            },
        },
        "queue-job/admin/templates": {
            "get": {
                "tags": ["admin"],
                "summary": "Every prompt template version (admins)",
                "description": "By job type, newest first; one version per job type is "
                "active. Versions are never changed or deleted.",
                "parameters": _query_parameters(TemplateQuery),
                "responses": {
                    **_success(200, "The versions.", "PromptTemplateList", idempotent=False),
                    **_errors((401, 403, 422, 503)),
                },
            },
            "post": {
                "tags": ["admin"],
                "summary": "Save a new template version, or activate one (admins)",
                "description": "`create`: the job type's next version, active at once "
                "unless `activate` is false (201). `activate`: that version becomes its job "
                "type's active one (200) — activating an older one rolls back. Takes effect "
                "on the next enhancement, without a deploy.",
                "parameters": [IDEMPOTENCY_KEY],
                "requestBody": _body(_one_of("CreateTemplate", "ActivateTemplate")),
                "responses": {
                    **_success(201, "The new version.", "PromptTemplate", idempotent=True),
                    **_success(200, "The activated version.", "PromptTemplate", idempotent=True),
                    **_errors(WRITE_ERRORS),
                },
            },
        },
        "job-callback": {
            "post": {
                "tags": ["workers"],
                "summary": "Report progress of a job (GPU worker or video provider)",
                "description": "A worker signs its report per Standard Webhooks (5-minute "
                "tolerance; each webhook-id applied once). With `?provider=` the body is "
                "that provider's own webhook, verified by its own scheme. Duplicate, "
                "reordered and late reports (an attempt that is no longer current) answer "
                "200 with applied=false.",
                "parameters": _query_parameters(ProviderQuery),
                "requestBody": _body(
                    {
                        "anyOf": [
                            _ref("JobCallback"),
                            {
                                "type": "object",
                                "description": "With `?provider=`: that provider's payload.",
                            },
                        ]
                    }
                ),
                "responses": {
                    **_success(200, "Applied, or why not.", "JobChange", idempotent=False),
                    **_errors((400, 401, 404, 409, 413, 422, 503)),
                },
            }
        },
        "update-credits": {
            "get": {
                "tags": ["credits"],
                "summary": "Your balance, reserved credits and a page of your ledger",
                "parameters": _query_parameters(PageQuery),
                "responses": {
                    **_success(200, "Balance and ledger.", "CreditsOverview", idempotent=False),
                    **_errors(READ_ERRORS),
                },
            },
            "post": {
                "tags": ["credits"],
                "summary": "Initial grant, App Store purchase, merge, grants, Stripe events",
                "description": "A user: `claim_initial_grant` (once; then 409 "
                "ALREADY_CLAIMED); "
                "`apple_transaction` (a StoreKit 2 signed transaction, verified against the App "
                "Store roots, credited once per transaction, a non-consumable once per original "
                "transaction; 401 INVALID_SIGNATURE, 422 UNKNOWN_PRODUCT, 409 PURCHASE_REVOKED, "
                "403 when its appAccountToken is another user's); `merge_anonymous` (the "
                "anonymous session's credits move to this account once; 409 MERGE_BLOCKED while "
                "it has unfinished jobs or debt, 422 NOT_ANONYMOUS). "
                "`grant`, `adjust`, `purchase` need a secret key (403 for a user) and are "
                "idempotent by `grant_id` / `transaction_id`. A request with `Stripe-Signature` "
                "is a Stripe event: `checkout.session.completed` with `metadata.user_id` "
                "credits the buyer once per session; `refund.created` and "
                "`charge.dispute.created` claw the session's credits back (in proportion to "
                "the amount) once per refund / dispute id, the part already spent as `debt`; "
                "`customer.subscription.*` set the profile's tier from the subscription's "
                "status, and `invoice.paid` grants the period's credits once per invoice "
                "(`private.subscription_plans`).",
                "parameters": [IDEMPOTENCY_KEY],
                "requestBody": _body(
                    _one_of(
                        "ClaimInitialGrant",
                        "AppleTransaction",
                        "MergeAnonymous",
                        "GrantCredits",
                        "PurchaseCredits",
                    )
                ),
                "responses": {
                    **_success(
                        200, "Applied, or already applied.", "CreditResult", idempotent=True
                    ),
                    **_errors((*WRITE_ERRORS, 402)),
                },
            },
        },
        "update-credits/apple-notifications": {
            "post": {
                "tags": ["credits"],
                "summary": "App Store Server Notifications V2 (Apple calls this)",
                "description": "No header credentials: the body's `signedPayload` is the "
                "credential, a JWS verified against the App Store roots, bundle id, app id and "
                "environment before anything else (401 INVALID_SIGNATURE). `REFUND` claws "
                "back the refunded transaction's credits once (by `revocationPercentage` when "
                "given), the part already spent as `debt`. For an auto-renewable "
                "subscription, `SUBSCRIBED` / `DID_RENEW` grant the period's credits once per "
                "transaction and set the tier until `expiresDate`, `DID_FAIL_TO_RENEW` keeps "
                "it, `EXPIRED` / `GRACE_PERIOD_EXPIRED` / `REFUND` end it; other types are "
                "acknowledged.",
                "requestBody": _body(_ref("AppleNotification")),
                "responses": {
                    **_success(200, "Applied, or why not.", "CreditResult", idempotent=True),
                    **_errors((400, 401, 413, 422, 503)),
                },
            }
        },
        "update-credits/profile": {
            "get": {
                "tags": ["credits"],
                "summary": "Your profile: preferences, tier, credits and limits",
                "responses": {
                    **_success(200, "Your profile.", "Profile", idempotent=False),
                    **_errors((401, 404, 503)),
                },
            },
            "patch": {
                "tags": ["credits"],
                "summary": "Change your display name, language or theme",
                "description": "Nothing else of the profile is yours to change: the tier, "
                "balance and limits are the service's (the database's column grants say so).",
                "requestBody": _body(_ref("ProfileChange")),
                "responses": {
                    **_success(200, "Your profile.", "Profile", idempotent=False),
                    **_errors((400, 401, 404, 413, 422, 503)),
                },
            },
        },
        "update-credits/keys": {
            "get": {
                "tags": ["credits"],
                "summary": "Which providers you have your own key for (never the key)",
                "description": "Each stored key as its provider, its last four characters "
                "and when it was stored and last rotated.",
                "responses": {
                    **_success(200, "Your keys, masked.", "ProviderKeyList", idempotent=False),
                    **_errors((401, 503)),
                },
            },
            "put": {
                "tags": ["credits"],
                "summary": "Store or rotate your own key for a provider",
                "description": "openai, fal, replicate or runway. The key is kept encrypted "
                "(Supabase Vault) and used only for your own jobs: your fal, Replicate and "
                "Runway jobs run on your account, and your script steps and prompt "
                "enhancements on your OpenAI key when the service uses OpenAI. Putting "
                "another key replaces it (the old value is gone). No answer ever contains "
                "it; a malformed key is a 422 that does not repeat it. Rate limited; no "
                "Idempotency-Key (storing the same key again is the same state).",
                "requestBody": _body(_ref("ProviderKeyRequest")),
                "responses": {
                    **_success(201, "Stored.", "ProviderKey", idempotent=False),
                    **_success(
                        200, "Rotated: the old key is gone.", "ProviderKey", idempotent=False
                    ),
                    **_errors((400, 401, 413, 422, 429, 503)),
                },
            },
            "delete": {
                "tags": ["credits"],
                "summary": "Forget your key for a provider",
                "description": "Its encrypted value goes too; your jobs use the service's "
                "key again. 404 PROVIDER_KEY_NOT_FOUND when there is none.",
                "parameters": _query_parameters(ProviderKeyQuery),
                "responses": {
                    **_success(200, "Forgotten.", "ProviderKeyDeleted", idempotent=True),
                    **_errors((401, 404, 422, 429, 503)),
                },
            },
        },
        "update-credits/webhook-secret": {
            "get": {
                "tags": ["webhooks"],
                "summary": "The secret your webhook deliveries are signed with",
                "description": "Standard Webhooks (`whsec_…`): verify each delivery's "
                "`webhook-signature` over `webhook-id.webhook-timestamp.body` with it, e.g. "
                "`standardwebhooks.Webhook(secret).verify(body, headers)`. Made on first use.",
                "responses": {
                    **_success(200, "Your signing secret.", "WebhookSecret", idempotent=False),
                    **_errors((401, 503)),
                },
            },
            "post": {
                "tags": ["webhooks"],
                "summary": "Rotate your webhook signing secret",
                "description": 'Body `{"action": "rotate"}` or none. The new secret signs '
                "every delivery sent from now on (retries of older events too); the old one "
                "signs nothing more. Rate limited; no Idempotency-Key (the answer holds the "
                "secret, which no stored answer keeps).",
                "requestBody": _body(_ref("RotateSecret"), required=False),
                "responses": {
                    **_success(200, "The new secret.", "WebhookSecret", idempotent=False),
                    **_errors((400, 401, 413, 422, 429, 503)),
                },
            },
        },
        "update-credits/api-keys": {
            "get": {
                "tags": ["credits"],
                "summary": "Your personal API keys, masked (never a key again)",
                "responses": {
                    **_success(200, "Your keys, newest first.", "ApiKeyList", idempotent=False),
                    **_errors((401, 403, 503)),
                },
            },
            "post": {
                "tags": ["credits"],
                "summary": "A personal API key for your own servers (shown once)",
                "description": "Send it as `Authorization: Bearer vg_live_…` (or `X-API-Key`) "
                "to any user endpoint: it stands for you, with your rate limits, within its "
                "scopes (`read`: reads; `jobs`: create, cancel and remove jobs, batches, "
                "projects and share links). Kept as its SHA-256; at most 10 active keys and "
                "20 new ones an hour. A session's token only. No Idempotency-Key (a replay "
                "could not show the key).",
                "requestBody": _body(_ref("ApiKeyRequest"), required=False),
                "responses": {
                    **_success(201, "The key, this once.", "ApiKeyCreated", idempotent=False),
                    **_errors(WRITE_ERRORS),
                },
            },
            "delete": {
                "tags": ["credits"],
                "summary": "Revoke a personal API key",
                "description": "Every request with it is a 401 API_KEY_REVOKED from now on.",
                "parameters": [*_query_parameters(ApiKeyQuery), IDEMPOTENCY_KEY],
                "responses": {
                    **_success(200, "Revoked.", "ApiKey", idempotent=True),
                    **_errors((401, 403, 404, 422, 429, 503)),
                },
            },
        },
        "update-credits/account": {
            "get": {
                "tags": ["credits"],
                "summary": "Everything we hold about you, as one JSON download",
                "description": "Profile, jobs, job events, usage, the ledger, purchases and "
                "refunds, projects, batches, the metadata of your keys and share links, and "
                "your files as signed links; `counts` per table. `Content-Disposition: "
                "attachment`. A session's token only; 3 a minute.",
                "responses": {
                    **_success(200, "The export.", "AccountExport", idempotent=False),
                    **_errors((401, 403, 429, 503)),
                },
            },
            "delete": {
                "tags": ["credits"],
                "summary": "Delete your account",
                "description": "Needs a token from a sign-in made within "
                "ACCOUNT_REAUTH_SECONDS (its newest `amr` timestamp; else 403 "
                "REAUTHENTICATION_REQUIRED): sign in with your password again first. Your "
                "files go, your personal data is erased and the auth user deleted; jobs and "
                "the ledger stay for the books under an id that names nobody. 409 "
                "ACCOUNT_BUSY while a job runs.",
                "responses": {
                    **_success(200, "Deleted.", "AccountDeleted", idempotent=False),
                    **_errors((401, 403, 409, 429, 503)),
                },
            },
        },
        "health-check-workers": {
            "get": {
                "tags": ["workers"],
                "summary": "Run the fleet sweep (scheduler)",
                "description": "Probe workers, requeue expired leases, reconcile provider "
                "jobs, push waiting jobs, drop expired keys. Secret key or CRON_SECRET.",
                "responses": {
                    **_success(200, "What the sweep did.", "SweepSummary", idempotent=False),
                    **_errors((401, 503)),
                },
            },
            "post": {
                "tags": ["workers"],
                "summary": "Sweep (scheduler), or a worker's register / heartbeat / claim",
                "description": 'Unsigned: `{"action": "sweep"}` (or no body) with the '
                "secret key or CRON_SECRET. Signed (Standard Webhooks, the worker secret): "
                "`register` → 201 worker, `heartbeat` → the jobs it still owns, `claim` "
                "(pull workers) → leased jobs.",
                "requestBody": _body(
                    _one_of(
                        "RegisterWorker", "Heartbeat", "ClaimJobs", "Sweep", discriminator=None
                    ),
                    required=False,
                ),
                "responses": {
                    **_success(
                        200,
                        "Sweep summary, heartbeat result, or claimed jobs.",
                        "WorkerAnswer",
                        idempotent=False,
                    ),
                    **_success(201, "The registered worker.", "Worker", idempotent=False),
                    **_errors((400, 401, 404, 413, 422, 503)),
                },
            },
        },
        **_probes(),
    }


# ------------------------------------------------------------------------------------------
# Document
# ------------------------------------------------------------------------------------------

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A Supabase Auth access token (users); for secret-key endpoints also "
        "a secret key or the service_role JWT; for the sweep also the CRON_SECRET.",
    },
    "apikey": {
        "type": "apiKey",
        "in": "header",
        "name": "apikey",
        "description": "The project's publishable key (`sb_publishable_…`, or the anon JWT) "
        "as Supabase clients send it, or a secret key (`sb_secret_…`, or the service_role "
        "JWT) for service calls.",
    },
    "personalApiKey": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "vg_live_…",
        "description": "A personal API key (`POST /update-credits/api-keys`) standing for "
        "its owner, within its scopes: `read` for reads, `jobs` for creating jobs.",
    },
    "xApiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "The same personal API key, for clients that cannot set `Authorization`.",
    },
    "cronSecret": {
        "type": "apiKey",
        "in": "header",
        "name": "x-cron-secret",
        "description": "CRON_SECRET, for the scheduler's sweep.",
    },
    "webhookId": {
        "type": "apiKey",
        "in": "header",
        "name": "webhook-id",
        "description": "Standard Webhooks: unique id of the message (applied once).",
    },
    "webhookTimestamp": {
        "type": "apiKey",
        "in": "header",
        "name": "webhook-timestamp",
        "description": "Standard Webhooks: Unix seconds; older than 5 minutes is refused.",
    },
    "webhookSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "webhook-signature",
        "description": "Standard Webhooks: `v1,<base64 HMAC-SHA256 of id.timestamp.body>` "
        "with the shared worker secret (`whsec_…`).",
    },
    "stripeSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "Stripe-Signature",
        "description": "Stripe's webhook signature with STRIPE_WEBHOOK_SECRET.",
    },
}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("videogen")
    except PackageNotFoundError:
        return "0.0.0"


# What each auth mode of the kit asks a client for, as OpenAPI security requirements.
MODE_SECURITY: dict[str, list[Requirement]] = {
    "user": USER,
    "api_key": API_KEY,
    "public": [{"apikey": []}],
    "secret": SECRET,
    "cron": CRON,
    "metrics": [{"bearerAuth": []}],
    "worker_signature": [SIGNED],
    "stripe_signature": [{"stripeSignature": []}],
    "app_store_signature": NONE,  # the proof is in the body (a signed JWS)
    "provider_signature": NONE,  # each provider's own scheme, named by ?provider=
    "always": NONE,
}


def security_of(modes: Iterable[str]) -> list[Requirement]:
    """The requirements of a method's auth modes, in the order the kit tries them."""
    found: list[Requirement] = []
    for mode in modes:
        for requirement in MODE_SECURITY[mode.partition(":")[0]]:
            if requirement not in found:
                found.append(requirement)
    return found


def _routed_paths() -> dict[str, dict[str, Any]]:
    """Every route of every function's route table with its prose from :func:`_paths`; the
    table decides which paths and methods exist and what credentials each takes."""
    from videogen_dev.devserver import contracts

    prose = _paths()
    paths: dict[str, dict[str, Any]] = {}
    for name, contract in contracts().items():
        for route, methods in contract.all_routes():
            key = name + (route or "")
            operations = prose.pop(key, None)
            if operations is None or set(operations) != {m.lower() for m in methods}:
                raise ValueError(f"openapi: {key} serves {sorted(methods)}; describe each once")
            paths[key] = {
                method.lower(): _with_security(operations[method.lower()], modes)
                for method, modes in methods.items()
            }
    if prose:
        raise ValueError(f"openapi: described but not served: {sorted(prose)}")
    return {key: paths[key] for key in sorted(paths, key=list(_paths()).index)}


def _with_security(operation: dict[str, Any], modes: Iterable[str]) -> dict[str, Any]:
    """The operation with ``security`` in its usual place (before its inputs and answers)."""
    out: dict[str, Any] = {}
    for key, value in operation.items():
        if key in ("parameters", "requestBody", "responses") and "security" not in out:
            out["security"] = security_of(modes)
        out[key] = value
    return out


def _webhooks() -> dict[str, Any]:
    """What we POST to a job's ``webhook`` (OpenAPI 3.1 ``webhooks``)."""
    header = {"in": "header", "required": True, "schema": {"type": "string"}}
    return {
        "jobEvent": {
            "post": {
                "tags": ["webhooks"],
                "summary": "An event of one of your jobs, sent to its webhook",
                "description": "The body is the job as GET ?id= answers it when the delivery "
                "is sent (fresh links to its files). Answer 2xx within 10 s; anything else is "
                "retried with exponential backoff (the 1st retry after 5 s, each next one 4 "
                "times later, at most 6 h apart) for up to 12 tries or a day. Never sent to "
                "private, loopback or link-local addresses.",
                "parameters": [
                    {
                        "name": "webhook-id",
                        **header,
                        "description": "The delivery's id: the same on every retry of one event.",
                    },
                    {"name": "webhook-timestamp", **header, "description": "Unix seconds."},
                    {
                        "name": "webhook-signature",
                        **header,
                        "description": "`v1,<base64>`: "
                        "HMAC-SHA256 with your secret (Standard Webhooks).",
                    },
                    {
                        "name": "videogen-event",
                        **header,
                        "description": "`job.started`, "
                        "`job.progress`, `job.completed`, `job.failed` or `job.canceled`.",
                    },
                ],
                "requestBody": _body(_ref("JobWithEvents")),
                "responses": {"200": {"description": "Received (any 2xx)."}},
            }
        }
    }


def build() -> dict[str, Any]:
    """The OpenAPI 3.1 document as a dict."""
    components = _model_schemas()
    document = {
        "openapi": "3.1.0",
        "info": {
            "title": "videogen functions",
            "version": _version(),
            "description": "Five serverless functions over one Postgres. Success: "
            '`{"success": true, "data": …}`; error: `{"success": false, "error": {code, '
            "message, details?, hint?}}`. Lists carry `page`, `limit`, `total`, `total_pages`, "
            "`has_next`, `has_prev` and take `sort` and `order`. "
            "Every answer has an `x-request-id` header; writes are rate limited per user "
            "(429 with `Retry-After`).",
        },
        "servers": [{"url": "http://127.0.0.1:54321", "description": "videogen serve"}],
        "tags": [
            {"name": "jobs", "description": "Create, follow and cancel generation jobs."},
            {"name": "catalogue", "description": "Models, voices and quotes."},
            {"name": "projects", "description": "Projects and batches of jobs."},
            {"name": "prompts", "description": "Prompt enhancement."},
            {"name": "admin", "description": "Every job and worker, the prompt templates."},
            {"name": "credits", "description": "Balances, the ledger, grants, purchases."},
            {"name": "workers", "description": "GPU workers, providers and the scheduler."},
            {"name": "operations", "description": "Probes and metrics of the deployment."},
            {"name": "webhooks", "description": "Signed deliveries of your jobs' events."},
        ],
        "paths": {f"{BASE}/{name}": ops for name, ops in _routed_paths().items()},
        "webhooks": _webhooks(),
        "components": {"schemas": components, "securitySchemes": SECURITY_SCHEMES},
    }
    # A plain tree: no object shared between operations (YAML would write anchors).
    plain: dict[str, Any] = json.loads(json.dumps(document))
    return plain


def render() -> str:
    """The document as YAML text (stable order, so the file diffs cleanly)."""
    import yaml

    text: str = yaml.safe_dump(build(), sort_keys=False, allow_unicode=True, width=100)
    return text


def default_path() -> Path:
    """``openapi.yaml`` at the project root."""
    from videogen_dev.migrations import project_root

    return project_root() / "openapi.yaml"


def check(path: Path | None = None) -> bool:
    """True when the file at ``path`` says exactly what the code says."""
    path = path or default_path()
    return path.is_file() and path.read_text(encoding="utf-8") == render()


def write(path: Path | None = None) -> Path:
    """Write the document; returns where."""
    path = path or default_path()
    path.write_text(render(), encoding="utf-8")
    return path
