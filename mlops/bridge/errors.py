"""The bridge's own error: it cannot start or be set up."""

from __future__ import annotations


class BridgeError(Exception):
    """The bridge cannot start or be set up; the message says what is missing."""
