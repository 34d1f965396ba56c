"""Fixtures that start real parts. Nothing here is faked.

The ``network`` fixture brings up a complete Fabric network (3 CAs, 3 Raft
orderers, 2 peers) in a temporary folder on free ports, once per session, and
wipes it afterwards. Missing tools are a failure with instructions, never a skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from modelledger.network import FabricNetwork, NetworkSettings
from modelledger.network.binaries import FabricBinaries
from modelledger.network.errors import ToolsMissingError
from modelledger.network.stack import free_port_base


@pytest.fixture(scope="session")
def tools_dir() -> Path:
    """The installed tools; fails (does not skip) if `make tools` has not run."""
    path = NetworkSettings.from_env().tools_dir
    try:
        FabricBinaries.locate(path)
    except ToolsMissingError as exc:
        pytest.fail(f"integration tests need the Fabric tools: {exc}", pytrace=False)
    return path


@pytest.fixture(scope="session")
def network(tmp_path_factory: pytest.TempPathFactory, tools_dir: Path) -> Iterator[FabricNetwork]:
    """A running network in a temporary folder, on free ports."""
    settings = NetworkSettings(
        state_dir=tmp_path_factory.mktemp("state"),
        tools_dir=tools_dir,
        port_base=free_port_base(),
        health_timeout=90,
    )
    net = FabricNetwork(settings)
    try:
        net.up()
    except Exception:
        net.down()
        raise
    yield net
    net.clean()
