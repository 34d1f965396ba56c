"""The CLI's way to the registry (``mlops.cli.connection``) routed to a fake client class, for unit tests."""

from __future__ import annotations

import contextlib
from types import SimpleNamespace
from typing import Any

import pytest

from modelledger.mlops.cli import connection


class _FakeGateway(contextlib.AbstractContextManager):
    """A gateway whose network is the caller, ``role@org``: the fake client receives it as its network."""

    def __init__(self, who: str) -> None:
        self.who = who

    def __exit__(self, *exc: object) -> None:
        return None

    def network(self, channel: str) -> str:
        return self.who


def route_registry_to(monkeypatch: pytest.MonkeyPatch, client_class: type[Any]) -> None:
    """Makes every CLI registry call build ``client_class(network, chaincode)``, its network ``role@org``."""
    profile = SimpleNamespace(channel="ledger", chaincode="registry")
    monkeypatch.setattr(connection, "open_gateway", lambda org, role, path: (profile, _FakeGateway(f"{role}@{org}")))
    monkeypatch.setattr(connection, "RegistryClient", client_class)
