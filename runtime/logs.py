"""Structured logs: one JSON object per line, the form every long-running ModelLedger process writes.

A line holds the time (UTC, milliseconds), the level, the logger, the
message and the record's ``extra`` fields, so an operator can filter on a
job key, a transaction id or a step's seconds. Logs are read by people
other than the one who holds the stack's keys: no secret is ever logged,
and an ``extra`` field whose name says it holds one (a password, a secret,
a token, an authorization or a key's material) is written as ``"<redacted>"``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any

# Libraries that log every request at INFO: only their warnings are kept.
NOISY_LOGGERS = ("urllib3", "botocore", "boto3", "mlflow", "alembic", "s3transfer")
REDACTED = "<redacted>"
_SECRET_WORDS = ("password", "secret", "token", "authorization", "private_key")


def _names_a_secret(field: str) -> bool:
    lowered = field.lower()
    return any(word in lowered for word in _SECRET_WORDS)


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's extra fields."""

    _STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc.update(
            {
                k: REDACTED if _names_a_secret(k) else v
                for k, v in vars(record).items()
                if k not in self._STANDARD and not k.startswith("_")
            }
        )
        if record.exc_info:
            doc["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(doc, default=str)


def configure_logging() -> None:
    """Makes this process log JSON lines at INFO to standard output (its supervisor keeps them in its log file)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonLogFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
