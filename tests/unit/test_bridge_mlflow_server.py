"""The MLflow server's command line and environment (webhook settings present, no secret in argv); bridge settings."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from modelledger.mlops.bridge.mlflow_server import MlflowServer, mlflow_argv, mlflow_env
from modelledger.mlops.bridge.proxied_artifacts import s3_uri
from modelledger.mlops.bridge.settings import BridgeSettings, MlflowSettings
from modelledger.mlops.store.s3server import S3Settings, S3User, ensure_credentials, read_credentials

PG = "postgresql://mlflow:hunter2@db.internal:5432/mlflow?sslpassword=also-secret"


def test_the_backend_uri_and_keys_go_through_the_environment_never_argv(tmp_path: Path) -> None:
    settings = MlflowSettings(state_dir=tmp_path, backend_uri=PG, port=17950)
    s3 = S3Settings(state_dir=tmp_path)
    ensure_credentials(s3)
    argv = mlflow_argv(settings)
    env = mlflow_env(settings, s3)
    assert not any("hunter2" in a or "postgresql" in a for a in argv)
    assert env["MLFLOW_BACKEND_STORE_URI"] == PG
    # MLflow's own S3 user, named by its credential file: no key in the environment, none of the root's.
    assert env["AWS_SHARED_CREDENTIALS_FILE"] == str(s3.user_credentials_file(S3User.MLFLOW))
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & set(env)
    assert read_credentials(s3).secret_key not in " ".join([*argv, *env.values()])
    assert env["MLFLOW_WEBHOOK_ALLOWED_SCHEMES"] == "http,https" and env["MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS"] == "true"
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    key = settings.webhook_key_file
    assert env["MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"] == key.read_text().strip()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert (
        mlflow_env(settings, s3)["MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"] == env["MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"]
    )
    assert argv[argv.index("--artifacts-destination") :][:2] == [
        "--artifacts-destination",
        "modelledger-s3://modelledger-mlflow/artifacts",
    ]


def test_the_servers_artifact_repository_offers_clients_no_presigned_url() -> None:
    """MLflow advertises presigned transfers from the repository's class alone: ours has none of those interfaces."""
    from mlflow.store.artifact import artifact_repo as base
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    destination = MlflowSettings().server_artifacts_destination
    repo = get_artifact_repository(destination)  # through the package's entry point, as the server resolves it
    for interface in (base.MultipartDownloadMixin, base.MultipartUploadMixin, base.PresignedUploadMixin):
        assert not isinstance(repo, interface), interface.__name__
    assert repo._s3.artifact_uri == MlflowSettings().artifacts_destination == "s3://modelledger-mlflow/artifacts"
    trace = get_artifact_repository(f"{destination}/1/traces/tr-1/artifacts")  # how the server builds trace paths
    assert trace._s3.artifact_uri == "s3://modelledger-mlflow/artifacts/1/traces/tr-1/artifacts"
    with pytest.raises(ValueError, match="not a modelledger-s3:// artifact URI"):
        s3_uri("s3://modelledger-mlflow/artifacts")


def test_the_printed_backend_never_shows_a_password(tmp_path: Path) -> None:
    label = MlflowServer(MlflowSettings(state_dir=tmp_path, backend_uri=PG))._backend_label()
    assert label == "postgresql://db.internal:5432/mlflow"
    sqlite = MlflowServer(MlflowSettings(state_dir=tmp_path))._backend_label()
    assert sqlite == f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"


def test_the_bridge_scratch_folder_comes_from_the_environment_and_must_exist(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("MODELLEDGER_BRIDGE_SCRATCH_DIR", raising=False)
    assert BridgeSettings.from_env().scratch_dir is None  # the system's temporary folder
    monkeypatch.setenv("MODELLEDGER_BRIDGE_SCRATCH_DIR", str(tmp_path))
    assert BridgeSettings.from_env().scratch_dir == tmp_path
    monkeypatch.setenv("MODELLEDGER_BRIDGE_SCRATCH_DIR", str(tmp_path / "missing"))
    with pytest.raises(ValueError, match=r"MODELLEDGER_BRIDGE_SCRATCH_DIR .*/missing is not a folder"):
        BridgeSettings.from_env()
