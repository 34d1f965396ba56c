"""Installing the bridge's webhook in MLflow (``modelledger bridge install``): the sending side of :mod:`webhooks`.

MLflow 3.17 lets only admins manage webhooks, so this acts as MLflow's
``admin``; the bridge's own user is no admin. The webhook's secret is
generated here and kept 0600 in ``<state>/bridge/webhook-secret``, where the
receiver reads it (:class:`~modelledger.mlops.bridge.webhook_secret.SecretFile`).
"""

from __future__ import annotations

import secrets
from typing import Any

from modelledger.mlops.bridge.errors import BridgeError
from modelledger.mlops.bridge.mlflow_api import mlflow_client
from modelledger.mlops.bridge.mlflow_credentials import MlflowAuthError, MlflowUser, acting_as
from modelledger.mlops.bridge.webhooks import EVENTS
from modelledger.runtime.private_files import write_private_file
from modelledger.runtime.settings import BridgeSettings, MlflowSettings

WEBHOOK_NAME = "modelledger-bridge"


def install_webhook(settings: BridgeSettings, mlflow: MlflowSettings, rotate: bool = False) -> str:
    """Creates (or updates) the bridge's webhook in MLflow with a generated secret; returns what was done.

    It acts as MLflow's ``admin`` (MLflow 3.17 lets only admins manage webhooks;
    the bridge's own user is no admin). The secret is kept 0600 in ``<state>/bridge/webhook-secret``;
    ``rotate`` makes a new one. MLflow stores it encrypted and never shows it again.
    Every other webhook whose URL is not the bridge's is deleted, and named in what is returned:
    a stack upgraded from an anonymous MLflow server may hold webhooks anyone created, and
    an admin's PATCH that names no URL could make one active again.
    """
    try:
        with acting_as(mlflow, MlflowUser.ADMIN):
            return _install_webhook(mlflow_client(mlflow.tracking_uri), settings, rotate)
    except MlflowAuthError as exc:
        raise BridgeError(str(exc)) from exc


def _all_webhooks(client: Any) -> list[Any]:
    """Every webhook MLflow holds, page after page."""
    hooks: list[Any] = []
    token: str | None = None
    while True:
        page = client.list_webhooks(max_results=100, page_token=token)
        hooks.extend(page)
        token = page.token
        if not token:
            return hooks


def _install_webhook(client: Any, settings: BridgeSettings, rotate: bool) -> str:
    """``install_webhook``'s work through ``client`` (an ``mlflow.MlflowClient`` acting as MLflow's admin)."""
    secret_file = settings.secret_file
    fresh = rotate or not secret_file.exists()
    # A new secret reaches the file only once MLflow holds it, so the two never disagree.
    secret = secrets.token_urlsafe(32) if fresh else secret_file.read_text().strip()
    hooks = _all_webhooks(client)
    removed: list[str] = []
    for foreign in (w for w in hooks if w.url != settings.webhook_url):
        client.delete_webhook(foreign.webhook_id)
        removed.append(f"deleted webhook {foreign.webhook_id} ({foreign.name!r}) pointing at {foreign.url}")
    existing = [w for w in hooks if w.name == WEBHOOK_NAME and w.url == settings.webhook_url]
    events = list(EVENTS)
    if existing:
        hook = existing[0]
        wanted = {str(e) for e in events}
        same = {str(e) for e in hook.events} == wanted
        if same and not fresh and hook.status.is_active():
            return "; ".join([*removed, f"webhook {hook.webhook_id} already installed for {settings.webhook_url}"])
        client.update_webhook(hook.webhook_id, url=settings.webhook_url, events=events, secret=secret, status="ACTIVE")
        done = f"updated webhook {hook.webhook_id} ({'new secret' if fresh else 'events/status'})"
    else:
        hook = client.create_webhook(
            name=WEBHOOK_NAME,
            url=settings.webhook_url,
            events=events,
            description="ModelLedger: anchors every new model version on the ledger",
            secret=secret,
            status="ACTIVE",
        )
        done = f"created webhook {hook.webhook_id} for {settings.webhook_url}"
    if fresh:
        write_private_file(secret_file, secret + "\n")
    return "; ".join([*removed, done])
