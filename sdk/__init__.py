"""ModelLedger's Python client for Hyperledger Fabric's Gateway API.

Public surface (the implementation lives in the sub-packages):

- :func:`connect`, :class:`Gateway`, :class:`Network`, :class:`Contract`:
  Gateway → Network → Contract, with ``evaluate``, ``submit`` and
  ``submit_async`` over the explicit proposal → endorse → submit → commit steps;
- :class:`Identity`, :func:`load_msp`, :func:`private_key_signer`: who signs,
  with a plain callable as signer;
- :class:`ConnectionProfile`: endpoints, TLS and identities from the
  network's generated connection profile;
- the errors of each step: :class:`EndorseError`, :class:`SubmitError`,
  :class:`CommitStatusError`, :class:`CommitError`, :class:`EvaluateError`;
- :mod:`modelledger.sdk.registry`: the typed registry client;
- :mod:`modelledger.sdk.ledger`: blocks, decoding and hash-chain verification.
"""

from modelledger.sdk.gateway.errors import (
    CommitError,
    CommitStatusError,
    EndorseError,
    ErrorDetail,
    EvaluateError,
    GatewayError,
    SubmitError,
)
from modelledger.sdk.gateway.gateway import Contract, Gateway, Network, connect
from modelledger.sdk.gateway.identity import Identity, load_identity, load_msp, private_key_signer
from modelledger.sdk.gateway.transaction import CallOptions
from modelledger.sdk.profile import ConnectionProfile

__all__ = [
    "CallOptions",
    "CommitError",
    "CommitStatusError",
    "ConnectionProfile",
    "Contract",
    "EndorseError",
    "ErrorDetail",
    "EvaluateError",
    "Gateway",
    "GatewayError",
    "Identity",
    "Network",
    "SubmitError",
    "connect",
    "load_identity",
    "load_msp",
    "private_key_signer",
]
