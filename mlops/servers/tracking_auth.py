"""The tracking server's authentication: its configuration, its users' creation, and its authorization rules.

``make mlflow-up`` runs ``mlflow server --app-name basic-auth`` (MLflow 3.17's
basic authentication) with ``basic_auth.ini`` written into the MLflow state
folder: its own SQLite user store there, ``default_permission = READ`` (a user
reads what others log and manages what it creates), and :func:`authenticate`
as the ``authorization_function``: MLflow's basic-auth check, plus this stack's
rules (:func:`request_refusal`): a webhook may only be created with, or
repointed to, the bridge's URL (MLflow 3.17 lets any admin name any URL); no
route hands out a presigned or multipart S3 transfer; an experiment's artifact
location is empty or ``mlflow-artifacts:`` (any other location would make the
server sign URLs for, and write into, wherever it names with its own S3 key).

The users (:class:`~modelledger.mlops.bridge.mlflow_credentials.MlflowUser`), each with a random
password in a 0600 file ``<state>/mlflow/users/<name>.env`` that
:mod:`~modelledger.mlops.bridge.mlflow_credentials` reads; this module writes the files
(:func:`ensure_user_files`) and creates the users in MLflow (:func:`ensure_users`):

- ``admin``: MLflow's bootstrap administrator; ``mlflow up`` uses it to create the others and
  ``bridge install`` to manage the bridge's webhook; nothing else does;
- ``modelledger-bridge``: the bridge. No MLflow admin: the role :data:`BRIDGE_ROLE`
  lets it set and delete tags on every version of every model; it cannot manage
  users or webhooks, nor delete a model or (this stack's rule) a version.
  ``bridge install`` manages the webhook as ``admin`` (only admins may, in MLflow 3.17);
- ``data-scientist``: a data scientist's account, as the README shows; the demo runs as it;
- ``evaluator``: ``model evaluate``'s and the demo's evaluations. No admin and no role: the server's
  ``default_permission = READ`` lets it read every experiment, run, artefact, model and version (what an
  evaluation reads), and nothing of them may it change; it writes runs only in
  :data:`~modelledger.mlops.bridge.mlflow_credentials.EVALUATIONS_EXPERIMENT`, which
  :func:`ensure_users` creates as the evaluator (MLflow gives a creator MANAGE on its experiment).
  Like every MLflow user it may also create experiments and models of its own (MLflow 3.17 lets
  any user when workspaces are off): MLflow has no per-user switch for that.
"""

from __future__ import annotations

import functools
import secrets
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelledger.mlops.bridge.mlflow_api import rest_call
from modelledger.mlops.bridge.mlflow_credentials import (
    EVALUATIONS_EXPERIMENT,
    MlflowAuthError,
    MlflowCredentials,
    MlflowUser,
    read_user,
    user_file,
)
from modelledger.runtime.private_files import make_private_dir, write_private_file
from modelledger.runtime.settings import WEBHOOK_TARGET_ENV, MlflowSettings, webhook_target

AUTHORIZATION_FUNCTION = "modelledger.mlops.servers.tracking_auth:authenticate"
# The bridge's MLflow role, in the workspace MLflow 3.17 uses when workspaces are off: MANAGE on every
# registered model, because MLflow 3.17 asks the right to delete the model to delete one of its aliases
# (the bridge removes the aliases of a revoked version), and MANAGE on every version, because it asks
# the same right to delete a version's tag as to delete the version (the bridge removes stale ledger.*
# tags). What MANAGE allows beyond that (deleting or renaming a model or a version, changing who may
# access them) is refused to the bridge by this stack's rule (:func:`request_refusal`).
BRIDGE_ROLE = "modelledger-bridge-tagger"
BRIDGE_ROLE_WORKSPACE = "default"
BRIDGE_ROLE_GRANTS = (
    {"resource_type": "registered_model", "resource_pattern": "*", "permission": "MANAGE"},
    {"resource_type": "registered_model_version", "resource_pattern": "*", "permission": "MANAGE"},
)


def auth_config_file(settings: MlflowSettings) -> Path:
    """MLflow's basic-auth configuration (``MLFLOW_AUTH_CONFIG_PATH``); it holds no secret."""
    return settings.mlflow_dir / "basic_auth.ini"


# How long the server trusts a checked password without running PBKDF2 again (MLflow 3.17 checks every
# request, 0.16-0.43 s each, when this is 0, its default). A password changed or a user deleted through
# MLflow's API is dropped from the cache at once (the stack runs one server process); one changed in the
# user database directly stays valid up to this long.
AUTH_CACHE_TTL_SECONDS = 60


def auth_config(settings: MlflowSettings) -> str:
    """The text of :func:`auth_config_file`. The admin's password reaches the server through its environment."""
    return (
        "[mlflow]\n"
        "default_permission = READ\n"
        f"auth_cache_ttl_seconds = {AUTH_CACHE_TTL_SECONDS}\n"
        f"database_uri = sqlite:///{settings.mlflow_dir / 'basic_auth.db'}\n"
        f"admin_username = {MlflowUser.ADMIN.value}\n"
        f"authorization_function = {AUTHORIZATION_FUNCTION}\n"
        "grant_default_workspace_access = false\n"
    )


def ensure_user_files(settings: MlflowSettings) -> list[str]:
    """Generates a random password for each user that has no file yet, and keeps each file's tracking URI
    that of the server now (a changed port); returns what was done."""
    folder = settings.mlflow_dir / "users"
    make_private_dir(folder, tighten=True)
    actions = []
    for user in MlflowUser:
        path = user_file(settings, user)
        fresh = not path.exists()
        password = secrets.token_urlsafe(24) if fresh else read_user(settings, user).password
        text = (
            f"MLFLOW_TRACKING_URI={settings.tracking_uri}\n"
            f"MLFLOW_TRACKING_USERNAME={user.value}\n"
            f"MLFLOW_TRACKING_PASSWORD={password}\n"
        )
        if fresh or path.read_text() != text:
            write_private_file(path, text)
            actions.append(
                f"{'generated' if fresh else 'updated the tracking URI of'} MLflow credentials for {user.value}"
            )
    return actions


def _call(
    settings: MlflowSettings, creds: MlflowCredentials | None, method: str, path: str, body: dict | None = None
) -> tuple[int, dict[str, Any]]:
    """One REST call to the tracking server as ``creds``: (HTTP status, JSON body)."""
    return rest_call(settings.tracking_uri, method, path, creds=creds, body=body, timeout=15)


def ensure_users(settings: MlflowSettings) -> list[str]:
    """Creates the bridge's, the data scientist's and the evaluator's MLflow users as the admin, doing only
    what is missing.

    A user whose password no longer matches its file gets the file's password; none is an admin
    (one that was, on a stack set up before, is made a plain user); the bridge holds :data:`BRIDGE_ROLE`;
    the evaluator may write runs in :data:`EVALUATIONS_EXPERIMENT` (:func:`_ensure_evaluations_experiment`).

    Raises:
        MlflowAuthError: The server refused (e.g. it runs without authentication: restart it).
    """
    admin = read_user(settings, MlflowUser.ADMIN)
    actions = []
    for user in (MlflowUser.BRIDGE, MlflowUser.SCIENTIST, MlflowUser.EVALUATOR):
        creds = read_user(settings, user)
        query = urllib.parse.urlencode({"username": creds.username})
        status, doc = _call(settings, admin, "GET", f"/api/2.0/mlflow/users/get?{query}")
        if status == 404:
            status, doc = _call(
                settings,
                admin,
                "POST",
                "/api/2.0/mlflow/users/create",
                {"username": creds.username, "password": creds.password},
            )
            if status != 200:
                raise MlflowAuthError(f"MLflow refused to create user {creds.username}: HTTP {status} {doc}")
            actions.append(f"created MLflow user {creds.username}")
            is_admin = False
        elif status == 200:
            is_admin = bool(doc.get("user", {}).get("is_admin"))
            if _call(settings, creds, "GET", "/api/2.0/mlflow/users/current")[0] == 401:
                body = {"username": creds.username, "password": creds.password}
                status, doc = _call(settings, admin, "PATCH", "/api/2.0/mlflow/users/update-password", body)
                if status != 200:
                    raise MlflowAuthError(f"MLflow refused a new password for {creds.username}: HTTP {status} {doc}")
                actions.append(f"reset the MLflow password of {creds.username} to its file's")
        else:
            raise MlflowAuthError(
                f"MLflow's user API answered HTTP {status} {doc} (is the server running without authentication? "
                "run `modelledger mlflow down` and `make mlflow-up`)"
            )
        if is_admin != user.is_admin:
            body = {"username": creds.username, "is_admin": user.is_admin}
            status, doc = _call(settings, admin, "PATCH", "/api/2.0/mlflow/users/update-admin", body)
            if status != 200:
                raise MlflowAuthError(f"MLflow refused to set admin={user.is_admin} for {creds.username}: {doc}")
            actions.append(f"made {creds.username} an MLflow {'admin' if user.is_admin else 'user'}")
    actions += _ensure_bridge_role(settings, admin, read_user(settings, MlflowUser.BRIDGE).username)
    return actions + _ensure_evaluations_experiment(settings, admin, read_user(settings, MlflowUser.EVALUATOR))


def _ensure_evaluations_experiment(
    settings: MlflowSettings, admin: MlflowCredentials, evaluator: MlflowCredentials
) -> list[str]:
    """Creates :data:`EVALUATIONS_EXPERIMENT` as the evaluator (who thus holds MANAGE on it); if it exists and
    the evaluator may not write runs in it (someone else created it), grants the evaluator EDIT, no more."""
    query = urllib.parse.urlencode({"experiment_name": EVALUATIONS_EXPERIMENT})
    status, doc = _call(settings, evaluator, "GET", f"/api/2.0/mlflow/experiments/get-by-name?{query}")
    if status == 404:
        body = {"name": EVALUATIONS_EXPERIMENT}
        status, doc = _call(settings, evaluator, "POST", "/api/2.0/mlflow/experiments/create", body)
        if status != 200:
            raise MlflowAuthError(f"MLflow refused to create experiment {EVALUATIONS_EXPERIMENT}: HTTP {status} {doc}")
        return [f"created MLflow experiment {EVALUATIONS_EXPERIMENT} as {evaluator.username}"]
    if status != 200:
        raise MlflowAuthError(f"MLflow refused to read experiment {EVALUATIONS_EXPERIMENT}: HTTP {status} {doc}")
    experiment_id = str(doc.get("experiment", {}).get("experiment_id", ""))
    grant = {"username": evaluator.username, "resource_type": "experiment", "resource_id": experiment_id}
    query = urllib.parse.urlencode(grant)
    status, doc = _call(settings, admin, "GET", f"/api/3.0/mlflow/users/permissions/get?{query}")
    if status != 200:
        raise MlflowAuthError(f"MLflow refused to tell the evaluator's permission: HTTP {status} {doc}")
    if doc.get("permission") in ("EDIT", "MANAGE"):
        return []
    body = {**grant, "permission": "EDIT"}
    status, doc = _call(settings, admin, "POST", "/api/3.0/mlflow/users/permissions/grant", body)
    if status != 200:
        raise MlflowAuthError(f"MLflow refused {evaluator.username} EDIT on {EVALUATIONS_EXPERIMENT}: {status} {doc}")
    return [f"granted {evaluator.username} EDIT on MLflow experiment {EVALUATIONS_EXPERIMENT}"]


def _ensure_bridge_role(settings: MlflowSettings, admin: MlflowCredentials, bridge: str) -> list[str]:
    """Creates :data:`BRIDGE_ROLE` with its one grant and assigns it to ``bridge``, doing only what is missing."""

    def call(method: str, path: str, body: dict | None = None) -> dict[str, Any]:
        status, doc = _call(settings, admin, method, path, body)
        if status != 200:
            raise MlflowAuthError(f"MLflow refused {method} {path.split('?')[0]}: HTTP {status} {doc}")
        return doc

    actions = []
    query = urllib.parse.urlencode({"workspace": BRIDGE_ROLE_WORKSPACE})
    roles = call("GET", f"/api/3.0/mlflow/roles/list?{query}").get("roles", [])
    role = next((r for r in roles if r.get("name") == BRIDGE_ROLE), None)
    if role is None:
        body = {
            "workspace": BRIDGE_ROLE_WORKSPACE,
            "name": BRIDGE_ROLE,
            "description": "ModelLedger bridge: tags every model version",
        }
        role = call("POST", "/api/3.0/mlflow/roles/create", body)["role"]
        actions.append(f"created MLflow role {BRIDGE_ROLE}")
    role_id = role["id"]
    query = urllib.parse.urlencode({"role_id": role_id})
    grants = call("GET", f"/api/3.0/mlflow/roles/permissions/list?{query}").get("role_permissions", [])
    for wanted in BRIDGE_ROLE_GRANTS:
        if any(all(g.get(k) == v for k, v in wanted.items()) for g in grants):
            continue
        # A grant on the same resources with another permission (an earlier release's, e.g. EDIT before the
        # bridge removed aliases of revoked versions) is changed in place: MLflow allows one per resource.
        same = next(
            (g for g in grants if all(g.get(k) == wanted[k] for k in ("resource_type", "resource_pattern"))), None
        )
        if same is not None:
            body = {"role_permission_id": same["id"], "permission": wanted["permission"]}
            call("PATCH", "/api/3.0/mlflow/roles/permissions/update", body)
            actions.append(
                f"changed {BRIDGE_ROLE} on every {wanted['resource_type']} from {same.get('permission')} "
                f"to {wanted['permission']}"
            )
        else:
            call("POST", "/api/3.0/mlflow/roles/permissions/add", {"role_id": role_id, **wanted})
            actions.append(f"granted {BRIDGE_ROLE} {wanted['permission']} on every {wanted['resource_type']}")
    query = urllib.parse.urlencode({"username": bridge})
    held = call("GET", f"/api/3.0/mlflow/users/roles/list?{query}").get("roles", [])
    if not any(r.get("id") == role_id for r in held):
        call("POST", "/api/3.0/mlflow/roles/assign", {"username": bridge, "role_id": role_id})
        actions.append(f"assigned MLflow role {BRIDGE_ROLE} to {bridge}")
    return actions


# --------------------------------------------------------------------------- inside the tracking server
_WEBHOOK_CREATE = ("POST", "/mlflow/webhooks")
_WEBHOOK_UPDATE = ("PATCH", "/mlflow/webhooks/<webhook_id>")
_EXPERIMENT_CREATE = ("POST", "/mlflow/experiments/create")
_VERSION_DELETE = ("DELETE", "/mlflow/model-versions/delete")
# What the bridge's MANAGE grants would allow and the bridge never does (its aliases and tags aside).
_BRIDGE_REFUSED = (
    ("DELETE", "/mlflow/registered-models/delete"),
    ("POST", "/mlflow/registered-models/rename"),
)
# Routes that would hand a client a presigned URL signed with the server's S3 key, or a multipart
# upload straight to S3 (each under /api/2.0, /ajax-api/2.0 and any later version prefix).
_DIRECT_STORAGE_ROUTES = ("/mlflow/artifacts/presigned-upload-url", "/mlflow/artifacts/presigned-download-url")
_DIRECT_STORAGE_PREFIXES = ("/mlflow-artifacts/mpu/", "/mlflow-artifacts/presigned/")
# The one artifact location scheme a client may name: the server's own proxied store.
PROXIED_LOCATION_SCHEME = "mlflow-artifacts:"


def webhook_target_refusal(method: str, rule: str, body: Any, target: str) -> str | None:
    """Why a webhook request must be refused (None if it may go on): it would create a webhook for,
    or repoint one to, another URL than ``target``.

    Args:
        method: The HTTP method.
        rule: The Flask URL rule the request matched (e.g. ``/api/2.0/mlflow/webhooks/<webhook_id>``).
        body: The request's JSON body (None if it has none or it does not parse).
        target: The one URL webhooks may point at; empty refuses every webhook target.
    """
    if not _is_webhook_write(method, rule):
        return None
    if not isinstance(body, dict):
        return "a webhook request must have a JSON body"
    if _matches(method, rule, _WEBHOOK_UPDATE) and "url" not in body:
        return None  # keeps the stored URL
    url = body.get("url")
    if not target:
        return f"no webhook target is allowed on this server ({WEBHOOK_TARGET_ENV} is not set)"
    if url != target:
        return f"webhooks may only point at the ModelLedger bridge ({target}), not {url!r}"
    return None


def artifact_location_refusal(body: Any) -> str | None:
    """Why an experiment's ``artifact_location`` must be refused (None if it may go on): anything but
    empty or the server's proxied store (``mlflow-artifacts:``) would make the server read and write
    there with its own S3 key, and sign presigned URLs for it.

    Args:
        body: The request's JSON body (None if it has none or it does not parse).
    """
    location = body.get("artifact_location") if isinstance(body, dict) else None
    if location in (None, "") or (isinstance(location, str) and location.startswith(PROXIED_LOCATION_SCHEME)):
        return None
    return (
        f"an experiment's artifact_location may only be empty or {PROXIED_LOCATION_SCHEME}/... on this server "
        f"(artifacts go through the tracking server), not {location!r}"
    )


def request_refusal(
    method: str, rule: str, body: Callable[[], Any], target: str, username: str = ""
) -> str | None:
    """Why an authenticated request must be refused by this stack's rules (None if it may go on).

    - the bridge's user deletes no version (its role may, for MLflow 3.17 to let it delete tags), and
      deletes or renames no model and changes no permission (its role may, for MLflow 3.17 to let it
      delete aliases);
    - no presigned URL and no multipart transfer straight to S3;
    - an experiment's artifact location is empty or the proxied store (:func:`artifact_location_refusal`);
    - a webhook points only at the bridge (:func:`webhook_target_refusal`).

    Args:
        method: The HTTP method.
        rule: The Flask URL rule the request matched.
        body: Returns the request's JSON body (None if it has none or it does not parse); called only
            for a route whose rule needs the body.
        target: The one URL webhooks may point at.
        username: Who sent the request.
    """
    if username == MlflowUser.BRIDGE.value:
        if _matches(method, rule, _VERSION_DELETE):
            return "the ModelLedger bridge deletes no model version"
        if any(_matches(method, rule, route) for route in _BRIDGE_REFUSED) or "permissions" in rule:
            return "the ModelLedger bridge deletes and renames no model and changes no permission"
    if rule.endswith(_DIRECT_STORAGE_ROUTES) or any(p in rule for p in _DIRECT_STORAGE_PREFIXES):
        return "this server hands out no presigned or multipart S3 transfer: artifacts go through the tracking server"
    if _matches(method, rule, _EXPERIMENT_CREATE):
        return artifact_location_refusal(body())
    if _is_webhook_write(method, rule):
        return webhook_target_refusal(method, rule, body(), target)
    return None


def _matches(method: str, rule: str, route: tuple[str, str]) -> bool:
    return method == route[0] and rule.endswith(route[1])


def _is_webhook_write(method: str, rule: str) -> bool:
    return _matches(method, rule, _WEBHOOK_CREATE) or _matches(method, rule, _WEBHOOK_UPDATE)


def authenticate() -> Any:
    """MLflow's ``authorization_function`` in this stack: MLflow's basic-auth check, then
    :func:`request_refusal` (403) for an authenticated request."""
    from flask import jsonify, request
    from mlflow.server.auth import authenticate_request_basic_auth

    result = authenticate_request_basic_auth()
    if not hasattr(result, "username"):  # a 401 response: not authenticated
        return result
    rule = request.url_rule.rule if request.url_rule is not None else ""
    target = webhook_target()
    body = functools.partial(request.get_json, force=True, silent=True)
    reason = request_refusal(request.method, rule, body, target, result.username)
    if reason is None:
        return result
    resp = jsonify({"error_code": "PERMISSION_DENIED", "message": reason})
    resp.status_code = 403
    return resp
