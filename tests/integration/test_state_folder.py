"""Nothing in the state folder is accessible to other users, with every part of the stack having run.

The whole stack of ``test_bridge`` (its fixtures, imported here) runs in the
session network's state folder: the Fabric CAs, orderers and peers, the
chaincode servers, MinIO, the MLflow server and the bridge. Once a model
version is anchored, every file and folder under ``MODELLEDGER_STATE_DIR``
must be private to our user: no group or other permission bit on anything,
whoever created it (ModelLedger itself or one of its child processes).
"""

from __future__ import annotations

import pytest

from tests.integration.test_bridge import Stack, model_uri, register, stack, wait_tags  # noqa: F401 (fixtures)
from tests.private_state import shared_entries

pytestmark = pytest.mark.integration

# What the walk must find, so that it covers every kind of private file (paths under the state folder).
KINDS = {
    "CA keystore keys": "network/cas/*/server/msp/keystore/*_sk",
    "CA configs holding the bootstrap password": "network/cas/*/server/fabric-ca-server-config.yaml",
    "CA databases": "network/cas/*/server/fabric-ca-server.db",
    "CA TLS keys": "network/cas/*/server/tls/server.key",
    "enrolment secrets": "network/secrets/*/*.secret",
    "identity keystores": "network/orgs/*/users/*/msp/keystore/*",
    "node keystores": "network/orgs/*/nodes/*/msp/keystore/*",
    "node TLS keys": "network/orgs/*/nodes/*/tls/server.key",
    "chaincode server TLS keys": "network/orgs/*/chaincode/tls/server.key",
    "chaincode packages (the peers' TLS client key)": "network/orgs/*/chaincode/*.tar.gz",
    "ledger block files": "network/ledgers/*/**/blockfile_*",
    "S3 root credentials": "s3/credentials.json",
    "S3 TLS keys": "s3/certs/private.key",
    "MinIO drives": "s3/data/d*/*",
    "MLflow's SQLite database": "mlflow/mlflow.db",
    "MLflow's webhook encryption key": "mlflow/webhook-encryption.key",
    "the bridge's outbox": "bridge/outbox.db",
    "the bridge's webhook secret": "bridge/webhook-secret",
    "process logs": "*/logs/*.log",
}


def test_nothing_in_the_state_folder_is_accessible_to_group_or_others(request: pytest.FixtureRequest) -> None:
    s: Stack = request.getfixturevalue("stack")
    version = register(s, "state-folder-modes", request.getfixturevalue("model_uri"))
    wait_tags(s, "state-folder-modes", version)
    state = s.network.settings.state_dir

    missing = [f"{kind} ({pattern})" for kind, pattern in KINDS.items() if not any(state.glob(pattern))]
    assert missing == [], f"the walk would not cover these in {state}"
    shared = shared_entries(state)
    assert not shared, f"{len(shared)} entries under {state} are accessible to group or others:\n" + "\n".join(
        shared[:60]
    )
