"""The MLflow calls the bridge makes, one HTTP request each.

``MlflowClient``'s ``get_model_version_download_uri``,
``set_model_version_tag`` and ``delete_model_version_tag`` first fetch the
registered model to refuse prompts: two round trips per call. A job makes
about ten such calls, several of them one after the other between the
webhook and the ``anchored`` tag, so the bridge calls MLflow's REST stores
directly (the same requests, the same credentials, retries and TLS settings
from the environment, the same entities back) and checks for prompts
itself, on the version it reads anyway (:func:`is_prompt`).

Two callers need what ``MlflowClient`` does not give: an answer within a
deadline, once (:func:`registry_has_version`, for the webhook receiver), and
the user and role API of MLflow's basic authentication
(:mod:`~modelledger.mlops.servers.tracking_auth`). Both send their requests
through the one REST helper :func:`rest_call`.

A job reads its version's run once, for locating the files and for the
provenance, through :class:`RunReadOnce`.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from functools import partial
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelledger.mlops.bridge.mlflow_credentials import MlflowCredentials

# MLflow marks both a prompt and each of its versions with this tag (``mlflow.prompt.is_prompt``).
PROMPT_TAG = "mlflow.prompt.is_prompt"


def is_prompt(mv: Any) -> bool:
    """Whether a registry version is a prompt's version (MLflow keeps prompts in the model registry)."""
    return str((getattr(mv, "tags", None) or {}).get(PROMPT_TAG, "")).lower() == "true"


def is_missing(exc: Exception) -> bool:
    """Whether an MLflow error says the entity (a version, a tag, an alias) does not exist."""
    return getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST"


def mlflow_client(tracking_uri: str) -> Any:
    """MLflow's own client of ``tracking_uri``, for what :class:`MlflowApi` does not cover (webhooks, tests)."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


class MlflowApi:
    """The subset of ``MlflowClient`` the bridge uses, with the same names and results.

    Args:
        tracking_uri: The tracking server (``http(s)://``), which also serves the registry.
    """

    def __init__(self, tracking_uri: str) -> None:
        from mlflow.entities.model_registry import ModelVersionTag
        from mlflow.store.model_registry.rest_store import RestStore as RegistryStore
        from mlflow.store.tracking.rest_store import RestStore as TrackingStore
        from mlflow.utils.credentials import get_default_host_creds

        creds = partial(get_default_host_creds, tracking_uri)
        self._registry = RegistryStore(creds)
        self._tracking = TrackingStore(creds)
        self._tag = ModelVersionTag

    def get_model_version(self, name: str, version: str) -> Any:
        return self._registry.get_model_version(name, str(version))

    def get_model_version_download_uri(self, name: str, version: str) -> str:
        return self._registry.get_model_version_download_uri(name, str(version))

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        self._registry.set_model_version_tag(name, str(version), self._tag(key, str(value)))

    def delete_model_version_tag(self, name: str, version: str, key: str) -> None:
        self._registry.delete_model_version_tag(name, str(version), key)

    def get_registered_model_aliases(self, name: str) -> dict[str, str]:
        """The registered model's aliases: alias -> the version it points at."""
        aliases = self._registry.get_registered_model(name).aliases or {}
        return {str(a): str(v) for a, v in aliases.items()}

    def get_model_version_by_alias(self, name: str, alias: str) -> Any:
        """The version ``alias`` points at now (MLflow raises RESOURCE_DOES_NOT_EXIST if it is gone)."""
        return self._registry.get_model_version_by_alias(name, alias)

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        self._registry.delete_registered_model_alias(name, alias)

    def search_model_versions(self, max_results: int, page_token: str | None = None) -> Any:
        return self._registry.search_model_versions(None, max_results, None, page_token)

    def get_run(self, run_id: str) -> Any:
        return self._tracking.get_run(run_id)

    def get_logged_model(self, model_id: str) -> Any:
        return self._tracking.get_logged_model(model_id)


class RunReadOnce:
    """One job's view of an MLflow client: each run is read at most once, every other call is passed on.

    Locating a ``runs:/`` version's files reads its run (the run's artifact
    location), and so does the provenance (its params, metrics and datasets),
    a few milliseconds later: one request serves both, and MLflow (one worker
    process) answers the job's other reads sooner. A job makes its own (its
    reads run on several threads at once: the lock is for those).

    Args:
        client: An ``MlflowClient`` or :class:`MlflowApi`.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._runs: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get_run(self, run_id: str) -> Any:
        with self._lock:
            if run_id in self._runs:
                return self._runs[run_id]
        run = self._client.get_run(run_id)
        with self._lock:
            return self._runs.setdefault(run_id, run)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def rest_call(
    tracking_uri: str,
    method: str,
    path: str,
    *,
    creds: MlflowCredentials | None = None,
    body: dict[str, Any] | None = None,
    timeout: float = 15.0,
) -> tuple[int, dict[str, Any]]:
    """One REST request to the tracking server, sent once: its HTTP status and its JSON body.

    Args:
        tracking_uri: The tracking server (``http(s)://host:port``).
        method: The HTTP method.
        path: The path and query (``/api/2.0/mlflow/...``).
        creds: Who asks (basic authentication); None sends no credentials.
        body: The JSON body, if any.
        timeout: Seconds to wait for the answer.

    Returns:
        The status, and the body as a dict (``{}`` when the answer is empty or no JSON object; an error's
        body too, so its ``error_code`` can be read).

    Raises:
        urllib.error.URLError, OSError: Nobody answered in time.
    """
    req = urllib.request.Request(
        f"{tracking_uri}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **({"Authorization": creds.header()} if creds else {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, _json_object(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, _json_object(exc.read())


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def registry_has_version(
    tracking_uri: str, name: str, version: str, user: MlflowCredentials, timeout: float = 2.0
) -> bool | None:
    """Asks the registry, quickly and once, whether a version exists: True, False, or None if it cannot tell now.

    Used by the receiver, which must answer MLflow within its 10 s webhook timeout;
    MLflow's own client would retry for minutes. It asks as ``user``. MLflow 3.17
    answers a user who is not an admin 403, not 404, for a version of a model
    that does not exist; the model itself is then asked for (404 when it does not exist).
    """
    found = _registry_get(tracking_uri, "model-versions/get", {"name": name, "version": version}, user, timeout)
    if found is None and _registry_get(tracking_uri, "registered-models/get", {"name": name}, user, timeout) is False:
        return False
    return found


def _registry_get(
    tracking_uri: str, path: str, params: dict[str, str], user: MlflowCredentials, timeout: float
) -> bool | None:
    """True if the registry answers 200, False if it says the entity does not exist, None otherwise."""
    query = f"/api/2.0/mlflow/{path}?{urllib.parse.urlencode(params)}"
    try:
        status, doc = rest_call(tracking_uri, "GET", query, creds=user, timeout=timeout)
    except (urllib.error.URLError, OSError):  # nobody answered in time: cannot tell
        return None
    if status == 200:
        return True
    if status == 404:
        return False
    return False if doc.get("error_code", "") == "RESOURCE_DOES_NOT_EXIST" else None
