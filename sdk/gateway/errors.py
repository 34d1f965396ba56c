"""Errors of the Gateway client: one type per step of a transaction.

Like Fabric's own Gateway clients, a failed gRPC call raises the error of its
step (:class:`EndorseError`, :class:`SubmitError`, :class:`CommitStatusError`,
or :class:`EvaluateError`), carrying the transaction id, the gRPC status code
and the per-peer details the Gateway attached (address, MSP id, message). A
transaction that was ordered but not committed as VALID raises
:class:`CommitError` with its validation code.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from fabric_protos.gateway import gateway_pb2
from fabric_protos.peer import transaction_pb2
from google.rpc import status_pb2


class GatewayError(Exception):
    """Base class of every error raised by the Gateway client."""


class IdentityError(GatewayError):
    """An identity or signing key could not be loaded or used."""


class ConnectionSettingsError(GatewayError):
    """The connection profile is missing, malformed or names unknown parts."""


@dataclass(frozen=True)
class ErrorDetail:
    """What one peer or orderer said about a failed request."""

    address: str
    msp_id: str
    message: str


class TransactionError(GatewayError):
    """A gRPC call for a transaction failed.

    Attributes:
        transaction_id: The transaction's id.
        code: The gRPC status code.
        status_message: The gRPC status message.
        details: Per-node details from the Gateway.
    """

    step = "transaction"

    def __init__(
        self,
        transaction_id: str,
        code: grpc.StatusCode,
        status_message: str,
        details: tuple[ErrorDetail, ...] = (),
    ) -> None:
        self.transaction_id = transaction_id
        self.code = code
        self.status_message = status_message
        self.details = details
        text = f"{self.step} error for transaction {transaction_id}: {code.name}: {status_message}"
        for d in details:
            text += f"\n  - {d.address} ({d.msp_id}): {d.message}"
        super().__init__(text)

    @classmethod
    def from_rpc(cls, transaction_id: str, error: grpc.RpcError) -> TransactionError:
        """Builds the error from a failed gRPC call, decoding the Gateway's error details."""
        code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
        message = error.details() if hasattr(error, "details") else str(error)
        return cls(transaction_id, code, message or "", rpc_error_details(error))


class EndorseError(TransactionError):
    """The proposal could not be endorsed (e.g. the chaincode refused it)."""

    step = "endorse"


class SubmitError(TransactionError):
    """The endorsed transaction could not be sent to the orderer."""

    step = "submit"


class CommitStatusError(TransactionError):
    """The commit status of a submitted transaction could not be obtained."""

    step = "commit status"


class EvaluateError(TransactionError):
    """A query (evaluate) failed."""

    step = "evaluate"


class CommitError(GatewayError):
    """A transaction was ordered but committed as invalid.

    Attributes:
        transaction_id: The transaction's id.
        code: The validation code number.
        code_name: Its name, e.g. ``ENDORSEMENT_POLICY_FAILURE`` or ``MVCC_READ_CONFLICT``.
        block_number: The block that holds the invalid transaction.
    """

    def __init__(self, transaction_id: str, code: int, block_number: int) -> None:
        self.transaction_id = transaction_id
        self.code = code
        self.code_name = validation_code_name(code)
        self.block_number = block_number
        super().__init__(
            f"transaction {transaction_id} failed to commit with status code {code} ({self.code_name}) "
            f"in block {block_number}"
        )


def validation_code_name(code: int) -> str:
    """The name of a transaction validation code, e.g. ``VALID``."""
    try:
        return transaction_pb2.TxValidationCode.Name(code)
    except ValueError:
        return f"UNKNOWN_{code}"


def rpc_error_details(error: grpc.RpcError) -> tuple[ErrorDetail, ...]:
    """Decodes ``gateway.ErrorDetail`` entries from a gRPC error's rich status, if any."""
    trailers = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    for key, value in trailers or ():
        if key != "grpc-status-details-bin":
            continue
        status = status_pb2.Status()
        try:
            status.ParseFromString(value)
        except Exception:
            return ()
        details = []
        for any_msg in status.details:
            detail = gateway_pb2.ErrorDetail()
            if any_msg.Is(gateway_pb2.ErrorDetail.DESCRIPTOR) and any_msg.Unpack(detail):
                details.append(ErrorDetail(detail.address, detail.msp_id, detail.message))
        return tuple(details)
    return ()
