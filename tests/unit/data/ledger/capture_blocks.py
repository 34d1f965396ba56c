"""Regenerates the block files next to this script from a real network (run by hand, not by pytest).

    MODELLEDGER_TOOLS_DIR=... .venv/bin/python tests/unit/data/ledger/capture_blocks.py

It brings up a throw-away network (3 Raft orderers, Org1 and Org2) in a
temporary folder, changes the channel configuration once (a config block
signed by the orderer under the genesis configuration), deploys the registry
chaincode, commits a valid and an invalid (one organisation's endorsement
only) transaction, and copies each organisation's peer's block file here:
``org1/blockfile_000000`` and ``org2/blockfile_000000``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import tempfile
from pathlib import Path

from modelledger.network import FabricNetwork, NetworkSettings
from modelledger.network.channel import update_config
from modelledger.network.fabric import free_port_base
from modelledger.sdk import CommitError, ConnectionProfile
from modelledger.sdk.registry import RegistryClient

HERE = Path(__file__).resolve().parent


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="modelledger-capture-") as tmp:
        settings = NetworkSettings(
            state_dir=Path(tmp), tools_dir=NetworkSettings.from_env().tools_dir, port_base=free_port_base()
        )
        net = FabricNetwork(settings)
        try:
            net.up()
            topo = net.topology

            def batch_timeout(config: dict) -> None:
                config["channel_group"]["groups"]["Orderer"]["values"]["BatchTimeout"]["value"]["timeout"] = "200ms"

            update_config(topo, net.layout, net.bins, batch_timeout, signers=[topo.org("OrdererOrg")])
            net.chaincode.deploy()
            profile = ConnectionProfile.load(net.layout.connection_profile)
            with profile.gateway("Org1MSP", "registrar") as gw:
                registry = RegistryClient(gw.network(profile.channel), profile.chaincode)
                digest = hashlib.sha256(b"fixture").hexdigest()
                registry.register_dataset("fixture", digest, "s3://fixture/data")
                other = hashlib.sha256(b"one org only").hexdigest()
                body = json.dumps({"name": "one-org", "schemaSummary": "", "sha256": other, "source": "s3://x"})
                # Committed as ENDORSEMENT_POLICY_FAILURE: a block with an invalid transaction.
                with contextlib.suppress(CommitError):
                    registry.contract.submit("RegisterDataset", [body], endorsing_organizations=["Org1MSP"])
            net.wait_heights_converged(timeout=60)
            for peer in topo.peers:
                source = net.layout.ledger_dir(peer) / "ledgersData" / "chains" / "chains" / profile.channel
                target = HERE / peer.org.lower()
                target.mkdir(exist_ok=True)
                data = (source / "blockfile_000000").read_bytes()
                (target / "blockfile_000000").write_bytes(data)
                print(f"{peer.id}: {len(data)} bytes -> {target}")
        finally:
            net.clean()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
