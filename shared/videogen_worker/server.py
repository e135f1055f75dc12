"""The worker's HTTP face, on Flask: ``GET /health``, ``POST /jobs`` (a signed push) and
``POST /jobs/<id>/cancel`` (signed). Every answer is JSON; the work is the worker's."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from uuid import UUID

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from videogen_worker import __version__

if TYPE_CHECKING:
    from videogen_worker.worker import ReferenceWorker

log = logging.getLogger(__name__)


def create_app(worker: ReferenceWorker) -> Flask:
    """The Flask app serving one worker."""
    app = Flask("videogen_worker")

    def answer(status: int, body: dict[str, Any]) -> tuple[Response, int]:
        return jsonify(body), status

    def headers() -> dict[str, str]:
        return {k.lower(): v for k, v in request.headers.items()}

    @app.get("/")
    @app.get("/health")
    def health() -> tuple[Response, int]:
        status, body = worker.health()
        return answer(status, body)

    @app.post("/jobs")
    def push() -> tuple[Response, int]:
        return answer(*worker.handle_push(headers(), request.get_data()))

    @app.post("/jobs/<uuid:job_id>/cancel")
    def cancel(job_id: UUID) -> tuple[Response, int]:
        return answer(*worker.handle_cancel(str(job_id), headers(), request.get_data()))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        code = (exc.name or "error").upper().replace(" ", "_")
        return answer(exc.code or 500, {"error": {"code": code, "message": request.path}})

    @app.after_request
    def server_header(response: Response) -> Response:
        response.headers["Server"] = f"videogen-worker/{__version__}"
        return response

    return app


class _QuietHandler(WSGIRequestHandler):
    """Access lines go to the debug log, not stderr."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug("%s %s %s", self.address_string(), self.requestline, code)


def serve(worker: ReferenceWorker, host: str, port: int) -> BaseWSGIServer:
    """A threaded server for the worker, bound (port 0: any free one), not yet serving."""
    return make_server(host, port, create_app(worker), threaded=True, request_handler=_QuietHandler)
