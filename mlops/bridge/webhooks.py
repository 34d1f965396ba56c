"""Checking MLflow webhook deliveries: signature, freshness, size and shape.

MLflow signs each delivery with the webhook's secret: header
``X-MLflow-Signature: v1,<base64 HMAC-SHA256(secret, "<delivery id>.<timestamp>.<raw body>")>``,
with ``X-MLflow-Delivery-Id`` and ``X-MLflow-Timestamp`` (unix seconds). Its
retries resend the same three headers. :func:`check_delivery` accepts a
delivery only if the signature matches the raw bytes (compared in constant
time), the timestamp is within the freshness window, and the body is a JSON
object of a known event about a model name and version that the ledger
accepts (:mod:`modelledger.sdk.registry.names`). Replays are caught by the
outbox (delivery ids are stored with the job they create).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any

from modelledger.sdk.registry.names import InvalidNameError, check_model_name, check_model_version

DELIVERY_ID_HEADER = "X-MLflow-Delivery-Id"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
SIGNATURE_HEADER = "X-MLflow-Signature"
SIGNATURE_VERSION = "v1"

# The events `bridge install` subscribes to. model_version.created starts anchoring; model_version_alias.created
# has the version checked (a revoked version keeps no alias); the others are accepted and ignored.
EVENTS = (
    "model_version.created",
    "model_version_tag.set",
    "model_version_tag.deleted",
    "model_version_alias.created",
    "model_version_alias.deleted",
)
ANCHOR_EVENT = "model_version.created"
ALIAS_EVENT = "model_version_alias.created"

_DELIVERY_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class DeliveryRejectedError(Exception):
    """A delivery that must not be acted on; ``status`` is the HTTP answer, the message the reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Delivery:
    """A delivery that passed every check. ``name``/``version`` are hints: re-read them from the registry."""

    delivery_id: str
    timestamp: int
    event: str
    name: str
    version: str
    data: dict[str, Any]


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """The ``X-MLflow-Signature`` value MLflow sends for these bytes."""
    mac = hmac.new(secret.encode(), f"{delivery_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(mac).decode()}"


def _header(headers: Any, name: str) -> str:
    value = headers.get(name)
    if value is None:
        raise DeliveryRejectedError(401, f"missing header {name}")
    return str(value).strip()


def check_delivery(headers: Any, body: bytes, secret: str, now: float, freshness: float) -> Delivery:
    """Checks one delivery; returns it, or raises with the status to answer.

    Args:
        headers: The request headers (any mapping with ``get``; names as MLflow sends them).
        body: The raw request body, exactly as received.
        secret: The webhook's secret.
        now: The current time, unix seconds.
        freshness: How far (seconds) the delivery's timestamp may be from ``now``, either way.

    Raises:
        DeliveryRejectedError: 401 for a missing or wrong signature, 400 for a stale or
            malformed delivery (MLflow does not retry a 400).
    """
    delivery_id = _header(headers, DELIVERY_ID_HEADER)
    timestamp = _header(headers, TIMESTAMP_HEADER)
    given = _header(headers, SIGNATURE_HEADER)
    # The signature first: nothing else about an unauthenticated request is looked at.
    expected = sign(secret, delivery_id, timestamp, body)
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise DeliveryRejectedError(401, "signature does not match")
    if not _DELIVERY_ID.fullmatch(delivery_id):
        raise DeliveryRejectedError(400, "malformed delivery id")
    try:
        ts = int(timestamp)
    except ValueError as exc:
        raise DeliveryRejectedError(400, "timestamp is not unix seconds") from exc
    if abs(now - ts) > freshness:
        raise DeliveryRejectedError(400, f"stale delivery: timestamp {ts} is {now - ts:+.0f} s from now")
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise DeliveryRejectedError(400, "body is not JSON") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), dict):
        raise DeliveryRejectedError(400, "body is not an MLflow webhook payload (no data object)")
    event = f"{doc.get('entity')}.{doc.get('action')}"
    if event not in EVENTS:
        raise DeliveryRejectedError(400, f"unexpected event {event!r}")
    data = doc["data"]
    name, version = data.get("name"), data.get("version")
    if not isinstance(name, str):
        raise DeliveryRejectedError(400, "data.name is missing or not a model name")
    if not isinstance(version, str):
        raise DeliveryRejectedError(400, "data.version is missing or not a version number")
    try:
        check_model_name(name, "data.name")
        check_model_version(version, "data.version")
    except InvalidNameError as exc:
        # Refused here, before anything is enqueued, downloaded or signed: the ledger would refuse it last.
        raise DeliveryRejectedError(400, f"{exc} (the ledger's rule: this version cannot be anchored)") from exc
    return Delivery(delivery_id, ts, event, name, version, data)
