"""Typed settings for the network, read from environment variables.

| variable                  | default                          |
|---------------------------|----------------------------------|
| MODELLEDGER_STATE_DIR     | <repo>/.state                    |
| MODELLEDGER_TOOLS_DIR     | <repo>/.tools                    |
| MODELLEDGER_TOPOLOGY      | network/topology.yaml            |
| MODELLEDGER_PORT_BASE     | the topology's own port_base     |
| MODELLEDGER_HEALTH_TIMEOUT| 60 (seconds)                     |
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from modelledger.network.environment import env_number, env_optional_int, env_path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
DEFAULT_TOPOLOGY = PACKAGE_DIR / "topology.yaml"


@dataclass(frozen=True)
class NetworkSettings:
    """Where the network lives and how it is laid out.

    Attributes:
        state_dir: Root of all runtime state; the network uses ``state_dir/network``.
        tools_dir: Where ``make tools`` installed the binaries (``tools_dir/bin``).
        topology_path: The topology file.
        port_base: Shifts every topology port by ``port_base - topology.port_base``.
        health_timeout: Seconds to wait for every node to report healthy.
    """

    state_dir: Path = field(default_factory=lambda: REPO_ROOT / ".state")
    tools_dir: Path = field(default_factory=lambda: REPO_ROOT / ".tools")
    topology_path: Path = DEFAULT_TOPOLOGY
    port_base: int | None = None
    health_timeout: float = 60.0

    @classmethod
    def from_env(cls) -> NetworkSettings:
        """Reads the settings from ``MODELLEDGER_*`` environment variables."""
        return cls(
            state_dir=env_path("MODELLEDGER_STATE_DIR", REPO_ROOT / ".state"),
            tools_dir=env_path("MODELLEDGER_TOOLS_DIR", REPO_ROOT / ".tools"),
            topology_path=env_path("MODELLEDGER_TOPOLOGY", DEFAULT_TOPOLOGY),
            port_base=env_optional_int("MODELLEDGER_PORT_BASE"),
            health_timeout=env_number("MODELLEDGER_HEALTH_TIMEOUT", 60.0, float),
        )

    @property
    def network_dir(self) -> Path:
        """The folder holding every generated file of the network."""
        return self.state_dir / "network"
