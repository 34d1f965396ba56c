"""Fixtures that start real parts. Nothing here is faked.

The ``network`` fixture brings up a complete Fabric network (3 CAs, 3 Raft
orderers, 2 peers) in a temporary folder on free ports, once per session, and
wipes it afterwards. Missing tools are a failure with instructions, never a skip.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelledger.network import FabricNetwork, NetworkSettings
from modelledger.network.binaries import FabricBinaries
from modelledger.network.errors import ToolsMissingError
from modelledger.network.processes import first_busy_port
from modelledger.network.settings import DEFAULT_TOPOLOGY
from modelledger.network.topology import load_topology


def free_port_base(topology: Path = DEFAULT_TOPOLOGY) -> int:
    """A port base at which every port of the topology is free now."""
    rng = random.Random()
    for _ in range(200):
        # Below Linux's ephemeral range (32768+), so outgoing connections never take our ports.
        base = rng.randrange(10000, 31000, 100)
        topo = load_topology(topology, base)
        if first_busy_port("127.0.0.1", topo.all_ports()) is None:
            return base
    raise RuntimeError("no free port range found for a test network")


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
