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

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        self._call()
        self.writes.append((name, self.aliases[name][alias], "alias-", alias))
        del self.aliases[name][alias]


class FakeRegistry:
    """The ledger's records as the bridge's identity reads them (chaincode JSON, through the SDK's from_json)."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], dict[str, Any]] = {}
        self.down = 0

    def get_model_version(self, name: str, version: str) -> ModelVersion:
        if self.down:
            self.down -= 1
            raise ConnectionError("peer0.org1 unavailable")
        if (name, version) not in self.records:
            raise NotFound(f"NOT_FOUND: model version {name}/{version}")
        return from_json(ModelVersion, self.records[(name, version)])


def approval(org: str, decision: str = "APPROVED", time: str = T0) -> dict[str, Any]:
    return {"actor": {"mspId": org, "role": "approver"}, "decision": decision, "mspId": org, "time": time,
            "txId": f"tx-{org}", "comment": ""}


def evaluation(result: str = "PASSED", policy_version: int | None = 2) -> dict[str, Any]:
    # Chaincode 1.4.0's Evaluation (spec15.md); read whether or not this SDK's records know it yet.
    ev: dict[str, Any] = {
        "artifactsDigest": "a" * 64, "artifactsLocation": "", "datasetSha256": "d" * 64,
        "evaluator": {"mspId": "Org2MSP", "role": "evaluator", "certFingerprint": "f" * 64},
        "failures": [] if result != "FAILED" else ["metric accuracy = 0.5 is below the minimum 0.9"],
        "metrics": [{"key": "accuracy", "value": 0.97 if result != "FAILED" else 0.5}],
        "result": result, "runId": "run-e", "time": T0, "txId": "tx-eval",
    }
    if policy_version is not None:
        ev["policy"] = {"independentEvaluator": True, "requiredPasses": 1, "thresholds": [], "version": policy_version,
                        "lastChange": {}}
    return ev


def record(status: str = "REGISTERED", **fields: Any) -> dict[str, Any]:
    return {"name": "m", "version": "1", "owner": "Org1MSP", "status": status, "registeredTxId": "tx-reg"} | fields


def event(block: int, tx: str, name: str = "ModelVersionApproved", version: str = "1", model: str = "m") -> ChaincodeEvent:
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
        "result": "passed", "metrics": {"accuracy": 0.97}, "policy_version": 2, "evaluator": "Org2MSP",
        "dataset_sha256": "d" * 64, "run_id": "run-e", "failures": [], "tx": "tx-eval",
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
    events = [event(5, "tx-e", "ModelVersionEvaluated"), event(6, "tx-a1"), event(7, "tx-a2"),
              event(8, "tx-d", "ModelVersionDeployed")]
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
    registry.records[("m", "1")] = record("REVOKED", revocation={"reason": "leak", "time": T0, "txId": "tx-r", "actor": {}})
    ledger = Ledger([event(9, "tx-r", "ModelVersionRevoked")])
    follower, _ = follow(tmp_path, mlflow, registry, ledger)
    drain(follower, ledger)
    assert mlflow.aliases["m"] == {"challenger": "2"}
    assert json.loads(mlflow.tags()[TAG_ALIASES_REMOVED]) == [
        {"alias": "champion", "time": T0}, {"alias": "shadow", "time": T0}
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
    assert mlflow.aliases["m"] == {"challenger": "2"} and len(json.loads(mlflow.tags()[TAG_ALIASES_REMOVED])) == 2


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


def test_a_broken_stream_is_reopened_from_the_checkpoint(tmp_path: Path, world: tuple[FakeMlflow, FakeRegistry]) -> None:
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
    assert "retrying · last error (2026-12-08T01:00:00Z): ConnectionError: MLflow is down" in str(_follower_line(failing))
