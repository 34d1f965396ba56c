"""The MLflow calls the bridge makes, one HTTP request each.

``MlflowClient``'s ``get_model_version_download_uri``,
``set_model_version_tag`` and ``delete_model_version_tag`` first fetch the
registered model to refuse prompts: two round trips per call. A job makes
about ten such calls, several of them one after the other between the
webhook and the ``anchored`` tag, so the bridge calls MLflow's REST stores
directly (the same requests, the same credentials, retries and TLS settings
from the environment, the same entities back) and checks for prompts
itself, on the version it reads anyway (:func:`is_prompt`).
"""

from __future__ import annotations

from functools import partial
from typing import Any

# MLflow marks both a prompt and each of its versions with this tag (``mlflow.prompt.is_prompt``).
PROMPT_TAG = "mlflow.prompt.is_prompt"


def is_prompt(mv: Any) -> bool:
    """Whether a registry version is a prompt's version (MLflow keeps prompts in the model registry)."""
    return str((getattr(mv, "tags", None) or {}).get(PROMPT_TAG, "")).lower() == "true"


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

    def search_model_versions(self, max_results: int, page_token: str | None = None) -> Any:
        return self._registry.search_model_versions(None, max_results, None, page_token)

    def get_run(self, run_id: str) -> Any:
        return self._tracking.get_run(run_id)

    def get_logged_model(self, model_id: str) -> Any:
        return self._tracking.get_logged_model(model_id)
