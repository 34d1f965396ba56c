"""The bridge's errors: it cannot start or be set up; an anchoring job cannot succeed, or not yet; which failures
may pass by trying again (:func:`is_transient`)."""

from __future__ import annotations


class BridgeError(Exception):
    """The bridge cannot start or be set up; the message says what is missing."""


class PermanentError(Exception):
    """The job cannot succeed by retrying; the message is the reason recorded and tagged."""


class NotAModelError(PermanentError):
    """The registry version is a prompt's: recorded, but no ledger tag is written on it."""


class NotReadyError(Exception):
    """The version is still being created in MLflow; try again shortly."""


# gRPC status codes that say "try again": the peer or the Gateway is unreachable, busy or too slow.
_TRANSIENT_GRPC = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED"})


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` may go away by trying again (a ledger follower's event: retried, then dead-lettered).

    Transient: connection errors and timeouts (``OSError``), a gRPC call that
    ended UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED or ABORTED, an
    HTTP answer 5xx or 429 (MLflow's errors carry theirs). Permanent: a
    ``ValueError`` (a payload or record that cannot be parsed), a chaincode
    refusal or any other gRPC code, any other HTTP 4xx (403 ...). Anything
    else is taken as transient: it is retried a bounded number of times.
    """
    if isinstance(exc, OSError):  # ConnectionError, TimeoutError, requests' errors
        return True
    if isinstance(exc, ValueError):  # json.JSONDecodeError, a record the SDK cannot read
        return False
    code = getattr(exc, "code", None)
    name = getattr(code() if callable(code) else code, "name", None)
    if isinstance(name, str):  # a gRPC status (the SDK's TransactionError, grpc.RpcError)
        return name in _TRANSIENT_GRPC
    status = _http_status(exc)
    if status is not None:
        return status >= 500 or status == 429
    from modelledger.sdk.gateway.errors import GatewayError  # here: `bridge status` imports this module, not gRPC

    return not isinstance(exc, GatewayError)  # a chaincode refusal, an identity or a commit error: permanent


def _http_status(exc: BaseException) -> int | None:
    """The HTTP status an error carries: MLflow's (``get_http_status_code``) or an HTTP error's (``code`` ...)."""
    getter = getattr(exc, "get_http_status_code", None)
    if callable(getter):
        try:
            return int(getter())
        except (TypeError, ValueError):
            return None
    for attr in ("status_code", "status", "code"):
        value = getattr(exc, attr, None)
        if isinstance(value, int) and 100 <= value <= 599:
            return value
    return None
