"""Modules that must stay cheap to import do not load the heavy parts they do not use."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _loaded(module: str, candidates: list[str]) -> list[str]:
    code = f"import sys, {module}; print(' '.join(m for m in {candidates!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return out.split()


@pytest.mark.parametrize(
    ("module", "heavy"),
    [
        # `bridge up/down/status` manage the process: no worker, no anchoring, no gRPC.
        (
            "modelledger.mlops.servers.bridge_server",
            ["modelledger.mlops.bridge.anchor", "modelledger.mlops.bridge.service", "grpc"],
        ),
        # The tracking server loads its authorization rules in every worker.
        ("modelledger.mlops.servers.tracking_auth", ["modelledger.mlops.bridge.anchor", "boto3", "grpc"]),
        # `modelledger store digest` and friends: the signature code only for the ledger checks.
        ("modelledger.mlops.cli.store", ["modelledger.mlops.store.signing", "modelledger.mlops.store.verification"]),
    ],
)
def test_a_cheap_module_loads_none_of_the_heavy_ones(module: str, heavy: list[str]) -> None:
    assert _loaded(module, heavy) == []
