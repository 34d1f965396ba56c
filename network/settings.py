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

import os
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
DEFAULT_TOPOLOGY = PACKAGE_DIR / "topology.yaml"


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser().resolve() if value else default


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {value!r}") from exc


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return float(value)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {value!r}") from exc


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
            state_dir=_env_path("MODELLEDGER_STATE_DIR", REPO_ROOT / ".state"),
            tools_dir=_env_path("MODELLEDGER_TOOLS_DIR", REPO_ROOT / ".tools"),
            topology_path=_env_path("MODELLEDGER_TOPOLOGY", DEFAULT_TOPOLOGY),
            port_base=_env_int("MODELLEDGER_PORT_BASE"),
            health_timeout=_env_float("MODELLEDGER_HEALTH_TIMEOUT", 60.0),
        )

    @property
    def network_dir(self) -> Path:
        """The folder holding every generated file of the network."""
        return self.state_dir / "network"
