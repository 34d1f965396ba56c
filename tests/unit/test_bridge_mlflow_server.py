"""The MLflow server's command line and environment (webhook settings present, no secret in argv); bridge settings."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from modelledger.mlops.bridge.mlflow_credentials import MlflowUser, acting_as, read_user
from modelledger.mlops.servers.minio_root import ensure_credentials, read_credentials
from modelledger.mlops.servers.proxied_artifacts import s3_uri
from modelledger.mlops.servers.tracking import MlflowServer, mlflow_argv, mlflow_env
from modelledger.mlops.servers.tracking_auth import (
    auth_config,
    auth_config_file,
    ensure_user_files,
    request_refusal,
    webhook_target_refusal,
)
from modelledger.runtime.settings import BridgeSettings, MlflowSettings, S3Settings, S3User

PG = "postgresql://mlflow:hunter2@db.internal:5432/mlflow?sslpassword=also-secret"


def test_the_backend_uri_and_keys_go_through_the_environment_never_argv(tmp_path: Path) -> None:
    settings = MlflowSettings(state_dir=tmp_path, backend_uri=PG, port=17950)
    s3 = S3Settings(state_dir=tmp_path)
    ensure_credentials(s3)
    ensure_user_files(settings)
    argv = mlflow_argv(settings)
    env = mlflow_env(settings, s3, "http://127.0.0.1:17960/webhooks/mlflow")
    assert not any("hunter2" in a or "postgresql" in a for a in argv)
    assert env["MLFLOW_BACKEND_STORE_URI"] == PG
    # MLflow's own S3 user, named by its credential file: no key in the environment, none of the root's.
    assert env["AWS_SHARED_CREDENTIALS_FILE"] == str(s3.user_credentials_file(S3User.MLFLOW))
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & set(env)
    assert read_credentials(s3).secret_key not in " ".join([*argv, *env.values()])
    # MLflow's own authentication: basic-auth with our configuration; its secrets in the environment only.
    assert argv[argv.index("--app-name") + 1] == "basic-auth"
    admin = read_user(settings, MlflowUser.ADMIN)
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"] == admin.password and admin.password not in " ".join(argv)
    assert env["MLFLOW_AUTH_CONFIG_PATH"] == str(auth_config_file(settings))
    assert env["MLFLOW_FLASK_SERVER_SECRET_KEY"] == settings.flask_key_file.read_text().strip()
    assert stat.S_IMODE(settings.flask_key_file.stat().st_mode) == 0o600
    assert env["MODELLEDGER_MLFLOW_WEBHOOK_TARGET"] == "http://127.0.0.1:17960/webhooks/mlflow"
    assert env["MLFLOW_WEBHOOK_ALLOWED_SCHEMES"] == "http,https" and env["MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS"] == "true"
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    key = settings.webhook_key_file
    assert env["MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"] == key.read_text().strip()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert (
        mlflow_env(settings, s3, "")["MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"]
        == env["MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"]
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


def test_each_mlflow_user_has_a_random_password_in_a_private_file(tmp_path: Path) -> None:
    settings = MlflowSettings(state_dir=tmp_path, port=17950)
    assert ensure_user_files(settings) == [f"generated MLflow credentials for {u.value}" for u in MlflowUser]
    assert ensure_user_files(settings) == []
    folder = tmp_path / "mlflow" / "users"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    passwords = set()
    for user in MlflowUser:
        path = folder / f"{user.value}.env"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        creds = read_user(settings, user)
        assert creds.username == user.value and len(creds.password) >= 24 and creds.password not in repr(creds)
        assert path.read_text().splitlines()[0] == "MLFLOW_TRACKING_URI=http://127.0.0.1:17950"
        passwords.add(creds.password)
    assert len(passwords) == len(MlflowUser)
    assert [u.value for u in MlflowUser if u.is_admin] == ["admin"]  # the bridge holds a role instead
    # The server's configuration holds no password; its user store lives in the state folder.
    config = auth_config(settings)
    assert not any(p in config for p in passwords)
    assert f"database_uri = sqlite:///{tmp_path / 'mlflow' / 'basic_auth.db'}" in config
    assert "default_permission = READ" in config
    assert "authorization_function = modelledger.mlops.servers.tracking_auth:authenticate" in config


def test_acting_as_a_user_restores_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = MlflowSettings(state_dir=tmp_path)
    ensure_user_files(settings)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "someone")
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    with acting_as(settings, MlflowUser.BRIDGE) as creds:
        assert os.environ["MLFLOW_TRACKING_USERNAME"] == "modelledger-bridge" == creds.username
        assert os.environ["MLFLOW_TRACKING_PASSWORD"] == creds.password
    assert os.environ["MLFLOW_TRACKING_USERNAME"] == "someone" and "MLFLOW_TRACKING_PASSWORD" not in os.environ


BRIDGE_URL = "http://127.0.0.1:7960/webhooks/mlflow"
CREATE, UPDATE = "/api/2.0/mlflow/webhooks", "/api/2.0/mlflow/webhooks/<webhook_id>"


@pytest.mark.parametrize(
    ("method", "rule", "body", "target", "refusal"),
    [
        ("POST", CREATE, {"name": "x", "url": BRIDGE_URL}, BRIDGE_URL, None),
        ("POST", CREATE, {"name": "x", "url": "http://10.0.0.5/steal"}, BRIDGE_URL, "webhooks may only point at"),
        ("POST", CREATE, {"name": "x", "url": BRIDGE_URL + "/"}, BRIDGE_URL, "webhooks may only point at"),
        ("POST", "/ajax-api/2.0/mlflow/webhooks", {"url": "https://evil.example"}, BRIDGE_URL, "may only point"),
        ("POST", CREATE, {"name": "x"}, BRIDGE_URL, "webhooks may only point at"),
        ("POST", CREATE, None, BRIDGE_URL, "must have a JSON body"),
        ("POST", CREATE, {"url": BRIDGE_URL}, "", "no webhook target is allowed"),
        ("PATCH", UPDATE, {"url": "http://127.0.0.1:9/other"}, BRIDGE_URL, "webhooks may only point at"),
        ("PATCH", UPDATE, {"status": "DISABLED"}, BRIDGE_URL, None),  # keeps the stored URL
        ("PATCH", UPDATE, {"url": BRIDGE_URL, "secret": "s"}, BRIDGE_URL, None),
        ("DELETE", UPDATE, None, BRIDGE_URL, None),
        ("POST", UPDATE + "/test", None, BRIDGE_URL, None),
        ("POST", "/api/2.0/mlflow/experiments/create", {"url": "x"}, BRIDGE_URL, None),
    ],
)
def test_a_webhook_may_only_point_at_the_bridge(
    method: str, rule: str, body: object, target: str, refusal: str | None
) -> None:
    got = webhook_target_refusal(method, rule, body, target)
    assert got == refusal if refusal is None else refusal in (got or "")


@pytest.mark.parametrize(
    ("method", "rule", "body", "refusal"),
    [
        ("POST", "/api/2.0/mlflow/artifacts/presigned-upload-url", {"run_id": "r", "path": "x"}, "no presigned"),
        ("POST", "/ajax-api/2.0/mlflow/artifacts/presigned-download-url", {"run_id": "r"}, "no presigned"),
        ("POST", "/api/3.0/mlflow/artifacts/presigned-upload-url", {}, "no presigned"),
        ("POST", "/api/2.0/mlflow-artifacts/mpu/create/<path:artifact_path>", {}, "no presigned"),
        ("POST", "/ajax-api/2.0/mlflow-artifacts/mpu/complete/<path:artifact_path>", {}, "no presigned"),
        ("POST", "/api/2.0/mlflow-artifacts/mpu/abort/<path:artifact_path>", {}, "no presigned"),
        ("GET", "/api/2.0/mlflow-artifacts/presigned/<path:artifact_path>", None, "no presigned"),
        ("POST", "/api/2.0/mlflow/experiments/create", {"name": "e"}, None),
        ("POST", "/api/2.0/mlflow/experiments/create", {"name": "e", "artifact_location": ""}, None),
        ("POST", "/api/2.0/mlflow/experiments/create", {"artifact_location": "mlflow-artifacts:/mine"}, None),
        ("POST", "/api/2.0/mlflow/experiments/create", None, None),
        ("POST", "/api/2.0/mlflow/experiments/create", {"artifact_location": "s3://modelledger-mlflow/a/1"}, "s3://"),
        ("POST", "/ajax-api/2.0/mlflow/experiments/create", {"artifact_location": "file:///tmp/x"}, "file://"),
        ("POST", "/api/2.0/mlflow/experiments/create", {"artifact_location": "modelledger-s3://b/a"}, "only be empty"),
        ("POST", "/api/2.0/mlflow/experiments/create", {"artifact_location": "/srv/artifacts"}, "only be empty"),
        ("POST", "/api/2.0/mlflow/experiments/create", {"artifact_location": 7}, "only be empty"),
        ("POST", "/api/2.0/mlflow/experiments/update", {"new_name": "f"}, None),
        ("GET", "/api/2.0/mlflow-artifacts/artifacts/<path:artifact_path>", None, None),
        ("POST", CREATE, {"url": "http://10.0.0.5/steal"}, "webhooks may only point at"),
    ],
)
def test_the_server_refuses_direct_storage_and_foreign_artifact_locations(
    method: str, rule: str, body: object, refusal: str | None
) -> None:
    got = request_refusal(method, rule, lambda: body, BRIDGE_URL)
    assert got == refusal if refusal is None else refusal in (got or "")


@pytest.mark.parametrize(
    ("method", "rule"),
    [
        ("POST", "/api/2.0/mlflow/runs/log-batch"),
        ("GET", "/api/2.0/mlflow/experiments/search"),
        ("PUT", "/api/2.0/mlflow-artifacts/artifacts/<path:artifact_path>"),
        ("DELETE", UPDATE),
        ("POST", UPDATE + "/test"),
    ],
)
def test_the_body_is_read_only_where_a_rule_needs_it(method: str, rule: str) -> None:
    def body() -> object:
        raise AssertionError("the body was read")

    assert request_refusal(method, rule, body, BRIDGE_URL) is None


def test_the_server_caches_a_checked_password_for_a_minute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow 3.17 runs PBKDF2 on every request unless its auth cache is on; read as MLflow reads it."""
    from mlflow.server.auth.config import read_auth_config

    settings = MlflowSettings(state_dir=tmp_path)
    path = auth_config_file(settings)
    path.parent.mkdir(parents=True)
    path.write_text(auth_config(settings))
    monkeypatch.setenv("MLFLOW_AUTH_CONFIG_PATH", str(path))
    config = read_auth_config()
    assert config.auth_cache_ttl_seconds == 60
    assert config.authorization_function == "modelledger.mlops.servers.tracking_auth:authenticate"


@pytest.mark.parametrize(
    ("rule", "parsed"),
    [("/api/2.0/mlflow/runs/log-batch", False), ("/api/2.0/mlflow/experiments/create", True)],
)
def test_authenticate_parses_the_body_only_where_a_rule_needs_it(
    monkeypatch: pytest.MonkeyPatch, rule: str, parsed: bool
) -> None:
    import sys
    import types

    import flask

    from modelledger.mlops.servers.tracking_auth import authenticate

    fake = types.ModuleType("mlflow.server.auth")
    fake.authenticate_request_basic_auth = lambda: types.SimpleNamespace(username="data-scientist")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mlflow.server.auth", fake)
    reads: list[str] = []
    real = flask.Request.get_json

    def spy(self: flask.Request, *args: object, **kwargs: object) -> object:
        reads.append(self.path)
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(flask.Request, "get_json", spy)
    app = flask.Flask("probe")
    app.add_url_rule(rule, "probe", lambda: authenticate() and "ok", methods=["POST"])
    resp = app.test_client().post(rule, json={"name": "e"})
    assert resp.status_code == 200 and reads == ([rule] if parsed else [])


def test_the_configured_authorization_function_can_be_imported_by_the_server() -> None:
    import importlib

    from modelledger.mlops.servers.tracking_auth import AUTHORIZATION_FUNCTION, authenticate

    module, name = AUTHORIZATION_FUNCTION.split(":")
    assert getattr(importlib.import_module(module), name) is authenticate


def test_a_damaged_account_file_fails_mlflow_up_with_the_servers_error_before_anything_starts(tmp_path: Path) -> None:
    from modelledger.mlops.servers.tracking import MlflowServerError

    s3 = S3Settings(state_dir=tmp_path)
    s3.users_dir.mkdir(parents=True)
    s3.user_credentials_file(S3User.MLFLOW).write_text("[default]\naws_access_key_id = a\naws_secret_access_key = b\n")
    settings = MlflowSettings(state_dir=tmp_path, port=17951)
    server = MlflowServer(settings, s3=s3, webhook_target="http://127.0.0.1:17960/webhooks/mlflow")
    server.claim_state_dir()  # a folder of ours, as a first `mlflow up` leaves it
    ensure_user_files(settings)
    (tmp_path / "mlflow" / "users" / "admin.env").write_text("MLFLOW_TRACKING_USERNAME=admin\n")  # no password
    # `mlflow up` reports the server's error type as one line (bring_up catches it); nothing was started.
    with pytest.raises(MlflowServerError, match=r"cannot read the MLflow credentials of admin from .*admin.env"):
        server.up()
    assert server.supervisor.running(server.process) is None


@pytest.mark.parametrize(
    ("method", "rule", "refused"),
    [
        ("DELETE", "/api/2.0/mlflow/model-versions/delete", "deletes no model version"),
        ("DELETE", "/api/2.0/mlflow/registered-models/delete", "deletes and renames no model"),
        ("POST", "/ajax-api/2.0/mlflow/registered-models/rename", "deletes and renames no model"),
        ("POST", "/api/2.0/mlflow/registered-models/permissions/create", "changes no permission"),
        ("PATCH", "/api/2.0/mlflow/registered-models/permissions/update", "changes no permission"),
        ("DELETE", "/api/2.0/mlflow/registered-models/alias", None),  # a revoked version's aliases
        ("POST", "/api/2.0/mlflow/model-versions/set-tag", None),
        ("DELETE", "/api/2.0/mlflow/model-versions/delete-tag", None),
        ("GET", "/api/2.0/mlflow/registered-models/get", None),
    ],
)
def test_the_bridge_uses_its_manage_grants_only_for_aliases_and_tags(method: str, rule: str, refused: str | None) -> None:
    from modelledger.mlops.bridge.mlflow_credentials import MlflowUser

    got = request_refusal(method, rule, lambda: None, BRIDGE_URL, MlflowUser.BRIDGE.value)
    assert got is None if refused is None else refused in (got or "")
    assert request_refusal(method, rule, lambda: None, BRIDGE_URL, "data-scientist") is None  # MLflow's own checks


@pytest.mark.parametrize("held", ["EDIT", "MANAGE", None])
def test_the_bridge_role_grant_is_changed_in_place_never_added_twice(
    monkeypatch: pytest.MonkeyPatch, held: str | None
) -> None:
    # MLflow keeps one permission per role and resource: an earlier release's EDIT on every registered model must be
    # updated to MANAGE (adding a second one is refused with RESOURCE_ALREADY_EXISTS and stopped `make up`).
    from modelledger.mlops.servers import tracking_auth

    grants = [{"id": 7, "role_id": 1, "resource_type": "registered_model", "resource_pattern": "*", "permission": held}]
    grants += [{"id": 8, "role_id": 1, "resource_type": "registered_model_version", "resource_pattern": "*",
                "permission": "MANAGE"}]  # fmt: skip
    grants = [g for g in grants if g["permission"]]
    calls: list[tuple[str, str, dict | None]] = []

    def call(settings: object, creds: object, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        calls.append((method, path.split("?")[0], body))
        if path.startswith("/api/3.0/mlflow/roles/list"):
            return 200, {"roles": [{"id": 1, "name": tracking_auth.BRIDGE_ROLE}]}
        if path.startswith("/api/3.0/mlflow/roles/permissions/list"):
            return 200, {"role_permissions": grants}
        if path.startswith("/api/3.0/mlflow/users/roles/list"):
            return 200, {"roles": [{"id": 1}]}
        return 200, {}

    monkeypatch.setattr(tracking_auth, "_call", call)
    actions = tracking_auth._ensure_bridge_role(object(), object(), "bridge")  # type: ignore[arg-type]
    writes = [(m, p, b) for m, p, b in calls if m != "GET"]
    if held == "EDIT":
        assert writes == [("PATCH", "/api/3.0/mlflow/roles/permissions/update",
                           {"role_permission_id": 7, "permission": "MANAGE"})]  # fmt: skip
        assert actions == [f"changed {tracking_auth.BRIDGE_ROLE} on every registered_model from EDIT to MANAGE"]
    elif held == "MANAGE":
        assert writes == [] and actions == []
    else:
        assert [(m, p) for m, p, _ in writes] == [("POST", "/api/3.0/mlflow/roles/permissions/add")]


@pytest.mark.parametrize("existing", [None, "READ", "EDIT", "MANAGE"])
def test_the_evaluator_is_a_plain_mlflow_user_that_writes_runs_only_in_its_own_experiment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, existing: str | None
) -> None:
    # MLflow 3.17 with default_permission = READ: the evaluator reads every model, version and artefact; it may
    # create runs only where it holds EDIT or MANAGE: its experiment, made by `make up` as the evaluator (MANAGE),
    # or granted EDIT if someone else made it first. It holds no role and is no admin.
    from modelledger.mlops.bridge.mlflow_credentials import EVALUATIONS_EXPERIMENT
    from modelledger.mlops.servers import tracking_auth

    settings = MlflowSettings(state_dir=tmp_path, port=17950)
    ensure_user_files(settings)
    calls: list[tuple[str, str, str, dict | None]] = []

    def call(settings: object, creds: object, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        calls.append((getattr(creds, "username", ""), method, path, body))
        route = path.split("?")[0]
        if route == "/api/2.0/mlflow/users/get":
            return 404, {}
        if route == "/api/2.0/mlflow/experiments/get-by-name":
            return (404, {}) if existing is None else (200, {"experiment": {"experiment_id": "12"}})
        if route == "/api/3.0/mlflow/users/permissions/get":
            return 200, {"allowed": existing != "READ", "permission": existing}
        return 200, {}

    monkeypatch.setattr(tracking_auth, "_call", call)
    monkeypatch.setattr(tracking_auth, "_ensure_bridge_role", lambda *a: [])
    actions = tracking_auth.ensure_users(settings)
    created = [b["username"] for _, m, p, b in calls if p == "/api/2.0/mlflow/users/create" and b]
    assert created == ["modelledger-bridge", "data-scientist", "evaluator"]
    assert not any(p.endswith("update-admin") or "/roles/" in p for _, _, p, _ in calls)  # no admin, no role
    writes = [(who, p, b) for who, m, p, b in calls if m != "GET" and ("experiments" in p or "permissions" in p)]
    if existing is None:
        assert writes == [("evaluator", "/api/2.0/mlflow/experiments/create", {"name": EVALUATIONS_EXPERIMENT})]
        assert actions[-1] == f"created MLflow experiment {EVALUATIONS_EXPERIMENT} as evaluator"
    elif existing == "READ":
        grant = {"username": "evaluator", "resource_type": "experiment", "resource_id": "12", "permission": "EDIT"}
        assert writes == [("admin", "/api/3.0/mlflow/users/permissions/grant", grant)]
        assert actions[-1] == f"granted evaluator EDIT on MLflow experiment {EVALUATIONS_EXPERIMENT}"
    else:
        assert writes == [] and not any("experiment" in a for a in actions)
