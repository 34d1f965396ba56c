"""Webhook delivery checks: exact reasons, and byte-for-byte agreement with MLflow's own signer."""

from __future__ import annotations

import json

import pytest
from mlflow.webhooks.delivery import _generate_hmac_signature
from mlflow.webhooks.types import ModelVersionCreatedPayload

from modelledger.mlops.bridge.webhooks import DeliveryRejectedError, check_delivery, sign

SECRET = "s3cret-for-tests"
NOW = 1_800_000_000


def delivery(data: dict | None = None, entity: str = "model_version", action: str = "created", ts: int = NOW):
    body = json.dumps(
        {"entity": entity, "action": action, "timestamp": "t", "data": data or {"name": "m", "version": "3"}}
    )
    headers = {
        "X-MLflow-Delivery-Id": "0b7c1d3e-aaaa-bbbb-cccc-000000000001",
        "X-MLflow-Timestamp": str(ts),
    }
    headers["X-MLflow-Signature"] = sign(SECRET, headers["X-MLflow-Delivery-Id"], str(ts), body.encode())
    return headers, body.encode()


def test_our_signature_is_mlflows() -> None:
    body = json.dumps({"data": ModelVersionCreatedPayload.example()})
    assert sign(SECRET, "id-1", "123", body.encode()) == _generate_hmac_signature(SECRET, "id-1", "123", body)


def test_a_signed_fresh_delivery_is_accepted_as_a_hint() -> None:
    headers, body = delivery()
    d = check_delivery(headers, body, SECRET, NOW + 5, 300)
    assert (d.event, d.name, d.version, d.timestamp) == ("model_version.created", "m", "3", NOW)


@pytest.mark.parametrize(
    ("mutate", "status", "reason"),
    [
        (lambda h, b: (h, b + b" "), 401, "signature does not match"),
        (lambda h, b: ({**h, "X-MLflow-Signature": "v1,AAAA"}, b), 401, "signature does not match"),
        (
            lambda h, b: ({k: v for k, v in h.items() if k != "X-MLflow-Signature"}, b),
            401,
            "missing header X-MLflow-Signature",
        ),
        (
            lambda h, b: ({k: v for k, v in h.items() if k != "X-MLflow-Timestamp"}, b),
            401,
            "missing header X-MLflow-Timestamp",
        ),
        (lambda h, b: ({**h, "X-MLflow-Delivery-Id": "other"}, b), 401, "signature does not match"),
    ],
)
def test_forged_or_incomplete_deliveries_are_refused(mutate, status: int, reason: str) -> None:
    headers, body = mutate(*delivery())
    with pytest.raises(DeliveryRejectedError) as info:
        check_delivery(headers, body, SECRET, NOW, 300)
    assert (info.value.status, info.value.reason) == (status, reason)


def test_a_wrong_secret_is_refused() -> None:
    headers, body = delivery()
    with pytest.raises(DeliveryRejectedError, match="signature does not match"):
        check_delivery(headers, body, "another secret", NOW, 300)


@pytest.mark.parametrize("offset", [-301, 301, -10_000])
def test_stale_or_future_deliveries_are_refused(offset: int) -> None:
    headers, body = delivery(ts=NOW + offset)
    with pytest.raises(DeliveryRejectedError, match="stale delivery") as info:
        check_delivery(headers, body, SECRET, NOW, 300)
    assert info.value.status == 400


def _signed(body: bytes) -> tuple[dict[str, str], bytes]:
    headers = {"X-MLflow-Delivery-Id": "id-2", "X-MLflow-Timestamp": str(NOW)}
    headers["X-MLflow-Signature"] = sign(SECRET, "id-2", str(NOW), body)
    return headers, body


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "body is not JSON"),
        (b"\xff\xfe", "body is not JSON"),
        (b"[]", "no data object"),
        (b'{"entity": "model_version", "action": "created", "data": []}', "no data object"),
        (b'{"entity": "prompt", "action": "created", "data": {}}', "unexpected event 'prompt.created'"),
        (b'{"entity": "model_version", "action": "created", "data": {"version": "1"}}', "data.name is missing"),
        (b'{"entity": "model_version", "action": "created", "data": {"name": "m", "version": "01"}}', "data.version"),
        (b'{"entity": "model_version", "action": "created", "data": {"name": "m", "version": 1}}', "data.version"),
        (b'{"entity": "model_version", "action": "created", "data": {"name": "a\\nb", "version": "1"}}', "data.name"),
        (b'{"entity": "model_version", "action": "created", "data": {"name": "", "version": "1"}}', "data.name"),
        (b'{"entity": "model_version", "action": "created", "data": {"name": "a/b", "version": "1"}}', "data.name"),
        (
            b'{"entity": "model_version", "action": "created", "data": {"name": "m", "version": "10000000000"}}',
            "data.version",
        ),
    ],
)
def test_signed_but_malformed_deliveries_are_refused_with_400(body: bytes, reason: str) -> None:
    with pytest.raises(DeliveryRejectedError) as info:
        check_delivery(*_signed(body), SECRET, NOW, 300)
    assert info.value.status == 400 and reason in info.value.reason


def test_tag_and_alias_events_pass_the_checks() -> None:
    headers, body = delivery({"name": "m", "version": "2", "key": "k", "value": "v"}, "model_version_tag", "set")
    assert check_delivery(headers, body, SECRET, NOW, 300).event == "model_version_tag.set"
