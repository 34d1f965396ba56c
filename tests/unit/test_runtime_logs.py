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
