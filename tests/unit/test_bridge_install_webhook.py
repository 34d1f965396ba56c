"""``bridge install`` against a fake MLflow client: the bridge's webhook, and no one else's."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from mlflow.entities.webhook import Webhook, WebhookEvent, WebhookStatus
from mlflow.store.entities.paged_list import PagedList

from modelledger.mlops.bridge.webhook_install import WEBHOOK_NAME, _install_webhook
from modelledger.mlops.bridge.webhooks import EVENTS
from modelledger.runtime.settings import BridgeSettings


class FakeMlflow:
    """The webhook calls of ``mlflow.MlflowClient``, paging two hooks at a time."""

    PAGE = 2

    def __init__(self) -> None:
        self.hooks: dict[str, Webhook] = {}
        self._ids = (str(i) for i in itertools.count(1))

    def add(self, name: str, url: str, status: str = "ACTIVE", events: list[Any] | None = None) -> str:
        wid = next(self._ids)
        events = [WebhookEvent.from_str(str(e)) for e in (events or EVENTS)]
        self.hooks[wid] = Webhook(wid, name, url, events, 0, 0, status=WebhookStatus(status))
        return wid

    def list_webhooks(self, max_results: int | None = None, page_token: str | None = None) -> PagedList[Webhook]:
        start = int(page_token or 0)
        ids = sorted(self.hooks, key=int)
        end = start + min(self.PAGE, max_results or self.PAGE)
        return PagedList([self.hooks[i] for i in ids[start:end]], str(end) if end < len(ids) else None)

    def delete_webhook(self, webhook_id: str) -> None:
        del self.hooks[webhook_id]

    def create_webhook(self, name: str, url: str, events: list[Any], **_: Any) -> Webhook:
        return self.hooks[self.add(name, url, events=events)]

    def update_webhook(self, webhook_id: str, url: str, events: list[Any], status: str, **_: Any) -> Webhook:
        old = self.hooks.pop(webhook_id)
        self.hooks[webhook_id] = Webhook(
            webhook_id,
            old.name,
            url,
            [WebhookEvent.from_str(str(e)) for e in events],
            0,
            0,
            status=WebhookStatus(status),
        )
        return self.hooks[webhook_id]


def _settings(tmp_path: Path) -> BridgeSettings:
    return BridgeSettings(state_dir=tmp_path)


def test_every_webhook_pointing_elsewhere_is_deleted_and_reported(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    mlflow = FakeMlflow()
    spy = mlflow.add("spy", "http://198.51.100.7/collect")
    dormant = mlflow.add("dormant", "http://198.51.100.7/later", status="DISABLED")
    ours_elsewhere = mlflow.add(WEBHOOK_NAME, "http://127.0.0.1:9/old-bridge")
    last = mlflow.add("last-page", "https://example.org/hook")  # on the second page

    done = _install_webhook(mlflow, settings, rotate=False)

    assert [(w.name, w.url, w.status.is_active()) for w in mlflow.hooks.values()] == [
        (WEBHOOK_NAME, settings.webhook_url, True)
    ]
    for wid, url in ((spy, "/collect"), (dormant, "/later"), (ours_elsewhere, "/old-bridge"), (last, "example.org")):
        assert f"deleted webhook {wid} " in done and url in done, (wid, done)
    assert "created webhook" in done


def test_an_installed_bridge_webhook_is_kept_and_strangers_still_removed(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    mlflow = FakeMlflow()
    _install_webhook(mlflow, settings, rotate=False)
    (ours,) = mlflow.hooks
    stranger = mlflow.add("stranger", "http://198.51.100.7/collect")

    done = _install_webhook(mlflow, settings, rotate=False)

    assert list(mlflow.hooks) == [ours]
    assert f"deleted webhook {stranger} ('stranger') pointing at http://198.51.100.7/collect" in done
    assert f"webhook {ours} already installed" in done
    assert _install_webhook(mlflow, settings, rotate=False) == (
        f"webhook {ours} already installed for {settings.webhook_url}"
    )
