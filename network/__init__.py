"""A native (no containers) Hyperledger Fabric network for ModelLedger.

The public entry point is :class:`modelledger.network.fabric.FabricNetwork`:
``up()``, ``down()``, ``status()``, ``clean()``. Everything it runs is
generated from one topology file (``topology.yaml``) into one runtime folder.
"""

from modelledger.network.errors import NetworkError, NodeFailedError
from modelledger.network.fabric import FabricNetwork
from modelledger.runtime.settings import NetworkSettings

__all__ = ["FabricNetwork", "NetworkError", "NetworkSettings", "NodeFailedError"]
