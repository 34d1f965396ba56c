"""The S3 server's settings, files and command line, without starting MinIO."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from modelledger.mlops.cli.app import app
from modelledger.mlops.servers.minio import S3Server, ensure_tls, minio_argv, minio_env
from modelledger.mlops.servers.minio_admin import user_policy
from modelledger.mlops.servers.minio_root import S3ServerError, ensure_credentials, read_credentials, root_client
from modelledger.mlops.store.s3_access import (
    S3AccessError,
    aws_env,
    client_config,
    read_user_credentials,
    s3_client,
)
from modelledger.runtime.settings import S3Settings, S3User


def _settings(tmp_path: Path, **kw: object) -> S3Settings:
    return S3Settings(state_dir=tmp_path, tools_dir=tmp_path / "tools", **kw)  # type: ignore[arg-type]


def test_defaults_from_an_empty_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("S3_PORT", "S3_BUCKET", "S3_RETENTION_DAYS", "HEALTH_TIMEOUT", "MLFLOW_ARTIFACTS_BUCKET"):
        monkeypatch.delenv(f"MODELLEDGER_{var}", raising=False)
    monkeypatch.setenv("MODELLEDGER_STATE_DIR", str(tmp_path / "state"))
    s = S3Settings.from_env()
    # Ten years of COMPLIANCE retention (leap days included) unless a demo or test says otherwise.
    assert (s.port, s.console_port, s.bucket, s.retention_days) == (7900, 7901, "modelledger-anchored", 3653)
    assert s.mlflow_bucket == "modelledger-mlflow"
    assert s.endpoint_url == "https://127.0.0.1:7900"
    assert s.s3_dir == tmp_path / "state" / "s3"
    assert s.drives == [tmp_path / "state" / "s3" / "data" / f"d{i}" for i in (1, 2, 3, 4)]
    assert s.ca_file == tmp_path / "state" / "s3" / "certs" / "ca.crt"


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MODELLEDGER_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("MODELLEDGER_TOOLS_DIR", str(tmp_path / "t"))
    monkeypatch.setenv("MODELLEDGER_S3_PORT", "19400")
    monkeypatch.setenv("MODELLEDGER_S3_BUCKET", "anchored-test")
    monkeypatch.setenv("MODELLEDGER_S3_RETENTION_DAYS", "7")
    monkeypatch.setenv("MODELLEDGER_HEALTH_TIMEOUT", "5")
    s = S3Settings.from_env()
    assert (s.port, s.bucket, s.retention_days, s.health_timeout) == (19400, "anchored-test", 7, 5.0)
    assert s.minio_binary == tmp_path / "t" / "bin" / "minio"


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        ("MODELLEDGER_S3_PORT", "http", "MODELLEDGER_S3_PORT must be an integer, got 'http'"),
        ("MODELLEDGER_S3_PORT", "65535", "MODELLEDGER_S3_PORT must be between 1 and 65534, got 65535"),
        ("MODELLEDGER_S3_RETENTION_DAYS", "0", "MODELLEDGER_S3_RETENTION_DAYS must be at least 1, got 0"),
        ("MODELLEDGER_S3_RETENTION_DAYS", "1.5", "MODELLEDGER_S3_RETENTION_DAYS must be an integer, got '1.5'"),
        ("MODELLEDGER_S3_BUCKET", "Anchored", "MODELLEDGER_S3_BUCKET 'Anchored' is not a valid S3 bucket name"),
        ("MODELLEDGER_S3_BUCKET", "a..b", "MODELLEDGER_S3_BUCKET 'a..b' is not a valid S3 bucket name"),
        (
            "MODELLEDGER_MLFLOW_ARTIFACTS_BUCKET",
            "ML",
            "MODELLEDGER_MLFLOW_ARTIFACTS_BUCKET 'ML' is not a valid S3 bucket",
        ),
        (
            "MODELLEDGER_MLFLOW_ARTIFACTS_BUCKET",
            "modelledger-anchored",
            "MODELLEDGER_S3_BUCKET and MODELLEDGER_MLFLOW_ARTIFACTS_BUCKET must differ",
        ),
    ],
)
def test_bad_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch, var: str, value: str, message: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ValueError) as exc:
        S3Settings.from_env()
    assert str(exc.value).startswith(message)


def test_credentials_are_random_0600_and_generated_once(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    assert ensure_credentials(s) is True
    first = read_credentials(s)
    assert stat.S_IMODE(s.credentials_file.stat().st_mode) == 0o600
    assert len(first.access_key) == 20 and len(first.secret_key) == 40
    assert first.secret_key not in repr(first)
    assert ensure_credentials(s) is False
    assert read_credentials(s) == first
    other = _settings(tmp_path / "other")
    ensure_credentials(other)
    assert read_credentials(other) != first


def test_missing_credentials_say_to_bring_s3_up(tmp_path: Path) -> None:
    with pytest.raises(S3ServerError, match=r"no S3 credentials at .*credentials.json; run `make s3-up` first"):
        root_client(_settings(tmp_path))
    with pytest.raises(
        S3AccessError, match=r"no S3 credentials for auditor at .*/s3/users/auditor.credentials; run `make s3-up` first"
    ):
        s3_client(_settings(tmp_path), user=S3User.AUDITOR)


def test_a_damaged_credential_file_is_named_without_its_content(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    path = settings.user_credentials_file(S3User.BRIDGE)
    path.parent.mkdir(parents=True)
    secret = "wJalrXUtnFEMIK7MDENGbPxRfiCYSECRET"
    # configparser's own error quotes this line (a duplicate option), secret included.
    path.write_text(
        f"[default]\naws_access_key_id = k\naws_secret_access_key = {secret}\naws_secret_access_key = {secret}\n"
    )
    with pytest.raises(S3AccessError) as exc:
        read_user_credentials(settings, S3User.BRIDGE)
    assert str(path) in str(exc.value) and "DuplicateOptionError" in str(exc.value)
    assert secret not in str(exc.value)


def test_a_child_process_gets_the_path_of_its_users_credentials_never_a_key(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    env = aws_env(s, S3User.BRIDGE)
    assert env == {
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "s3" / "users" / "bridge.credentials"),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CA_BUNDLE": str(s.ca_file),
    }
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & set(env)


def _actions(policy: dict) -> set[tuple[str, str]]:
    return {(a, r) for st in policy["Statement"] for a in st["Action"] for r in st["Resource"]}


def test_each_users_policy_allows_only_its_work(tmp_path: Path) -> None:
    s = _settings(tmp_path, bucket="anchored", mlflow_bucket="mlflow-art")
    mlflow, bridge, auditor = (user_policy(s, u) for u in (S3User.MLFLOW, S3User.BRIDGE, S3User.AUDITOR))
    # MLflow: its prefix of its bucket only (listing limited to that prefix too).
    assert {r for _, r in _actions(mlflow)} == {"arn:aws:s3:::mlflow-art", "arn:aws:s3:::mlflow-art/artifacts/*"}
    listing = next(st for st in mlflow["Statement"] if st["Action"] == ["s3:ListBucket"])
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["artifacts", "artifacts/*"]}}
    # Nobody but the root deletes anchored copies or changes the anchored bucket's settings.
    for policy in (mlflow, bridge, auditor):
        for action, resource in _actions(policy):
            if resource.startswith("arn:aws:s3:::anchored"):
                assert "Delete" not in action and "Bypass" not in action and not action.startswith("s3:PutBucket")
                assert action != "s3:PutBucketObjectLockConfiguration"
    assert ("s3:PutObject", "arn:aws:s3:::anchored/*") in _actions(bridge)
    assert ("s3:GetObject", "arn:aws:s3:::mlflow-art/artifacts/*") in _actions(bridge)
    assert all(a.startswith(("s3:Get", "s3:List")) for a, _ in _actions(auditor))
    with pytest.raises(ValueError, match="the root user has no policy"):
        user_policy(s, S3User.ROOT)


def test_the_evaluator_reads_like_the_auditor_and_writes_only_new_objects_under_evaluations(tmp_path: Path) -> None:
    s = _settings(tmp_path, bucket="anchored", mlflow_bucket="mlflow-art")
    auditor, evaluator = (user_policy(s, u) for u in (S3User.AUDITOR, S3User.EVALUATOR))
    allowed = {
        (a, r) for st in evaluator["Statement"] if st["Effect"] == "Allow" for a in st["Action"] for r in st["Resource"]
    }
    writes = {(a, r) for a, r in allowed if not a.startswith(("s3:Get", "s3:List"))}
    assert writes == {("s3:PutObject", "arn:aws:s3:::anchored/evaluations/sha256/*.tar")}  # content addresses only; no delete, no retention
    assert allowed - writes == _actions(auditor)
    deny = next(st for st in evaluator["Statement"] if st["Effect"] == "Deny")
    assert deny["Condition"] == {"StringEquals": {"s3:object-lock-mode": ["GOVERNANCE"]}}


def test_tls_files_follow_minio_layout_and_chain_to_the_ca(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    actions = ensure_tls(s)
    assert actions == [
        "created the S3 TLS CA",
        "issued the S3 server TLS certificate",
        "installed the CA in certs/CAs",
    ]
    assert {p.name for p in s.certs_dir.iterdir()} == {"ca.crt", "public.crt", "private.key", "CAs"}
    assert (s.certs_dir / "CAs" / "ca.crt").read_bytes() == s.ca_file.read_bytes()
    for key in (s.server_key_file, s.ca_key_file):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert not s.ca_key_file.is_relative_to(s.certs_dir)
    ca = x509.load_pem_x509_certificate(s.ca_file.read_bytes())
    cert = x509.load_pem_x509_certificate(s.server_cert_file.read_bytes())
    assert cert.issuer == ca.subject
    pub = ca.public_key()
    assert isinstance(pub, ec.EllipticCurvePublicKey)
    cert.verify_directly_issued_by(ca)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert ensure_tls(s) == []  # second run: nothing to do
    assert x509.load_pem_x509_certificate(s.server_cert_file.read_bytes()) == cert


def test_a_missing_server_certificate_is_reissued_from_the_same_ca(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    ensure_tls(s)
    ca_before = s.ca_file.read_bytes()
    s.server_cert_file.unlink()
    assert ensure_tls(s) == ["issued the S3 server TLS certificate"]
    assert s.ca_file.read_bytes() == ca_before


def test_minio_command_line_carries_no_secret(tmp_path: Path) -> None:
    s = _settings(tmp_path, port=17900)
    ensure_credentials(s)
    creds = read_credentials(s)
    argv = minio_argv(s)
    assert argv[:2] == [str(tmp_path / "tools" / "bin" / "minio"), "server"]
    assert argv[argv.index("--address") + 1] == "127.0.0.1:17900"
    assert argv[argv.index("--console-address") + 1] == "127.0.0.1:17901"
    assert argv[argv.index("--certs-dir") + 1] == str(s.certs_dir)
    assert argv[-4:] == [str(d) for d in s.drives]
    assert not any(creds.secret_key in a or creds.access_key in a for a in argv)
    env = minio_env(s, creds)
    assert env["MINIO_ROOT_USER"] == creds.access_key
    assert env["MINIO_ROOT_PASSWORD"] == creds.secret_key
    assert env["MINIO_BROWSER"] == "off" and env["MINIO_UPDATE"] == "off"
    assert "CI" not in env  # CI=true would put MinIO into its CI/CD mode


def test_client_configuration(tmp_path: Path) -> None:
    s = _settings(tmp_path, port=17900)
    ensure_credentials(s)
    ensure_tls(s)
    client = root_client(s)
    cfg = client.meta.config
    assert client.meta.endpoint_url == "https://127.0.0.1:17900"
    assert client.meta.region_name == "us-east-1"
    assert cfg.signature_version == "s3v4"
    assert cfg.s3 == {"addressing_style": "path", "payload_signing_enabled": False}
    assert cfg.request_checksum_calculation == "when_required"
    assert cfg.response_checksum_validation == "when_required"
    assert client._endpoint.http_session._verify == str(s.ca_file)
    creds = client._request_signer._credentials
    assert (creds.access_key, creds.secret_key) == (read_credentials(s).access_key, read_credentials(s).secret_key)


def test_client_configuration_can_be_extended() -> None:
    from botocore.config import Config

    cfg = client_config(Config(max_pool_connections=32))
    assert cfg.max_pool_connections == 32
    assert cfg.s3 == {"addressing_style": "path", "payload_signing_enabled": False}


def test_connection_file_names_paths_not_the_secret(tmp_path: Path) -> None:
    s = _settings(tmp_path, port=17900, bucket="anchored", retention_days=3)
    doc = json.loads(S3Server(s).connection_json())
    assert doc == {
        "endpoint_url": "https://127.0.0.1:17900",
        "region": "us-east-1",
        "addressing_style": "path",
        "bucket": "anchored",
        "ca_file": str(s.ca_file),
        "credentials_file": str(s.credentials_file),
        "mlflow_bucket": "modelledger-mlflow",
        "users": {
            u: str(tmp_path / "s3" / "users" / f"{u}.credentials") for u in ("mlflow", "bridge", "auditor", "evaluator")
        },
        "object_lock": {"mode": "COMPLIANCE", "default_retention_days": 3},
    }


def test_up_without_the_binary_says_make_tools(tmp_path: Path) -> None:
    srv = S3Server(_settings(tmp_path))
    with pytest.raises(S3ServerError, match=r"missing MinIO server binary .*tools/bin/minio; run `make tools`"):
        srv.up()


def test_up_refuses_a_server_running_on_another_port(tmp_path: Path) -> None:
    srv = S3Server(_settings(tmp_path, port=17900))
    srv.claim_state_dir()
    sleeper = [sys.executable, "-c", "import time; time.sleep(30)"]
    srv.supervisor.start("minio", sleeper, dict(os.environ), tag="127.0.0.1:17800")
    try:
        with pytest.raises(
            S3ServerError, match=r"runs on 127\.0\.0\.1:17800, not 127\.0\.0\.1:17900 as configured now"
        ):
            srv.up()
    finally:
        assert srv.down() == ["minio"]


def test_clean_refuses_a_folder_it_did_not_make(tmp_path: Path) -> None:
    precious = tmp_path / "s3" / "keep.txt"
    precious.parent.mkdir()
    precious.write_text("not ours")
    srv = S3Server(_settings(tmp_path))
    with pytest.raises(S3ServerError, match=r"refusing to delete .*s3: it has no \.modelledger-s3 marker"):
        srv.clean()
    with pytest.raises(S3ServerError, match="was not made by ModelLedger"):
        srv.up()
    assert precious.read_text() == "not ours"


def test_clean_removes_its_own_folder(tmp_path: Path) -> None:
    srv = S3Server(_settings(tmp_path))
    srv.claim_state_dir()
    ensure_credentials(srv.settings)
    assert srv.clean() == []
    assert not srv.settings.s3_dir.exists()


def test_status_json_of_a_stopped_server_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELLEDGER_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("MODELLEDGER_S3_PORT", "31900")
    result = CliRunner().invoke(app, ["s3", "status", "--json"])
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert (doc["ok"], doc["running"], doc["detail"]) == (False, False, "not running")
    assert doc["endpoint"] == "https://127.0.0.1:31900"


def test_cli_reports_bad_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELLEDGER_S3_PORT", "seven")
    result = CliRunner().invoke(app, ["s3", "down", "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {"error": "MODELLEDGER_S3_PORT must be an integer, got 'seven'"}


def test_a_damaged_user_credential_file_fails_s3_up_with_one_line_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from modelledger.mlops.servers import minio_admin

    s = S3Settings(state_dir=tmp_path)
    s.users_dir.mkdir(parents=True)
    for user in (S3User.MLFLOW, S3User.BRIDGE, S3User.AUDITOR):
        s.user_credentials_file(user).write_text("[default]\naws_access_key_id = x\n")  # no secret: damaged
    monkeypatch.setattr(minio_admin, "_admin", lambda settings: object())  # not reached: the file is read first
    # The server's own error type, which `s3 up` reports as one line (bring_up catches S3Server.error).
    with pytest.raises(S3ServerError, match=r"cannot read S3 credentials of mlflow from .*mlflow.credentials"):
        minio_admin.ensure_users(s)


def test_store_upload_without_credentials_is_one_line_and_exit_1(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MODELLEDGER_STATE_DIR", str(tmp_path / "state"))
    model = tmp_path / "model"
    model.mkdir()
    (model / "MLmodel").write_text("flavors: {}\n")
    result = CliRunner().invoke(app, ["store", "upload", str(model), "--json"])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert json.loads(result.stdout) == {
        "error": f"no S3 credentials for bridge at {tmp_path / 'state' / 's3' / 'users' / 'bridge.credentials'}; "
        "run `make s3-up` first"
    }
