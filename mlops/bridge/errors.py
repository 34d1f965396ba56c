"""The bridge's errors: it cannot start or be set up; an anchoring job cannot succeed, or not yet."""

from __future__ import annotations


class BridgeError(Exception):
    """The bridge cannot start or be set up; the message says what is missing."""


class PermanentError(Exception):
    """The job cannot succeed by retrying; the message is the reason recorded and tagged."""


class NotAModelError(PermanentError):
    """The registry version is a prompt's: recorded, but no ledger tag is written on it."""


class NotReadyError(Exception):
    """The version is still being created in MLflow; try again shortly."""
