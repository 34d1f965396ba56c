"""Structured logs: one JSON object per line with the record's extra fields, and no secret in them."""

from __future__ import annotations

import json
import logging

from modelledger.runtime.logs import REDACTED, JsonLogFormatter


def _line(msg: str, **extra: object) -> dict[str, object]:
    record = logging.LogRecord("modelledger.bridge", logging.WARNING, __file__, 1, msg, None, None)
    for k, v in extra.items():
        setattr(record, k, v)
    return json.loads(JsonLogFormatter().format(record))


def test_a_line_holds_the_time_level_logger_message_and_extra_fields() -> None:
    doc = _line("retrying", job="fraud/1", attempt=2, steps={"fetch": 0.1})
    assert doc["level"] == "warning" and doc["logger"] == "modelledger.bridge" and doc["msg"] == "retrying"
    assert doc["job"] == "fraud/1" and doc["attempt"] == 2 and doc["steps"] == {"fetch": 0.1}
    assert doc["time"].endswith("+00:00")


def test_a_field_named_for_a_secret_is_never_written() -> None:
    doc = _line("x", webhook_secret="s3cr3t", password="pw", Authorization="Basic abc", job="fraud/1")
    assert doc["webhook_secret"] == doc["password"] == doc["Authorization"] == REDACTED
    assert "s3cr3t" not in json.dumps(doc) and doc["job"] == "fraud/1"


def test_nested_secret_fields_and_url_passwords_are_never_written() -> None:
    doc = _line(
        "cannot reach postgresql://mlflow:hunter2@db:5432/mlflow",
        request={"headers": {"Authorization": "Basic abc", "Accept": "json"}, "api_key": "k-1"},
        sources=["https://u:pw9@host/x", "s3://bucket/key"],
        credentials="c-1",
    )
    text = json.dumps(doc)
    for secret in ("hunter2", "Basic abc", "k-1", "pw9", "c-1"):
        assert secret not in text
    assert doc["msg"] == f"cannot reach postgresql://mlflow:{REDACTED}@db:5432/mlflow"
    assert doc["request"] == {"headers": {"Authorization": REDACTED, "Accept": "json"}, "api_key": REDACTED}
    assert doc["sources"] == [f"https://u:{REDACTED}@host/x", "s3://bucket/key"]


def test_an_errors_url_password_is_never_written() -> None:
    try:
        raise ConnectionError("refused: postgresql://mlflow:hunter2@db/mlflow")
    except ConnectionError:
        import sys

        record = logging.LogRecord("modelledger.bridge", logging.ERROR, __file__, 1, "x", None, sys.exc_info())
    doc = json.loads(JsonLogFormatter().format(record))
    assert doc["error"] == f"ConnectionError: refused: postgresql://mlflow:{REDACTED}@db/mlflow"
