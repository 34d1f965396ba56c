"""The webhook receiver: check a delivery, enqueue it durably, answer 202, all within milliseconds.

``POST /webhooks/mlflow`` answers:

- 202 ``accepted``: a ``model_version.created`` delivery, signed, fresh, new,
  for a version the registry has; its job is committed in the outbox before
  the answer is sent;
- 202 ``queued``: a signed, fresh ``model_version_alias.created`` delivery;
  the version is handed to the alias checks (in memory,
  :class:`~modelledger.mlops.bridge.alias_guard.AliasChecks`: removed if the
  ledger revoked it), never waiting for the ledger; ``deferred`` when too many
  are pending (the reconciler's scan checks it). Not stored: the reconciler's
  scan is what makes the removal durable;
- 202 ``ignored``: a signed, fresh tag event or alias deletion (nothing to do);
- 400 malformed or stale, 401 bad signature, 404/405 wrong path or method,
  409 replayed delivery id, 411 no length, 413 body too large, 422 a version
  the registry does not have (e.g. MLflow's test payload for ``example_model``).

If the registry cannot be asked (MLflow briefly down), the delivery is
accepted anyway: the worker re-reads the version before doing anything.
``GET /health`` answers 200 with the outbox counts (503 if an anchoring worker died).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from modelledger.mlops.bridge.outbox import Outbox, job_key
from modelledger.mlops.bridge.webhooks import ALIAS_EVENT, ANCHOR_EVENT, DeliveryRejectedError, check_delivery
from modelledger.runtime.settings import WEBHOOK_PATH

log = logging.getLogger("modelledger.bridge.receiver")

# (name, version) -> True if the registry has it, False if not, None if it cannot tell now.
VersionCheck = Callable[[str, str], bool | None]


@dataclass
class Answer:
    status: int
    body: dict[str, Any]


class Receiver:
    """The request logic, apart from HTTP plumbing (so it can be tested without sockets)."""

    def __init__(
        self,
        secret: str | Callable[[], str],
        outbox: Outbox,
        version_exists: VersionCheck,
        max_body: int,
        freshness: float,
        on_accept: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
        health: Callable[[], dict[str, Any]] = lambda: {"ok": True},
        on_alias: Callable[[str, str], bool] | None = None,
    ) -> None:
        self.secret = secret if callable(secret) else (lambda: secret)
        self.outbox = outbox
        self.version_exists = version_exists
        self.max_body = max_body
        self.freshness = freshness
        self.on_accept = on_accept
        self.clock = clock
        self.health = health
        self.on_alias = on_alias

    def too_large(self, length: int) -> bool:
        return length > self.max_body

    def handle(self, headers: Any, body: bytes) -> Answer:
        try:
            d = check_delivery(headers, body, self.secret(), self.clock(), self.freshness)
        except DeliveryRejectedError as exc:
            return Answer(exc.status, {"error": exc.reason})
        if d.event == ALIAS_EVENT and self.on_alias is not None:
            queued = self.on_alias(d.name, d.version)
            return Answer(202, {"status": "queued" if queued else "deferred", "version": job_key(d.name, d.version)})
        if d.event != ANCHOR_EVENT:
            return Answer(202, {"status": "ignored", "event": d.event})
        if self.outbox.delivery_seen(d.delivery_id):
            return Answer(409, {"error": "duplicate delivery id (replay or retry of an accepted delivery)"})
        exists = self.version_exists(d.name, d.version)
        if exists is None:  # accepted all the same (never lose a delivery); the worker asks again
            log.warning("cannot tell whether the version is in the registry", extra={"job": job_key(d.name, d.version)})
        if exists is False:
            return Answer(422, {"error": f"model version {d.name}/{d.version} is not in the registry"})
        if not self.outbox.accept_delivery(d.delivery_id, d.event, d.name, d.version):
            return Answer(409, {"error": "duplicate delivery id (replay or retry of an accepted delivery)"})
        self.on_accept()
        return Answer(202, {"status": "accepted", "job": job_key(d.name, d.version)})


def make_server(receiver: Receiver, host: str, port: int) -> ThreadingHTTPServer:
    """An HTTP server for ``receiver`` (serve it with ``serve_forever`` in a thread)."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "modelledger-bridge"
        sys_version = ""
        timeout = 10  # seconds a client may take to send its request

        def _send(self, answer: Answer) -> None:
            data = json.dumps(answer.body).encode()
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path != "/health":
                self._send(Answer(404, {"error": "not found"}))
                return
            state = receiver.health()
            self._send(Answer(200 if state.get("ok") else 503, {**state, "outbox": receiver.outbox.counts()}))

        def do_POST(self) -> None:
            t0 = time.perf_counter()
            answer = self._post()
            self._send(answer)
            log.info(
                "delivery",
                extra={
                    "status": answer.status,
                    "delivery_id": str(self.headers.get("X-MLflow-Delivery-Id", ""))[:128],
                    "outcome": answer.body.get("status") or answer.body.get("error"),
                    "ms": round((time.perf_counter() - t0) * 1000, 1),
                    **({"job": answer.body["job"]} if "job" in answer.body else {}),
                },
            )

        def _post(self) -> Answer:
            if self.path != WEBHOOK_PATH:
                return Answer(404, {"error": "not found"})
            if self.headers.get("Transfer-Encoding"):
                self.close_connection = True
                return Answer(411, {"error": "a Content-Length is required (no chunked bodies)"})
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                self.close_connection = True
                return Answer(411, {"error": "a Content-Length is required"})
            if length < 0 or receiver.too_large(length):
                self.close_connection = True  # the body is not read
                return Answer(413, {"error": f"body larger than {receiver.max_body} bytes"})
            body = self.rfile.read(length)
            if len(body) != length:
                return Answer(400, {"error": "body shorter than its Content-Length"})
            return receiver.handle(self.headers, body)

        def do_PUT(self) -> None:
            self._send(Answer(405, {"error": "method not allowed"}))

        do_DELETE = do_PATCH = do_PUT

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def serve_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    return thread
