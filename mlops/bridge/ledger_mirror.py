"""A model version's ledger record as MLflow tags: what the ledger follower and the anchoring worker write.

:func:`ledger_tags` maps a record to ``ledger.approvals`` (sorted by
organisation), ``ledger.deployments`` (in ledger order) and
``ledger.evaluation`` (the latest evaluation), each once it has something
to say. :func:`mirror_record` writes them, each only if it differs from what
the version holds, then (for a revoked version) removes every MLflow alias
pointing at it after naming them in ``ledger.aliases_removed``, and writes
``ledger.status`` last (:func:`~modelledger.mlops.bridge.tags.status_tag`), so
that whoever sees the status finds the rest. Both callers read the record and
write it while holding the version's lock
(:class:`~modelledger.mlops.bridge.concurrency.VersionLocks`).

- **Endpoints without secrets**: MLflow tags are readable by every MLflow
  user, so ``ledger.deployments`` gives each endpoint as
  ``scheme://host:port/path`` (:func:`public_endpoint`): user name, password,
  query string and fragment are left out. The ledger record keeps the full
  value (readable by the channel's members).
- **Aliases removed from the version they point at, each removal recorded**:
  ``ledger.aliases_removed`` gets an entry for every removal (the same alias
  removed again after being set again gets another; the last
  :data:`MAX_ALIASES_REMOVED` are kept), written before the aliases go. MLflow
  has no conditional delete: each alias is read again
  (``get_model_version_by_alias``) just before it is deleted, and left alone
  if it now points at another version. What remains is the window between that
  read and the delete (one request): an alias moved to another version in that
  window is removed from it. The entry of an alias left alone is taken out of
  the tag again.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import urllib.parse
from collections.abc import Callable
from typing import Any

from modelledger.mlops.bridge.mlflow_api import is_missing
from modelledger.mlops.bridge.tags import (
    TAG_ALIASES_REMOVED,
    TAG_APPROVALS,
    TAG_DEPLOYMENTS,
    TAG_EVALUATION,
    TAG_STATUS,
    status_tag,
)
from modelledger.sdk.registry.records import unknown_fields
from modelledger.sdk.registry.statuses import REVOKED, decision_word, result_word

__all__ = ["MAX_ALIASES_REMOVED", "ledger_tags", "mirror_record", "public_endpoint", "remove_aliases", "utc_now"]

log = logging.getLogger("modelledger.bridge.mirror")

# The longest tag value MLflow's registry accepts (MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH).
MAX_REGISTRY_TAG_VALUE = 100_000

# The removals ``ledger.aliases_removed`` keeps (the latest).
MAX_ALIASES_REMOVED = 50


def utc_now() -> str:
    """Now, in UTC, to the second (ISO 8601): the time written into ``ledger.aliases_removed``."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _field(obj: Any, snake: str) -> Any:
    """A field of a record (dataclass) or of its raw JSON (dict, camelCase): the SDK may not know the field yet."""
    if isinstance(obj, dict):
        head, *rest = snake.split("_")
        return obj.get(head + "".join(p[:1].upper() + p[1:] for p in rest), obj.get(snake))
    return getattr(obj, snake, None)


def _evaluations(record: Any) -> list[Any]:
    """The version's evaluations (chaincode 1.4.0), from the record or, with an older SDK, from its raw JSON."""
    found = getattr(record, "evaluations", None)
    if found is None:
        found = unknown_fields(record).get("evaluations")
    return list(found or [])


def public_endpoint(endpoint: str) -> str:
    """A deployment's endpoint as ``ledger.deployments`` shows it: ``scheme://host:port/path``.

    User name and password, query string and fragment are left out (they may
    hold credentials or tokens, and MLflow tags are readable by every MLflow
    user). A value that is no URL with a host loses its query and fragment, and
    anything up to an ``@`` before its first ``/``.
    """
    text = endpoint.strip()
    parts = urllib.parse.urlsplit(text)
    if parts.scheme and parts.netloc:
        host = parts.netloc.rpartition("@")[2]
        return f"{parts.scheme}://{host}{parts.path}"
    text = text.split("#", 1)[0].split("?", 1)[0]
    head, slash, tail = text.partition("/")
    return head.rpartition("@")[2] + slash + tail


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _evaluation_doc(ev: Any) -> dict[str, Any]:
    """``ledger.evaluation`` of one evaluation: its result's word (``passed``, ``failed``, ``no policy``), metrics,
    policy version (None: no policy), evaluator's organisation, hold-out dataset, run, failures, transaction."""
    metrics = {str(_field(m, "key")): _field(m, "value") for m in (_field(ev, "metrics") or [])}
    policy = _field(ev, "policy")
    evaluator = _field(ev, "evaluator")
    doc = {
        "result": result_word(str(_field(ev, "result") or "")),
        "metrics": metrics,
        "policy_version": _field(policy, "version") if policy is not None else None,
        "evaluator": _field(evaluator, "msp_id") if evaluator is not None else "",
        "dataset_sha256": _field(ev, "dataset_sha256") or "",
        "run_id": _field(ev, "run_id") or "",
        "failures": list(_field(ev, "failures") or []),
        "tx": _field(ev, "tx_id") or "",
    }
    if len(_json(doc)) > MAX_REGISTRY_TAG_VALUE:  # 1000 metrics fit; a newer limit might not
        doc["metrics"] = {}
        doc["metrics_left_out"] = len(metrics)
    return doc


def ledger_tags(record: Any) -> dict[str, str]:
    """The tags a version's ledger record gives it, in writing order, without ``ledger.status`` (written last).

    ``ledger.approvals`` (sorted by organisation) once an organisation decided, ``ledger.deployments`` (in
    ledger order) once one is recorded, ``ledger.evaluation`` (the latest) once there is one: a version just
    registered gets none (anchoring writes no more tags than before).
    """
    approvals = sorted(
        (
            {"org": a.msp_id, "decision": decision_word(a.decision), "time": a.time, "tx": a.tx_id}
            for a in record.approvals or []
        ),
        key=lambda a: a["org"],
    )
    deployments = [
        {"environment": d.environment, "endpoint": public_endpoint(d.endpoint or ""), "time": d.time, "tx": d.tx_id}
        for d in record.deployments or []
    ]
    tags = {}
    if approvals:
        tags[TAG_APPROVALS] = _json(approvals)
    if deployments:
        tags[TAG_DEPLOYMENTS] = _json(deployments)
    evaluations = _evaluations(record)
    if evaluations:
        tags[TAG_EVALUATION] = _json(_evaluation_doc(evaluations[-1]))
    return tags


def mirror_record(
    mlflow: Any, name: str, version: str, record: Any, held: dict[str, str], clock: Callable[[], str] = utc_now
) -> bool:
    """Writes ``record``'s tags on the version whose tags are ``held``, status last; True if anything changed.

    Args:
        mlflow: :class:`~modelledger.mlops.bridge.mlflow_api.MlflowApi` (or a fake with its methods).
        name: The registered model.
        version: The version.
        record: The version's ledger record (:class:`~modelledger.sdk.registry.records.ModelVersion`).
        held: The version's tags as MLflow holds them (only differing tags are written).
        clock: The time written into ``ledger.aliases_removed``.
    """
    tags = dict(held)
    changed = record.status == REVOKED and remove_aliases(mlflow, name, str(version), tags, clock)
    for tag, value in ledger_tags(record).items():
        if tags.get(tag) != value:
            mlflow.set_model_version_tag(name, version, tag, value)
            changed = True
    wanted = status_tag(record.status)
    if tags.get(TAG_STATUS) != wanted:  # last: whoever sees it finds the other tags there
        mlflow.set_model_version_tag(name, version, TAG_STATUS, wanted)
        changed = True
    return changed


def remove_aliases(mlflow: Any, name: str, version: str, tags: dict[str, str], clock: Callable[[], str]) -> bool:
    """Removes every alias pointing at the revoked version; ``ledger.aliases_removed`` names them first.

    Every removal gets an entry (the last :data:`MAX_ALIASES_REMOVED` are
    kept). The tag is written before the aliases go, so a crash in between
    leaves a tag naming aliases still there, which the event's replay removes
    (and names again). Each alias is read again just before its delete and
    left alone if it moved to another version meanwhile (its entry is then
    taken out again); ``tags`` is updated with what was written. True if
    anything was written or removed.
    """
    pointing = sorted(a for a, v in mlflow.get_registered_model_aliases(name).items() if v == version)
    if not pointing:
        return False
    earlier = _removals(tags)
    now = clock()
    named = [{"alias": a, "time": now} for a in pointing]
    _name_removals(mlflow, name, version, tags, earlier + named)
    moved: set[str] = set()
    for alias in pointing:
        try:
            target = str(mlflow.get_model_version_by_alias(name, alias).version)
        except Exception as exc:
            if not is_missing(exc):
                raise
            target = ""  # deleted meanwhile: nothing to do
        if target != version:
            moved.add(alias)
            log.info(
                "alias left alone: it moved before its removal",
                extra={"version": f"{name}/{version}", "alias": alias, "now_at": target or "(deleted)"},
            )
            continue
        try:
            mlflow.delete_registered_model_alias(name, alias)
        except Exception as exc:
            if not is_missing(exc):
                raise
        log.info("alias removed from a revoked version", extra={"version": f"{name}/{version}", "alias": alias})
    if moved:
        _name_removals(mlflow, name, version, tags, earlier + [e for e in named if e["alias"] not in moved])
    return True


def _removals(tags: dict[str, str]) -> list[dict[str, Any]]:
    """The entries ``ledger.aliases_removed`` holds (none if it is missing or not such a list)."""
    try:
        removed = json.loads(tags.get(TAG_ALIASES_REMOVED, "[]"))
    except ValueError:
        return []
    return [r for r in removed if isinstance(r, dict)] if isinstance(removed, list) else []


def _name_removals(mlflow: Any, name: str, version: str, tags: dict[str, str], entries: list[dict[str, Any]]) -> None:
    """Writes ``ledger.aliases_removed`` (the last :data:`MAX_ALIASES_REMOVED` entries) if it differs."""
    value = _json(entries[-MAX_ALIASES_REMOVED:])
    if tags.get(TAG_ALIASES_REMOVED, "[]") != value:
        mlflow.set_model_version_tag(name, version, TAG_ALIASES_REMOVED, value)
        tags[TAG_ALIASES_REMOVED] = value
