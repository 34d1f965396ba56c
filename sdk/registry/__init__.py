"""The typed client of the registry chaincode."""

from modelledger.sdk.registry.client import (
    Conflict,
    Invalid,
    NotAuthorized,
    NotFound,
    RegistryClient,
    RegistryError,
)

__all__ = ["Conflict", "Invalid", "NotAuthorized", "NotFound", "RegistryClient", "RegistryError"]
