"""The ledger follower: chaincode events -> MLflow tags, from the ledger's record, checkpointed after (fakes only)."""

from __future__ import annotations

import json
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace as NS
from typing import Any

import pytest

from modelledger.mlops.bridge import ledger_follower as lf
from modelledger.mlops.bridge.concurrency import VersionLocks
from modelledger.mlops.bridge.ledger_follower import LedgerFollower, VersionMirror
from modelledger.mlops.bridge.ledger_mirror import ledger_tags
from modelledger.mlops.bridge.tags import (
    TAG_ALIASES_REMOVED,
    TAG_APPROVALS,
    TAG_DEPLOYMENTS,
    TAG_EVALUATION,
    TAG_STATUS,
)
from modelledger.sdk.gateway.events import ChaincodeEvent, Checkpoint, FileCheckpointer
from modelledger.sdk.registry.client import NotFound
from modelledger.sdk.registry.records import ModelVersion, from_json

T0 = "2026-12-08T01:00:00Z"


class Missing(Exception):
    error_code = "RESOURCE_DOES_NOT_EXIST"


class FakeMlflow:
    """The registry's versions (tags, aliases); every write is logged; ``down`` fails the next that many calls."""

    def __init__(self) -> None:
        self.versions: dict[tuple[str, str], Any] = {}
        self.aliases: dict[str, dict[str, str]] = {}
        self.writes: list[tuple[str, str, str, str]] = []  # (name, version, key, value) or (..., "alias-", alias)
        self.down = 0

    def add(self, name: str, version: str, **tags: str) -> Any:
        mv = NS(name=name, version=version, tags={k.replace("_", "."): v for k, v in tags.items()})
        self.versions[(name, version)] = mv
        return mv

    def tags(self, name: str = "m", version: str = "1") -> dict[str, str]:
        return dict(self.versions[(name, version)].tags)

    def _call(self) -> None:
        if self.down:
            self.down -= 1
            raise ConnectionError("MLflow is down")

    def get_model_version(self, name: str, version: str) -> Any:
        self._call()
        if (name, version) not in self.versions:
            raise Missing(f"RESOURCE_DOES_NOT_EXIST: {name}/{version}")
        mv = self.versions[(name, version)]
        return NS(name=mv.name, version=mv.version, tags=dict(mv.tags))

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        self._call()
        self.writes.append((name, version, key, value))
        self.versions[(name, version)].tags[key] = value

    def get_registered_model_aliases(self, name: str) -> dict[str, str]:
        self._call()
        return dict(self.aliases.get(name, {}))

    def get_model_version_by_alias(self, name: str, alias: str) -> Any:
        self._call()
        if alias not in self.aliases.get(name, {}):
            raise Missing(f"RESOURCE_DOES_NOT_EXIST: alias {alias}")
        return NS(name=name, version=self.aliases[name][alias])

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        self._call()
        self.writes.append((name, self.aliases[name][alias], "alias-", alias))
        del self.aliases[name][alias]


class FakeRegistry:
    """The ledger's records as the bridge's identity reads them (chaincode JSON, through the SDK's from_json)."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], dict[str, Any]] = {}
        self.down = 0
        self.reads = 0

    def get_model_version(self, name: str, version: str) -> ModelVersion:
        self.reads += 1
        if self.down:
            self.down -= 1
            raise ConnectionError("peer0.org1 unavailable")
        if (name, version) not in self.records:
            raise NotFound(f"NOT_FOUND: model version {name}/{version}")
        return from_json(ModelVersion, self.records[(name, version)])


def approval(org: str, decision: str = "APPROVED", time: str = T0) -> dict[str, Any]:
    return {
        "actor": {"mspId": org, "role": "approver"},
        "decision": decision,
        "mspId": org,
        "time": time,
        "txId": f"tx-{org}",
        "comment": "",
    }


def evaluation(result: str = "PASSED", policy_version: int | None = 2) -> dict[str, Any]:
    # Chaincode 1.4.0's Evaluation (spec15.md); read whether or not this SDK's records know it yet.
    ev: dict[str, Any] = {
        "artifactsDigest": "a" * 64,
        "artifactsLocation": "",
        "datasetSha256": "d" * 64,
        "evaluator": {"mspId": "Org2MSP", "role": "evaluator", "certFingerprint": "f" * 64},
        "failures": [] if result != "FAILED" else ["metric accuracy = 0.5 is below the minimum 0.9"],
        "metrics": [{"key": "accuracy", "value": 0.97 if result != "FAILED" else 0.5}],
        "result": result,
        "runId": "run-e",
        "time": T0,
        "txId": "tx-eval",
    }
    if policy_version is not None:
        ev["policy"] = {
            "independentEvaluator": True,
            "requiredPasses": 1,
            "thresholds": [],
            "version": policy_version,
            "lastChange": {},
        }
    return ev


def record(status: str = "REGISTERED", **fields: Any) -> dict[str, Any]:
    return {"name": "m", "version": "1", "owner": "Org1MSP", "status": status, "registeredTxId": "tx-reg"} | fields


def event(
    block: int, tx: str, name: str = "ModelVersionApproved", version: str = "1", model: str = "m"
) -> ChaincodeEvent:
    payload = json.dumps({"name": model, "version": version, "status": "X", "mspId": "Org1MSP", "txId": tx}).encode()
    return ChaincodeEvent(block, tx, "registry", name, payload)


class Ledger:
    """The chaincode's event stream: every event after a checkpoint, in ledger order (as chaincode_events)."""

    def __init__(self, events: list[ChaincodeEvent]) -> None:
        self.events = events
        self.opened: list[Checkpoint | None] = []
        self.fail_opens = 0

    def __call__(self, cp: Checkpoint | None) -> Iterator[ChaincodeEvent]:
        self.opened.append(cp)
        if self.fail_opens:
            self.fail_opens -= 1
            raise ConnectionError("the peer's event service is down")
        for i, ev in enumerate(self.events):
            if cp is not None:
                if ev.block_number < cp.block_number:
                    continue
                if cp.transaction_id and ev.block_number == cp.block_number:
                    done = [e.transaction_id for e in self.events[: i + 1] if e.block_number == cp.block_number]
                    if cp.transaction_id in done:
                        continue
            yield ev


def follow(
    tmp_path: Path, mlflow: FakeMlflow, registry: FakeRegistry, ledger: Ledger, *, cap: float = 0.0
) -> tuple[LedgerFollower, FileCheckpointer]:
    cp = FileCheckpointer(tmp_path / "ledger-events.json")
    mirror = VersionMirror(mlflow, registry, VersionLocks(), clock=lambda: T0)
    return LedgerFollower(mirror, ledger, cp, sleep_cap=cap), cp


def drain(follower: LedgerFollower, ledger: Ledger) -> None:
    """Runs the follower over the stream once (the stream ends; run would reopen it: the stop ends the loop)."""
    stop = threading.Event()
    for ev in ledger(follower.checkpointer.checkpoint):
        assert follower.handle(ev, stop)


@pytest.fixture
def world() -> tuple[FakeMlflow, FakeRegistry]:
    mlflow, registry = FakeMlflow(), FakeRegistry()
    mlflow.add("m", "1", ledger_status="anchored", ledger_tx_id="tx-reg")
    registry.records[("m", "1")] = record()
    return mlflow, registry


# ---------------------------------------------------------------------- record -> tags
def test_a_record_gives_its_approvals_sorted_by_org_its_deployments_and_its_latest_evaluation() -> None:
    rec = from_json(
        ModelVersion,
        record(
            "DEPLOYED",
            approvals=[approval("Org2MSP", time="t2"), approval("Org1MSP", time="t1")],
            deployments=[
                {"environment": "staging", "endpoint": "https://s", "time": "t3", "txId": "tx-d1", "actor": {}},
                {"environment": "prod", "endpoint": "https://p", "time": "t4", "txId": "tx-d2", "actor": {}},
            ],
            evaluations=[evaluation("FAILED", 1), evaluation("PASSED", 2)],
        ),
    )
    tags = ledger_tags(rec)
    assert list(tags) == [TAG_APPROVALS, TAG_DEPLOYMENTS, TAG_EVALUATION]
    assert json.loads(tags[TAG_APPROVALS]) == [
        {"org": "Org1MSP", "decision": "approved", "time": "t1", "tx": "tx-Org1MSP"},
        {"org": "Org2MSP", "decision": "approved", "time": "t2", "tx": "tx-Org2MSP"},
    ]
    assert json.loads(tags[TAG_DEPLOYMENTS]) == [
        {"environment": "staging", "endpoint": "https://s", "time": "t3", "tx": "tx-d1"},
        {"environment": "prod", "endpoint": "https://p", "time": "t4", "tx": "tx-d2"},
    ]
    assert json.loads(tags[TAG_EVALUATION]) == {
        "result": "passed",
        "metrics": {"accuracy": 0.97},
        "policy_version": 2,
        "evaluator": "Org2MSP",
        "dataset_sha256": "d" * 64,
        "run_id": "run-e",
        "failures": [],
        "tx": "tx-eval",
    }


def test_an_evaluation_without_a_policy_reads_no_policy_and_a_version_without_one_has_no_evaluation_tag() -> None:
    rec = from_json(ModelVersion, record(evaluations=[evaluation("NO_POLICY", None)]))
    doc = json.loads(ledger_tags(rec)[TAG_EVALUATION])
    assert doc["result"] == "no policy" and doc["policy_version"] is None
    assert ledger_tags(from_json(ModelVersion, record())) == {}  # just registered: no more tags than anchoring's


@pytest.mark.parametrize(
    ("status", "event_name", "tag"),
    [
        ("APPROVED", "ModelVersionApproved", "approved"),
        ("REJECTED", "ModelVersionRejected", "rejected"),
        ("DEPLOYED", "ModelVersionDeployed", "deployed"),
        ("REVOKED", "ModelVersionRevoked", "revoked"),
        ("REGISTERED", "ModelVersionEvaluated", "anchored"),
    ],
)
def test_each_state_change_is_mirrored_with_the_status_written_last(
    tmp_path: Path, world: tuple[FakeMlflow, FakeRegistry], status: str, event_name: str, tag: str
) -> None:
    mlflow, registry = world
    registry.records[("m", "1")] = record(status, approvals=[approval("Org1MSP")], evaluations=[evaluation()])
    ledger = Ledger([event(5, "tx-a", event_name)])
    follower, cp = follow(tmp_path, mlflow, registry, ledger)
    drain(follower, ledger)
    assert mlflow.tags()[TAG_STATUS] == tag
    assert json.loads(mlflow.tags()[TAG_APPROVALS])[0]["org"] == "Org1MSP" and TAG_EVALUATION in mlflow.tags()
    if tag != "anchored":
        assert mlflow.writes[-1][2:] == (TAG_STATUS, tag)
    assert cp.checkpoint == Checkpoint(5, "tx-a")
    assert follower.status()["applied"] == 1 and follower.status()["block"] == 5


# ---------------------------------------------------------------------- at-least-once, idempotent
def test_a_replayed_stream_writes_nothing_and_events_out_of_order_end_in_the_ledgers_state(
    tmp_path: Path, world: tuple[FakeMlflow, FakeRegistry]
) -> None:
    mlflow, registry = world
    registry.records[("m", "1")] = record(
        "DEPLOYED",
        approvals=[approval("Org1MSP"), approval("Org2MSP")],
        deployments=[{"environment": "prod", "endpoint": "e", "time": T0, "txId": "tx-d", "actor": {}}],
        evaluations=[evaluation()],
    )
    events = [
        event(5, "tx-e", "ModelVersionEvaluated"),
        event(6, "tx-a1"),
        event(7, "tx-a2"),
        event(8, "tx-d", "ModelVersionDeployed"),
    ]
    ledger = Ledger(events)
    follower, _ = follow(tmp_path, mlflow, registry, ledger)
    drain(follower, ledger)
    first = mlflow.tags()
    writes = len(mlflow.writes)
    assert first[TAG_STATUS] == "deployed" and writes == 4  # approvals, deployments, evaluation, status: once
    # The whole stream again (a lost checkpoint), then backwards: nothing is written.
    again, _ = follow(tmp_path / "again", mlflow, registry, ledger)
    drain(again, ledger)
    for ev in reversed(events):
        assert again.handle(ev, threading.Event())
    assert len(mlflow.writes) == writes and mlflow.tags() == first
    assert again.status()["applied"] == 8


def test_the_checkpoint_moves_only_after_the_events_tags_are_written(
    tmp_path: Path, world: tuple[FakeMlflow, FakeRegistry]
) -> None:
    mlflow, registry = world
    registry.records[("m", "1")] = record("APPROVED", approvals=[approval("Org1MSP")])
    ledger = Ledger([event(5, "tx-a")])
    follower, cp = follow(tmp_path, mlflow, registry, ledger)
    order: list[str] = []
    real_set, real_checkpoint = mlflow.set_model_version_tag, cp.checkpoint_event

    def set_tag(name: str, version: str, key: str, value: str) -> None:
        order.append(key)
        real_set(name, version, key, value)

    def checkpoint_event(ev: ChaincodeEvent) -> None:
        order.append("checkpoint")
        real_checkpoint(ev)

    mlflow.set_model_version_tag = set_tag  # type: ignore[method-assign]
    cp.checkpoint_event = checkpoint_event  # type: ignore[method-assign]
    drain(follower, ledger)
    assert order == [TAG_APPROVALS, TAG_STATUS, "checkpoint"]


def test_a_crash_between_applying_and_checkpointing_applies_the_event_again_harmlessly(
    tmp_path: Path, world: tuple[FakeMlflow, FakeRegistry]
) -> None:
    mlflow, registry = world
    registry.records[("m", "1")] = record("APPROVED", approvals=[approval("Org1MSP")])
    ledger = Ledger([event(5, "tx-a"), event(6, "tx-other", "DatasetRegistered")])
    follower, cp = follow(tmp_path, mlflow, registry, ledger)

    class Killed(BaseException):
        pass

    def die(ev: ChaincodeEvent) -> None:
        raise Killed  # kill -9 after the tags, before the checkpoint

    cp.checkpoint_event = die  # type: ignore[method-assign]
    with pytest.raises(Killed):
        drain(follower, ledger)
    assert mlflow.tags()[TAG_STATUS] == "approved" and cp.checkpoint is None
    applied = list(mlflow.writes)
    # The restarted bridge: a new follower reads the checkpoint file (none), gets the event again, writes nothing.
    restarted, cp2 = follow(tmp_path, mlflow, registry, ledger)
    drain(restarted, ledger)
    assert mlflow.writes == applied and cp2.checkpoint == Checkpoint(6, "tx-other")
    assert FileCheckpointer(tmp_path / "ledger-events.json").checkpoint == Checkpoint(6, "tx-other")


def test_the_checkpoint_file_is_owner_only(tmp_path: Path, world: tuple[FakeMlflow, FakeRegistry]) -> None:
    mlflow, registry = world
    ledger = Ledger([event(5, "tx-a")])
    (tmp_path / "ledger-events.json.tmp").write_text("left by a crash")
    (tmp_path / "ledger-events.json.tmp").chmod(0o644)
    follower, _ = follow(tmp_path, mlflow, registry, ledger)
    drain(follower, ledger)
    assert stat.S_IMODE((tmp_path / "ledger-events.json").stat().st_mode) == 0o600
    assert not (tmp_path / "ledger-events.json.tmp").exists()


# ---------------------------------------------------------------------- revocation
def test_a_revoked_version_loses_every_alias_pointing_at_it_named_before_the_status(
    tmp_path: Path, world: tuple[FakeMlflow, FakeRegistry]
) -> None:
    mlflow, registry = world
    mlflow.add("m", "2", ledger_status="anchored")
    mlflow.aliases["m"] = {"champion": "1", "shadow": "1", "challenger": "2"}
    registry.records[("m", "1")] = record(
        "REVOKED", revocation={"reason": "leak", "time": T0, "txId": "tx-r", "actor": {}}
    )
    ledger = Ledger([event(9, "tx-r", "ModelVersionRevoked")])
    follower, _ = follow(tmp_path, mlflow, registry, ledger)
    drain(follower, ledger)
    assert mlflow.aliases["m"] == {"challenger": "2"}
    assert json.loads(mlflow.tags()[TAG_ALIASES_REMOVED]) == [
        {"alias": "champion", "time": T0},
        {"alias": "shadow", "time": T0},
    ]
    keys = [w[2] for w in mlflow.writes]
    assert keys.index(TAG_ALIASES_REMOVED) < keys.index("alias-") and keys[-1] == TAG_STATUS
    assert mlflow.tags()[TAG_STATUS] == "revoked"
    # Replayed: nothing left to remove, nothing written; an alias set on it again is removed, not named twice.
    n = len(mlflow.writes)
    drain(follow(tmp_path / "2", mlflow, registry, ledger)[0], ledger)
    assert len(mlflow.writes) == n
    mlflow.aliases["m"]["champion"] = "1"
    drain(follow(tmp_path / "3", mlflow, registry, ledger)[0], ledger)
    # Every removal is recorded, the same alias again too.
    assert mlflow.aliases["m"] == {"challenger": "2"} and len(json.loads(mlflow.tags()[TAG_ALIASES_REMOVED])) == 3


# ---------------------------------------------------------------------- skipped, never skipped
def test_a_version_this_mlflow_does_not_have_or_may_not_read_is_skipped_and_checkpointed(
    tmp_path: Path, world: tuple[FakeMlflow, FakeRegistry], caplog: pytest.LogCaptureFixture
) -> None:
    mlflow, registry = world
    mlflow.add("theirs", "1", ledger_status="anchored")  # in MLflow, but another org's model on the ledger
    ledger = Ledger([event(5, "tx-x", model="elsewhere"), event(6, "tx-y", model="theirs")])
    follower, cp = follow(tmp_path, mlflow, registry, ledger)
    with caplog.at_level("INFO", logger="modelledger.bridge.follower"):
        drain(follower, ledger)
    assert mlflow.writes == [] and cp.checkpoint == Checkpoint(6, "tx-y")
    assert follower.status()["skipped"] == 2 and follower.status()["applied"] == 0
    messages = [r.getMessage() for r in caplog.records]
    assert "skipped: not in this MLflow (registered elsewhere)" in messages
    assert "skipped: the bridge's identity may not read it on the ledger" in messages


@pytest.mark.parametrize("status", ["", "pending", "failed", "conflict"])
def test_a_version_not_anchored_is_left_to_anchoring(
    tmp_path: Path, world: tuple[FakeMlflow, FakeRegistry], status: str
) -> None:
    # Until anchoring compared the record with MLflow's bytes, the record may not be this version's.
    mlflow, registry = world
    mlflow.versions[("m", "1")].tags = {TAG_STATUS: status} if status else {}
    mlflow.aliases["m"] = {"champion": "1"}
    registry.records[("m", "1")] = record("REVOKED", approvals=[approval("Org1MSP")], evaluations=[evaluation()])
    ledger = Ledger([event(5, "tx-e", "ModelVersionEvaluated"), event(6, "tx-r", "ModelVersionRevoked")])
    follower, cp = follow(tmp_path, mlflow, registry, ledger)
    drain(follower, ledger)
    assert mlflow.writes == [] and mlflow.aliases["m"] == {"champion": "1"} and cp.checkpoint == Checkpoint(6, "tx-r")
    assert follower.status()["skipped"] == 2


@pytest.mark.parametrize("down", ["mlflow", "peer"])
def test_an_event_that_cannot_be_applied_is_retried_never_skipped(
    tmp_path: Path, world: tuple[FakeMlflow, FakeRegistry], down: str
) -> None:
    mlflow, registry = world
    registry.records[("m", "1")] = record("APPROVED", approvals=[approval("Org1MSP")])
    (mlflow if down == "mlflow" else registry).down = 3
    ledger = Ledger([event(5, "tx-a"), event(6, "tx-b", "ModelVersionDeployed")])
    follower, cp = follow(tmp_path, mlflow, registry, ledger)
    seen: list[Checkpoint | None] = []
    real = follower.mirror.apply

    def apply(name: str, version: str) -> str:
        seen.append(cp.checkpoint)  # the checkpoint while the event is being tried
        return real(name, version)

    follower.mirror.apply = apply  # type: ignore[method-assign]
    stop = threading.Event()
    assert follower.handle(ledger.events[0], stop)
    assert len(seen) == 4 and set(seen) == {None}  # three failures, the fourth try applied it; no checkpoint before
    assert cp.checkpoint == Checkpoint(5, "tx-a") and mlflow.tags()[TAG_STATUS] == "approved"
    status = follower.status()
    assert status["last_error"] and not status["retrying"] and status["applied"] == 1


def test_a_stop_while_an_event_is_failing_leaves_it_unchecked_for_the_next_start(
    tmp_path: Path, world: tuple[FakeMlflow, FakeRegistry]
) -> None:
    mlflow, registry = world
    registry.records[("m", "1")] = record("APPROVED")
    mlflow.down = 10**6
    ledger = Ledger([event(5, "tx-a")])
    follower, cp = follow(tmp_path, mlflow, registry, ledger, cap=0.01)
    stop = threading.Event()
    runner = threading.Thread(target=follower.run, args=(stop,))
    runner.start()
    deadline = time.monotonic() + 5
    while not follower.status()["retrying"] and time.monotonic() < deadline:
        time.sleep(0.001)
    assert follower.status()["last_error"] == "ConnectionError: MLflow is down"
    stop.set()
    runner.join(5)
    assert not runner.is_alive() and cp.checkpoint is None and mlflow.tags()[TAG_STATUS] == "anchored"


def test_a_broken_stream_is_reopened_from_the_checkpoint(
    tmp_path: Path, world: tuple[FakeMlflow, FakeRegistry]
) -> None:
    mlflow, registry = world
    registry.records[("m", "1")] = record("APPROVED")
    ledger = Ledger([event(5, "tx-a")])
    ledger.fail_opens = 2
    follower, cp = follow(tmp_path, mlflow, registry, ledger, cap=0.01)
    stop = threading.Event()
    runner = threading.Thread(target=follower.run, args=(stop,))
    runner.start()
    deadline = time.monotonic() + 5
    while cp.checkpoint is None and time.monotonic() < deadline:
        time.sleep(0.001)
    stop.set()
    runner.join(5)
    assert ledger.opened[:3] == [None, None, None] and Checkpoint(5, "tx-a") in ledger.opened[3:]
    assert mlflow.tags()[TAG_STATUS] == "approved"
    assert follower.status()["last_error"] == "ConnectionError: the peer's event service is down"


# ---------------------------------------------------------------------- the anchoring worker and the follower
def test_a_versions_lock_is_held_by_one_thread_at_a_time_and_other_versions_do_not_wait() -> None:
    locks = VersionLocks()
    inside, release = threading.Event(), threading.Event()
    order: list[str] = []

    def hold(version: str, label: str, wait: threading.Event | None = None) -> None:
        with locks.hold("m", version):
            if wait is not None:
                inside.set()
                wait.wait(5)
            order.append(label)

    first = threading.Thread(target=hold, args=("1", "first", release))
    first.start()
    inside.wait(5)
    hold("2", "other version")  # not blocked by m/1
    second = threading.Thread(target=hold, args=("1", "second"))
    second.start()
    second.join(0.2)
    assert order == ["other version"] and second.is_alive()
    release.set()
    first.join(5)
    second.join(5)
    assert order == ["other version", "first", "second"]
    assert locks._locks == {}  # forgotten once nobody holds them


def test_every_followed_event_is_a_model_version_event_but_registration() -> None:
    from modelledger.sdk.registry.records import EVENT_PAYLOADS

    version_events = {n for n in EVENT_PAYLOADS if n.startswith("ModelVersion")} | {"ModelVersionEvaluated"}
    assert version_events - {"ModelVersionRegistered"} == lf.FOLLOWED_EVENTS


def test_bridge_status_shows_the_followers_checkpoint_even_while_the_bridge_is_down(tmp_path: Path) -> None:
    from modelledger.mlops.cli.bridge import _follower_line
    from modelledger.mlops.servers.bridge_server import follower_status
    from modelledger.runtime.settings import BridgeSettings

    settings = BridgeSettings(state_dir=tmp_path, port=1)  # nothing listens there
    assert follower_status(settings) == {"block": None}
    FileCheckpointer(settings.follower_checkpoint_file).checkpoint_event(event(42, "tx-a"))
    assert follower_status(settings) == {"block": 42}
    assert _follower_line({"block": 42}) == "checkpoint: block 42"
    live = {"block": 42, "applied": 7, "skipped": 1, "last_error": "", "retrying": False, "alive": True}
    assert _follower_line(live) == "checkpoint: block 42 · 7 event(s) applied · 1 skipped"
    failing = live | {"last_error": "ConnectionError: MLflow is down", "last_error_at": T0, "retrying": True}
    assert "retrying · last error (2026-12-08T01:00:00Z): ConnectionError: MLflow is down" in str(
        _follower_line(failing)
    )


# ---------------------------------------------------------------------- an alias set after the revocation
SECRET = "alias-secret"


def alias_delivery(name: str, version: str, alias: str, delivery_id: str, ts: int | None = None, secret: str = SECRET):
    """A ``model_version_alias.created`` delivery as MLflow signs it."""
    from modelledger.mlops.bridge.webhooks import sign

    body = json.dumps(
        {
            "entity": "model_version_alias",
            "action": "created",
            "data": {"name": name, "alias": alias, "version": version},
        }
    ).encode()
    stamp = str(int(time.time()) if ts is None else ts)
    return {
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": sign(secret, delivery_id, stamp, body),
    }, body


class Bridge:
    """The parts of one bridge process that handle an alias: receiver, alias checks, the follower's mirror."""

    def __init__(self, tmp_path: Path, mlflow: FakeMlflow, registry: FakeRegistry) -> None:
        from modelledger.mlops.bridge.alias_guard import AliasChecks
        from modelledger.mlops.bridge.outbox import Outbox
        from modelledger.mlops.bridge.receiver import Receiver

        self.outbox = Outbox(tmp_path / "outbox.db")
        self.mirror = VersionMirror(mlflow, registry, VersionLocks(), clock=lambda: T0)
        self.checks = AliasChecks(self.mirror.remove_aliases_if_revoked, clock=lambda: self.now)
        self.now = 0.0
        self.receiver = Receiver(SECRET, self.outbox, lambda n, v: True, 4096, 300, on_alias=self.checks.submit)


@pytest.fixture
def revoked(world: tuple[FakeMlflow, FakeRegistry]) -> tuple[FakeMlflow, FakeRegistry]:
    """m/1 revoked on the ledger and mirrored (no alias then); m/2 anchored, with the alias challenger."""
    mlflow, registry = world
    revocation = {"reason": "leak", "time": T0, "txId": "tx-r", "actor": {}}
    registry.records[("m", "1")] = record("REVOKED", revocation=revocation)
    mlflow.versions[("m", "1")].tags[TAG_STATUS] = "revoked"
    mlflow.add("m", "2", ledger_status="anchored")
    registry.records[("m", "2")] = record(version="2")
    mlflow.aliases["m"] = {"challenger": "2"}
    return mlflow, registry


def test_an_alias_set_on_a_revoked_version_is_removed_and_recorded_without_the_answer_waiting_for_the_ledger(
    tmp_path: Path, revoked: tuple[FakeMlflow, FakeRegistry]
) -> None:
    mlflow, registry = revoked
    bridge = Bridge(tmp_path, mlflow, registry)
    mlflow.aliases["m"]["champion"] = "1"  # the data scientist, after the revocation
    answer = bridge.receiver.handle(*alias_delivery("m", "1", "champion", "d-a"))
    assert (answer.status, answer.body) == (202, {"status": "queued", "version": "m/1"})
    assert registry.reads == 0 and mlflow.writes == []  # answered before anything asked the ledger
    assert bridge.outbox.jobs() == []  # nothing stored: the reconciler's scan is the durable path
    assert bridge.checks.run_once()
    assert mlflow.aliases["m"] == {"challenger": "2"}
    assert json.loads(mlflow.tags()[TAG_ALIASES_REMOVED]) == [{"alias": "champion", "time": T0}]
    assert [w[2] for w in mlflow.writes] == [TAG_ALIASES_REMOVED, "alias-"]  # named, then removed
    assert bridge.checks.pending() == 0 and not bridge.checks.run_once()


def test_an_alias_set_on_a_version_not_revoked_is_left_alone(
    tmp_path: Path, revoked: tuple[FakeMlflow, FakeRegistry]
) -> None:
    mlflow, registry = revoked
    bridge = Bridge(tmp_path, mlflow, registry)
    mlflow.aliases["m"]["champion"] = "2"
    assert bridge.receiver.handle(*alias_delivery("m", "2", "champion", "d-b")).status == 202
    assert bridge.checks.run_once()
    assert registry.reads == 1 and mlflow.writes == []  # the ledger was asked: REGISTERED, nothing written
    assert mlflow.aliases["m"] == {"challenger": "2", "champion": "2"}
    assert bridge.mirror.remove_aliases_if_revoked("m", "2") == lf.NOT_REVOKED


@pytest.mark.parametrize("forgery", ["unsigned", "wrong secret", "stale"])
def test_an_unsigned_or_stale_alias_delivery_changes_nothing(
    tmp_path: Path, revoked: tuple[FakeMlflow, FakeRegistry], forgery: str
) -> None:
    mlflow, registry = revoked
    bridge = Bridge(tmp_path, mlflow, registry)
    mlflow.aliases["m"]["champion"] = "1"
    headers, body = alias_delivery(
        "m",
        "1",
        "champion",
        "d-f",
        ts=int(time.time()) - 3600 if forgery == "stale" else None,
        secret="wrong" if forgery == "wrong secret" else SECRET,
    )
    if forgery == "unsigned":
        del headers["X-MLflow-Signature"]
    answer = bridge.receiver.handle(headers, body)
    assert answer.status == (400 if forgery == "stale" else 401)
    assert bridge.checks.pending() == 0 and not bridge.checks.run_once()
    assert registry.reads == 0 and mlflow.writes == [] and mlflow.aliases["m"]["champion"] == "1"


def test_a_failing_alias_check_is_retried_with_backoff_then_left_to_the_reconciler(
    tmp_path: Path, revoked: tuple[FakeMlflow, FakeRegistry]
) -> None:
    mlflow, registry = revoked
    bridge = Bridge(tmp_path, mlflow, registry)
    mlflow.aliases["m"]["champion"] = "1"
    registry.down = 1
    bridge.receiver.handle(*alias_delivery("m", "1", "champion", "d-r"))
    assert bridge.checks.run_once() and bridge.checks.pending() == 1  # failed: due again in 1 s
    assert not bridge.checks.run_once()
    bridge.now = 1.0
    assert bridge.checks.run_once() and mlflow.aliases["m"] == {"challenger": "2"}
    registry.down = 10
    mlflow.aliases["m"]["champion"] = "1"
    bridge.checks.submit("m", "1")
    for _ in range(5):
        bridge.now += 60
        assert bridge.checks.run_once()
    assert bridge.checks.pending() == 0 and mlflow.aliases["m"]["champion"] == "1"  # the reconciler's now


def test_the_alias_check_takes_the_versions_lock_as_the_follower_does(revoked: tuple[FakeMlflow, FakeRegistry]) -> None:
    mlflow, registry = revoked
    locks = VersionLocks()
    mirror = VersionMirror(mlflow, registry, locks, clock=lambda: T0)
    mlflow.aliases["m"]["champion"] = "1"
    with locks.hold("m", "1"):  # the follower (or an anchoring worker) is mirroring m/1
        checking = threading.Thread(target=mirror.remove_aliases_if_revoked, args=("m", "1"))
        checking.start()
        checking.join(0.2)
        assert checking.is_alive() and registry.reads == 0 and mlflow.aliases["m"]["champion"] == "1"
    checking.join(5)
    assert mlflow.aliases["m"] == {"challenger": "2"}


class Scanned:
    """What the reconciler lists: MLflow's versions (one page) and the ledger's records (one page)."""

    def __init__(self, mlflow: FakeMlflow, registry: FakeRegistry) -> None:
        self.mlflow, self.registry = mlflow, registry

    class Page(list):  # type: ignore[type-arg]
        token = None

    def search_model_versions(self, max_results: int, page_token: str | None = None) -> Any:
        versions = self.mlflow.versions.items()
        return self.Page(NS(name=n, version=v, status="READY", tags=dict(mv.tags)) for (n, v), mv in versions)

    def list_model_versions(self, prefix: str, size: int, bookmark: str) -> Any:
        records = [from_json(ModelVersion, r) for r in self.registry.records.values()]
        return NS(records=records, bookmark="", fetched=len(records))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.mlflow, name)


def test_an_alias_acknowledged_by_a_bridge_that_crashed_is_removed_by_the_reconcilers_next_scan(
    tmp_path: Path, revoked: tuple[FakeMlflow, FakeRegistry]
) -> None:
    from modelledger.mlops.bridge.reconciler import reconcile

    mlflow, registry = revoked
    mlflow.add("other", "1", ledger_status="revoked")  # revoked too, but no alias points at it
    registry.records[("other", "1")] = record("REVOKED", name="other")
    mlflow.aliases["other"] = {}
    crashed = Bridge(tmp_path / "1", mlflow, registry)
    mlflow.aliases["m"]["champion"] = "1"
    assert crashed.receiver.handle(*alias_delivery("m", "1", "champion", "d-c")).status == 202
    del crashed  # killed after its 202: the queued check is lost with the process
    assert mlflow.aliases["m"]["champion"] == "1"
    restarted = Bridge(tmp_path / "2", mlflow, registry)  # its reconciler scans at start
    both = Scanned(mlflow, registry)
    check = restarted.mirror.remove_aliases_if_revoked
    report = reconcile(both, both, restarted.outbox, check)  # type: ignore[arg-type]
    assert report.unaliased == ["m/1"]
    assert mlflow.aliases["m"] == {"challenger": "2"}
    assert json.loads(mlflow.tags()[TAG_ALIASES_REMOVED]) == [{"alias": "champion", "time": T0}]
    assert registry.reads == 1  # only m/1 was read again: other/1 has no alias, m/2 is not revoked
    writes = len(mlflow.writes)
    assert reconcile(both, both, restarted.outbox, check).unaliased == []  # type: ignore[arg-type]
    assert len(mlflow.writes) == writes


# ---------------------------------------------------------------------- review fixes (followfix)
def test_a_permanent_failure_is_dead_lettered_at_once_and_the_checkpoint_moves_past_it(
    tmp_path: Path, world: tuple[FakeMlflow, FakeRegistry]
) -> None:
    from modelledger.mlops.bridge.dead_letters import DeadLetters, read_dead_letters
    from modelledger.mlops.bridge.outbox import Outbox
    from modelledger.mlops.bridge.reconciler import reconcile

    mlflow, registry = world
    registry.records[("m", "1")] = record("APPROVED", approvals=[approval("Org1MSP")])
    bad = ChaincodeEvent(4, "tx-bad", "registry", "ModelVersionApproved", b"not json")
    ledger = Ledger([bad, event(5, "tx-a"), event(6, "tx-b")])
    follower, cp = follow(tmp_path, mlflow, registry, ledger)
    dead = DeadLetters(tmp_path / "dead.json", clock=lambda: T0)
    follower.dead, follower.tries = dead, 3
    real = follower.mirror.apply
    calls = {"n": 0}

    class Forbidden(Exception):
        def get_http_status_code(self) -> int:
            return 403

    def apply(name: str, version: str) -> str:
        calls["n"] += 1
        if calls["n"] == 1:
            raise Forbidden("PERMISSION_DENIED")
        return real(name, version)

    follower.mirror.apply = apply  # type: ignore[method-assign]
    drain(follower, ledger)  # without the fix: the bad payload is retried for ever
    assert cp.checkpoint == Checkpoint(6, "tx-b") and calls["n"] == 2  # the 403 was not retried
    entries = read_dead_letters(tmp_path / "dead.json")
    assert [(e["name"], e["version"], e["tx_id"]) for e in entries] == [("", "", "tx-bad"), ("m", "1", "tx-a")]
    assert stat.S_IMODE((tmp_path / "dead.json").stat().st_mode) == 0o600
    assert follower.status()["dead_letters"] == 2 and follower.status()["dead_lettered"] == 2
    # The reconciler re-mirrors m/1 from its ledger record and clears it; the unparseable one stays.
    mlflow.versions[("m", "1")].tags.pop(TAG_APPROVALS)
    both = Scanned(mlflow, registry)
    report = reconcile(both, both, Outbox(tmp_path / "o.db"), None, (dead, real))  # type: ignore[arg-type]
    assert report.remirrored == ["m/1"] and TAG_APPROVALS in mlflow.tags()
    assert [e["tx_id"] for e in read_dead_letters(tmp_path / "dead.json")] == ["tx-bad"]


def test_a_transient_failure_is_dead_lettered_after_n_tries_and_a_full_list_stalls_instead_of_dropping(
    tmp_path: Path, world: tuple[FakeMlflow, FakeRegistry]
) -> None:
    from modelledger.mlops.bridge.dead_letters import DeadLetters

    mlflow, registry = world
    mlflow.down = 10**6
    ledger = Ledger([event(5, "tx-a")])
    follower, cp = follow(tmp_path, mlflow, registry, ledger)
    follower.dead, follower.tries = DeadLetters(tmp_path / "dead.json"), 3
    drain(follower, ledger)
    assert cp.checkpoint == Checkpoint(5, "tx-a") and mlflow.down == 10**6 - 3
    full, cp2 = follow(tmp_path / "full", mlflow, registry, ledger, cap=0.001)
    full.dead, full.tries = DeadLetters(tmp_path / "full" / "dead.json", limit=0), 1
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    assert not full.handle(ledger.events[0], stop) and cp2.checkpoint is None
    assert full.status()["dead_letters_full"]


def test_transient_and_permanent_failures() -> None:
    import grpc

    from modelledger.mlops.bridge.errors import is_transient
    from modelledger.sdk.gateway.errors import EvaluateError

    class Http(Exception):
        def __init__(self, code: int) -> None:
            self.code = code

    assert is_transient(ConnectionError()) and is_transient(TimeoutError())
    assert is_transient(EvaluateError("t", grpc.StatusCode.UNAVAILABLE, "down"))
    assert is_transient(EvaluateError("t", grpc.StatusCode.DEADLINE_EXCEEDED, "slow"))
    assert not is_transient(EvaluateError("t", grpc.StatusCode.PERMISSION_DENIED, "no"))
    assert is_transient(Http(503)) and is_transient(Http(429)) and not is_transient(Http(403))
    assert not is_transient(ValueError("bad json")) and not is_transient(NotFound("NOT_FOUND: x"))


def test_an_alias_that_moved_before_its_delete_is_left_alone_and_not_recorded(
    tmp_path: Path, world: tuple[FakeMlflow, FakeRegistry]
) -> None:
    mlflow, registry = world
    mlflow.add("m", "2", ledger_status="anchored")
    mlflow.aliases["m"] = {"champion": "1", "shadow": "1"}
    registry.records[("m", "1")] = record("REVOKED")
    moved = {"done": False}

    def move(name: str, alias: str) -> None:
        if alias == "champion" and not moved["done"]:
            moved["done"] = True
            mlflow.aliases["m"]["champion"] = "2"  # a data scientist moves it after the list was read

    real_get = mlflow.get_model_version_by_alias

    def get_by_alias(name: str, alias: str) -> Any:
        move(name, alias)
        return real_get(name, alias)

    mlflow.get_model_version_by_alias = get_by_alias  # type: ignore[method-assign]
    ledger = Ledger([event(9, "tx-r", "ModelVersionRevoked")])
    drain(follow(tmp_path, mlflow, registry, ledger)[0], ledger)
    assert mlflow.aliases["m"] == {"champion": "2"}  # without the fix: deleted from version 2
    assert json.loads(mlflow.tags()[TAG_ALIASES_REMOVED]) == [{"alias": "shadow", "time": T0}]


def test_an_alias_on_a_version_revoked_on_the_ledger_is_removed_whatever_its_status_tag(
    revoked: tuple[FakeMlflow, FakeRegistry],
) -> None:
    mlflow, registry = revoked
    mlflow.versions[("m", "1")].tags[TAG_STATUS] = "pending"  # e.g. a transient error overwrote it before 1.5.0
    mlflow.aliases["m"]["champion"] = "1"
    mirror = VersionMirror(mlflow, registry, VersionLocks(), clock=lambda: T0)
    assert mirror.remove_aliases_if_revoked("m", "1") == lf.APPLIED
    assert mlflow.aliases["m"] == {"challenger": "2"} and mlflow.tags()[TAG_STATUS] == "pending"


def test_endpoints_lose_credentials_query_and_fragment() -> None:
    from modelledger.mlops.bridge.ledger_mirror import public_endpoint

    assert public_endpoint("https://bob:s3cret@api.example.com:8443/v1/m?token=abc#x") == (
        "https://api.example.com:8443/v1/m"
    )
    assert public_endpoint("http://[::1]:80/p") == "http://[::1]:80/p"
    assert public_endpoint("user:pw@host/x?k=v") == "host/x"
    rec = from_json(
        ModelVersion,
        record(
            deployments=[{"environment": "p", "endpoint": "https://u:p@h/x?k=1", "time": T0, "txId": "t", "actor": {}}]
        ),
    )
    assert json.loads(ledger_tags(rec)[TAG_DEPLOYMENTS])[0]["endpoint"] == "https://h/x"


def test_a_scan_keeps_only_the_tx_and_status_of_each_record() -> None:
    import gc
    import weakref

    from modelledger.mlops.bridge.reconciler import LedgerEntry, ledger_records

    made: list[Any] = []

    class Registry:
        def list_model_versions(self, prefix: str, size: int, bookmark: str) -> Any:
            page = int(bookmark or 0)
            records = [
                from_json(ModelVersion, record(version=f"{page}-{i}", evaluations=[evaluation()])) for i in range(3)
            ]
            made.extend(weakref.ref(r) for r in records)
            return NS(records=records, bookmark=str(page + 1) if page < 2 else "", fetched=3)

    found = ledger_records(Registry())  # type: ignore[arg-type]
    gc.collect()
    assert len(found) == 9 and found[("m", "0-0")] == LedgerEntry("tx-reg", "REGISTERED")
    assert all(ref() is None for ref in made)  # without the fix: every full record is held


@pytest.mark.parametrize("outcome", ["retry", "dead"])
def test_a_failing_revived_job_never_takes_an_anchored_versions_status_back(
    world: tuple[FakeMlflow, FakeRegistry], outcome: str
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from modelledger.mlops.bridge.outcomes import Outcomes
    from modelledger.mlops.bridge.tags import TAG_ERROR, TAG_TX

    mlflow, registry = world
    registry.records[("m", "1")] = record("REVOKED")
    mlflow.versions[("m", "1")].tags |= {TAG_STATUS: "revoked", TAG_TX: "tx-reg"}
    mlflow.delete_model_version_tag = lambda n, v, k: mlflow.versions[(n, v)].tags.pop(k, None)  # type: ignore[attr-defined]
    outbox = NS(out_of_attempts=lambda a: False, retry=lambda j, r: NS(state="retry"), dead=lambda j, r: None)
    parts = NS(mlflow=mlflow, registry=registry, locks=VersionLocks())
    job = NS(name="m", version="1", key="m/1", attempts=1)
    outcomes = Outcomes(parts, outbox, ThreadPoolExecutor(1))  # type: ignore[arg-type]
    if outcome == "retry":
        outcomes.retry(job, "ConnectionError: S3 down", tag=True)  # type: ignore[arg-type]
    else:
        outcomes.dead(job, "artifacts refused")  # type: ignore[arg-type]
    tags = mlflow.tags()
    assert tags[TAG_STATUS] == "revoked" and tags[TAG_TX] == "tx-reg" and tags[TAG_ERROR]  # without the fix: gone
    # A tag the ledger does not bear out (another registration) is replaced as before.
    mlflow.versions[("m", "1")].tags[TAG_TX] = "tx-forged"
    outcomes.retry(job, "ConnectionError: S3 down", tag=True)  # type: ignore[arg-type]
    assert mlflow.tags()[TAG_STATUS] == "pending"


# ---------------------------------------------------------------------- review fixes (followfix2)
def test_a_ledger_outage_keeps_an_anchored_status_only_if_this_bridges_outbox_anchored_it(
    world: tuple[FakeMlflow, FakeRegistry],
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from modelledger.mlops.bridge.outcomes import Outcomes
    from modelledger.mlops.bridge.tags import TAG_ERROR, TAG_TX

    mlflow, registry = world
    mlflow.versions[("m", "1")].tags |= {TAG_STATUS: "approved", TAG_TX: "tx-forged"}

    def down(name: str, version: str) -> None:
        raise ConnectionError("peer down")

    registry.get_model_version = down  # type: ignore[method-assign]
    held = {"checkpoint": {"tx_id": "tx-reg", "block": 7}}
    outbox = NS(out_of_attempts=lambda a: False, retry=lambda j, r: NS(state="retry"), get=lambda n, v: NS(**held))
    parts = NS(mlflow=mlflow, registry=registry, locks=VersionLocks())
    job = NS(name="m", version="1", key="m/1", attempts=1)
    outcomes = Outcomes(parts, outbox, ThreadPoolExecutor(1))  # type: ignore[arg-type]
    outcomes.retry(job, "ConnectionError: S3 down", tag=True)  # type: ignore[arg-type]
    assert mlflow.tags()[TAG_STATUS] == "pending"  # without the fix: the forged "approved" is kept
    # The outbox anchored it under the tag's transaction (a block seen): kept, only the error written.
    mlflow.versions[("m", "1")].tags |= {TAG_STATUS: "approved", TAG_TX: "tx-reg"}
    outcomes.retry(job, "ConnectionError: S3 down", tag=True)  # type: ignore[arg-type]
    assert mlflow.tags()[TAG_STATUS] == "approved" and mlflow.tags()[TAG_ERROR] == "ConnectionError: S3 down"
    held["checkpoint"] = {"tx_id": "tx-reg"}  # submitted, its commit never seen: not anchored by this bridge
    outcomes.retry(job, "ConnectionError: S3 down", tag=True)  # type: ignore[arg-type]
    assert mlflow.tags()[TAG_STATUS] == "pending"


def test_a_damaged_dead_letter_file_is_set_aside_shown_and_followed_by_one_full_pass(
    tmp_path: Path, world: tuple[FakeMlflow, FakeRegistry], caplog: pytest.LogCaptureFixture
) -> None:
    import os

    from modelledger.mlops.bridge.dead_letters import DeadLetters
    from modelledger.mlops.bridge.outbox import Outbox
    from modelledger.mlops.bridge.reconciler import reconcile
    from modelledger.mlops.cli.bridge import _follower_line
    from modelledger.mlops.servers.bridge_server import follower_status
    from modelledger.runtime.settings import BridgeSettings

    mlflow, registry = world
    settings = BridgeSettings(state_dir=tmp_path, port=1)  # nothing listens there
    path = settings.follower_dead_letter_file
    path.parent.mkdir(parents=True, exist_ok=True)
    damaged = b'{"entries": [{"name": "m", "version": "1", "tx_id": "tx-a"'  # cut short: m/1's entry
    path.write_bytes(damaged)
    os.chmod(path, 0o600)
    dead = DeadLetters(path, clock=lambda: T0)
    aside = path.with_name(path.name + ".corrupt-20261208T010000Z")
    assert aside.read_bytes() == damaged  # without the fix: read as empty, overwritten by the next add
    assert stat.S_IMODE(aside.stat().st_mode) == 0o600
    assert any(r.levelname == "ERROR" and getattr(r, "path", "") == str(aside) for r in caplog.records)
    assert follower_status(settings)["dead_letters_set_aside"] == str(aside)
    assert str(aside) in str(_follower_line(follower_status(settings)))
    assert DeadLetters(path).full_pass_due  # asked for durably: a restart before the scan still runs it
    # The lost entry's version is stale (approved on the ledger, tagged anchored): the next scan mirrors it.
    registry.records[("m", "1")] = record("APPROVED", approvals=[approval("Org1MSP")])
    registry.records[("other", "1")] = record(name="other")  # not in this MLflow: not mirrored
    mirror = VersionMirror(mlflow, registry, VersionLocks(), clock=lambda: T0)
    both, outbox = Scanned(mlflow, registry), Outbox(tmp_path / "o.db")
    report = reconcile(both, both, outbox, None, (dead, mirror.apply))  # type: ignore[arg-type]
    assert report.full_pass == 1 and mlflow.tags()[TAG_STATUS] == "approved" and TAG_APPROVALS in mlflow.tags()
    assert not DeadLetters(path).full_pass_due
    assert reconcile(both, both, outbox, None, (dead, mirror.apply)).full_pass == 0  # type: ignore[arg-type]
    aside.unlink()  # inspected by an operator: no longer shown
    assert "dead_letters_set_aside" not in follower_status(settings)


def test_the_dead_letters_folders_are_private_whatever_the_umask(tmp_path: Path) -> None:
    import os

    from modelledger.mlops.bridge.dead_letters import DeadLetters

    old = os.umask(0o022)  # a usual umask: a folder made with the default mode would be 0755
    try:
        assert DeadLetters(tmp_path / "state" / "bridge" / "dead.json").add("m", "1", event(5, "tx-a"), "failed")
    finally:
        os.umask(old)
    for folder in (tmp_path / "state", tmp_path / "state" / "bridge"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
