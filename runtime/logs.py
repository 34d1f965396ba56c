"""Structured logs: one JSON object per line, the form every long-running ModelLedger process writes.

A line holds the time (UTC, milliseconds), the level, the logger, the
message and the record's ``extra`` fields, so an operator can filter on a
job key, a transaction id or a step's seconds. Logs are read by people
other than the one who holds the stack's keys: no secret is ever logged,
and an ``extra`` field whose name says it holds one (a password, a secret,
a token, an authorization, a credential, a cookie or a key's material), at
any depth of nested mappings, is written as ``"<redacted>"``; so is the
password of any ``scheme://user:password@host`` URL in the message, the
fields or the error.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
from typing import Any

# Libraries that log every request at INFO: only their warnings are kept.
NOISY_LOGGERS = ("urllib3", "botocore", "boto3", "mlflow", "alembic", "s3transfer")
REDACTED = "<redacted>"
_SECRET_WORDS = ("password", "secret", "token", "auth", "credential", "cookie", "private_key", "api_key")
# The password of a URL's user information: ``scheme://user:password@host``.
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:)[^/\s@]+(?=@)")


def _names_a_secret(field: str) -> bool:
    lowered = field.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def _clean(value: Any) -> Any:
    """``value`` with secret-named fields of nested mappings, and URL passwords in strings, redacted."""
    if isinstance(value, dict):
        return {k: REDACTED if _names_a_secret(str(k)) else _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, str):
        return _URL_PASSWORD.sub(lambda m: m.group("head") + REDACTED, value)
    return value


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's extra fields."""

    _STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": _clean(record.getMessage()),
        }
        doc.update(
            {
                k: REDACTED if _names_a_secret(k) else _clean(v)
                for k, v in vars(record).items()
                if k not in self._STANDARD and not k.startswith("_")
            }
        )
        if record.exc_info:
            doc["error"] = _clean(self.formatException(record.exc_info).splitlines()[-1])
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
