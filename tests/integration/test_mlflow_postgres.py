"""MLflow on PostgreSQL: the tracking server keeps its registry in a real PostgreSQL, and the bridge anchors from it.

A throwaway PostgreSQL cluster (tests/integration/postgres_server.py) backs
the MLflow server through ``MODELLEDGER_MLFLOW_BACKEND_URI``; the URI carries
a password, which must never reach argv, the status output or a log.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from modelledger.mlops.bridge.mlflow_credentials import MlflowUser, user_env
from modelledger.mlops.bridge.tags import TAG_DIGEST, TAG_STATUS, TAG_TX
from modelledger.mlops.servers.bridge_server import BridgeProcess
from modelledger.mlops.servers.stack import MlflowStack
from modelledger.mlops.servers.tracking import PROCESS_NAME, MlflowServer
from modelledger.mlops.store.digest import digest_folder
from modelledger.network import FabricNetwork
from modelledger.sdk.profile import ConnectionProfile
from modelledger.sdk.registry.client import RegistryClient
from tests.integration.conftest import free_port_pair
from tests.integration.postgres_server import PostgresMissingError, ThrowawayPostgres

pytestmark = pytest.mark.integration


@dataclass
class PgStack:
    postgres: ThrowawayPostgres
    mlflow: MlflowServer
    bridge: BridgeProcess
    client: Any  # MlflowClient
    profile: ConnectionProfile


@pytest.fixture(scope="module")
def pg_stack(network: FabricNetwork) -> Iterator[PgStack]:
    import mlflow

    network.chaincode.deploy()
    pg = ThrowawayPostgres(port=free_port_pair())
    env = pytest.MonkeyPatch()
    previous_uri = mlflow.get_tracking_uri()
    parts: MlflowStack | None = None
    try:
        try:
            pg.start()
        except PostgresMissingError as exc:
            pytest.fail(str(exc), pytrace=False)
        env.setenv("MODELLEDGER_STATE_DIR", str(network.settings.state_dir))
        env.setenv("MODELLEDGER_S3_PORT", str(free_port_pair()))
        env.setenv("MODELLEDGER_S3_RETENTION_DAYS", "1")  # short, explicitly: the default is 10 years
        env.setenv("MODELLEDGER_MLFLOW_PORT", str(free_port_pair()))
        env.setenv("MODELLEDGER_BRIDGE_PORT", str(free_port_pair()))
        env.setenv("MODELLEDGER_MLFLOW_BACKEND_URI", pg.uri)
        parts = MlflowStack.from_env()
        client = parts.up()
        for key, value in user_env(parts.mlflow.settings, MlflowUser.SCIENTIST).items():
            env.setenv(key, value)  # this process is the stack's data scientist (MLflow's authentication is on)
        mlflow.set_tracking_uri(parts.mlflow.settings.tracking_uri)
        yield PgStack(pg, parts.mlflow, parts.bridge, client, ConnectionProfile.load(network.layout.connection_profile))
    finally:
        for failure in parts.down() if parts is not None else []:
            print(f"teardown: {failure}")
        pg.stop()
        mlflow.set_tracking_uri(previous_uri)  # process-wide: never left on a stopped server
        env.undo()


def test_a_version_registered_in_mlflow_on_postgresql_is_anchored(pg_stack: PgStack, tmp_path: Path) -> None:
    import mlflow

    model = tmp_path / "model"
    model.mkdir()
    (model / "MLmodel").write_text("flavors:\n  python_function: {loader_module: tests}\n")
    (model / "weights.bin").write_bytes(b"postgres-backed model " * 1000)
    mlflow.set_experiment("postgres-backend")
    with mlflow.start_run() as run:
        mlflow.log_param("backend", "postgresql")
        mlflow.log_artifacts(str(model), "model")
    pg_stack.client.create_registered_model("pg-model")
    mv = pg_stack.client.create_model_version("pg-model", f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    assert mv.version == "1"
    # The registry really is in PostgreSQL, not in a SQLite file beside it.
    assert pg_stack.postgres.sql("SELECT source FROM model_versions WHERE name = 'pg-model'") == mv.source
    deadline = time.monotonic() + 120
    tags: dict[str, str] = {}
    while time.monotonic() < deadline and tags.get(TAG_STATUS) != "anchored":
        time.sleep(0.25)
        tags = pg_stack.client.get_model_version("pg-model", "1").tags
    assert tags.get(TAG_STATUS) == "anchored", tags
    gw = pg_stack.profile.gateway("Org1MSP", "auditor")
    try:
        record = RegistryClient(gw.network(pg_stack.profile.channel), pg_stack.profile.chaincode).get_model_version(
            "pg-model", "1"
        )
    finally:
        gw.close()
    assert record.model_digest == digest_folder(model).model_digest == tags[TAG_DIGEST]
    assert record.registered_tx_id == tags[TAG_TX]
    assert (record.mlflow.source, record.mlflow.run_id) == (mv.source, run.info.run_id)
    assert [(p.key, p.value) for p in record.params] == [("backend", "postgresql")]


def test_the_database_password_stays_out_of_argv_status_and_logs(pg_stack: PgStack) -> None:
    password = pg_stack.postgres.password
    status = pg_stack.mlflow.status()
    assert status.ok and status.details["backend"] == f"postgresql://127.0.0.1:{pg_stack.postgres.port}/mlflow"
    info = pg_stack.mlflow.supervisor.running(PROCESS_NAME)
    assert info is not None
    pids = [info.pid, *[int(p) for p in Path(f"/proc/{info.pid}/task/{info.pid}/children").read_text().split()]]
    for pid in pids:
        assert password not in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    for log in (pg_stack.mlflow.log_path, pg_stack.bridge.log_path):
        assert password not in log.read_text(errors="replace"), log
