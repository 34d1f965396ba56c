"""Fixtures that start real parts. Nothing here is faked.

The ``network`` fixture brings up a complete Fabric network (3 CAs, 3 Raft
orderers, 2 peers) in a temporary folder on free ports, once per session, and
wipes it afterwards. The ``s3_server`` fixture does the same for MinIO and the
anchored bucket. Missing tools are a failure with instructions, never a skip.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelledger.mlops.servers.minio import S3Server
from modelledger.network import FabricNetwork, NetworkSettings
from modelledger.network.binaries import FabricBinaries
from modelledger.network.errors import ToolsMissingError
from modelledger.network.fabric import free_port_base
from modelledger.runtime.processes import first_busy_port
from modelledger.runtime.settings import S3Settings


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


def free_port_pair(low: int = 10000, high: int = 31000) -> int:
    """A port p with p and p + 1 free now, below Linux's ephemeral range."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(low, high)
        if first_busy_port("127.0.0.1", [port, port + 1]) is None:
            return port
    raise RuntimeError(f"no two free adjacent ports found between {low} and {high}")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A running MinIO with the anchored bucket, in a temporary folder on a free port."""
    settings = S3Settings(
        state_dir=tmp_path_factory.mktemp("s3state"),
        tools_dir=S3Settings.from_env().tools_dir,
        port=free_port_pair(),
        retention_days=1,  # short, explicitly: the default is 10 years
        health_timeout=60,
    )
    if not os.access(settings.minio_binary, os.X_OK):
        pytest.fail(
            f"integration tests need the MinIO server: {settings.minio_binary} is missing; run `make tools`",
            pytrace=False,
        )
    srv = S3Server(settings)
    try:
        srv.up()
    except Exception:
        srv.down()
        raise
    yield srv
    srv.clean()
