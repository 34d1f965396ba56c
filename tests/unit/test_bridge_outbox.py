"""The outbox: leases, takeover, checkpoints, retries, dead letters, replay detection, durability."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelledger.mlops.bridge.outbox import SCHEMA, LeaseLostError, Outbox, backoff


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def outbox(tmp_path: Path, clock: Clock) -> Outbox:
    return Outbox(tmp_path / "b" / "outbox.db", max_attempts=3, clock=clock)


def test_a_version_is_enqueued_once_and_the_file_is_private(outbox: Outbox) -> None:
    assert outbox.enqueue("m", "1", "webhook") and not outbox.enqueue("m", "1", "reconciler")
    assert outbox.counts() == {"pending": 1, "leased": 0, "done": 0, "dead": 0, "conflict": 0}
    assert (outbox.path.stat().st_mode & 0o777) == 0o600


def test_a_delivery_id_is_accepted_once_and_creates_its_job_atomically(outbox: Outbox) -> None:
    assert outbox.accept_delivery("d1", "model_version.created", "m", "1")
    assert not outbox.accept_delivery("d1", "model_version.created", "m", "1")
    assert outbox.delivery_seen("d1") and not outbox.delivery_seen("d2")
    assert [j.key for j in outbox.jobs()] == ["m/1"] and outbox.get("m", "1").origin == "webhook"


def test_a_lease_expires_and_another_worker_takes_over_the_checkpoint(outbox: Outbox, clock: Clock) -> None:
    outbox.enqueue("m", "1", "webhook")
    a = outbox.lease("worker-a", 60)
    assert a is not None and a.attempts == 1 and outbox.lease("worker-b", 60) is None
    a = outbox.checkpoint(a, 60, pointer={"key": "k"})
    clock.now += 61
    b = outbox.lease("worker-b", 60)
    assert b is not None and b.checkpoint == {"pointer": {"key": "k"}} and b.attempts == 2
    with pytest.raises(LeaseLostError, match="the lease of worker-a is gone"):
        outbox.checkpoint(a, 60, tx_id="x")
    with pytest.raises(LeaseLostError):
        outbox.complete(a)
    outbox.complete(b, tx_id="t", block=7)
    assert outbox.get("m", "1").state == "done" and outbox.get("m", "1").checkpoint["block"] == 7


def test_transient_failures_back_off_then_die_as_revivable(outbox: Outbox, clock: Clock) -> None:
    outbox.enqueue("m", "1", "webhook")
    for attempt in (1, 2):
        job = outbox.lease("w", 60)
        after = outbox.retry(job, "peer unavailable")
        assert after.state == "pending" and after.next_at == clock.now + backoff(attempt)
        assert outbox.lease("w", 60) is None  # not due yet
        clock.now = after.next_at
    job = outbox.lease("w", 60)
    dead = outbox.retry(job, "peer unavailable")
    assert dead.state == "dead" and dead.transient and dead.reason == "gave up after 3 attempts: peer unavailable"
    assert outbox.revive("m", "1", "not on the ledger")
    assert outbox.get("m", "1").state == "pending" and outbox.get("m", "1").attempts == 0


def test_a_permanent_failure_is_not_revived(outbox: Outbox) -> None:
    outbox.enqueue("m", "1", "webhook")
    outbox.dead(outbox.lease("w", 60), "INVALID: manifest")
    assert not outbox.revive("m", "1", "not on the ledger")
    assert outbox.get("m", "1").state == "dead" and outbox.get("m", "1").reason == "INVALID: manifest"


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff(n) for n in (1, 2, 3, 4, 7, 8, 30)] == [1, 2, 4, 8, 60, 60, 60]


def test_orphaned_leases_go_back_to_pending(outbox: Outbox) -> None:
    outbox.enqueue("m", "1", "webhook")
    outbox.enqueue("m", "2", "webhook")
    outbox.lease("host:1:1:0", 300)
    outbox.lease("host:2:2:0", 300)
    assert outbox.release_orphans(lambda owner: owner == "host:2:2:0") == ["m/1"]
    assert {j.key: j.state for j in outbox.jobs()} == {"m/1": "pending", "m/2": "leased"}


def test_everything_committed_survives_a_new_process(tmp_path: Path, clock: Clock) -> None:
    first = Outbox(tmp_path / "o.db", clock=clock)
    first.accept_delivery("d1", "model_version.created", "m", "1")
    first.checkpoint(first.lease("w", 60), 60, tx_id="abc")
    second = Outbox(tmp_path / "o.db", clock=clock)  # another connection, as a restarted bridge would open
    assert second.get("m", "1").checkpoint == {"tx_id": "abc"} and second.delivery_seen("d1")


def test_old_delivery_ids_are_pruned(outbox: Outbox, clock: Clock) -> None:
    outbox.accept_delivery("old", "model_version.created", "m", "1")
    clock.now += 1000
    outbox.accept_delivery("new", "model_version.created", "m", "2")
    assert outbox.prune_deliveries(clock.now - 600) == 1
    assert not outbox.delivery_seen("old") and outbox.delivery_seen("new")


def test_a_job_that_keeps_stopping_its_worker_is_dead_lettered_at_lease_time(outbox: Outbox, clock: Clock) -> None:
    outbox.enqueue("m", "1", "webhook")
    for _ in range(3):  # leased and never finished: the worker died each time
        assert outbox.lease("w", 60) is not None
        clock.now += 61
    assert outbox.lease("w", 60) is None
    job = outbox.get("m", "1")
    assert job.state == "dead" and job.transient and job.reason.startswith("gave up after 3 attempts")


def test_a_heartbeat_keeps_the_lease(outbox: Outbox, clock: Clock) -> None:
    outbox.enqueue("m", "1", "webhook")
    job = outbox.lease("w", 60)
    for _ in range(5):
        clock.now += 50
        outbox.renew(job, 60)
        assert outbox.lease("other", 60) is None
    outbox.complete(job)


def _die_transiently(outbox: Outbox, clock: Clock) -> None:
    job = outbox.lease("w", 60)
    while (after := outbox.retry(job, "peer unavailable")).state != "dead":
        clock.now = after.next_at
        job = outbox.lease("w", 60)


def test_revivals_skip_jobs_changed_during_the_scan_and_are_capped(outbox: Outbox, clock: Clock) -> None:
    outbox.enqueue("m", "1", "webhook")
    scan_started = clock.now
    clock.now += 5
    outbox.complete(outbox.lease("w", 60))  # finished while the scan ran
    assert not outbox.revive("m", "1", "not on the ledger", not_after=scan_started)
    assert outbox.revive("m", "1", "not on the ledger")  # revival 1
    _die_transiently(outbox, clock)
    assert outbox.revive("m", "1", "not on the ledger")  # revival 2
    _die_transiently(outbox, clock)
    assert outbox.revive("m", "1", "not on the ledger")  # revival 3
    _die_transiently(outbox, clock)
    assert not outbox.revive("m", "1", "not on the ledger")
    assert outbox.get("m", "1").state == "dead" and outbox.get("m", "1").revivals == 3


def test_an_operator_can_requeue_a_dead_job_but_not_a_busy_one(outbox: Outbox) -> None:
    outbox.enqueue("m", "1", "webhook")
    job = outbox.checkpoint(outbox.lease("w", 60), 60, pointer={"key": "k"})
    assert not outbox.requeue("m", "1", "retried")  # leased: someone works on it
    outbox.dead(job, "scheme 'runs' is not an allowed artifact store")
    assert outbox.requeue("m", "1", "retried by an operator")
    again = outbox.get("m", "1")
    assert (again.state, again.attempts, again.reason) == ("pending", 0, "retried by an operator")
    assert again.checkpoint == {}  # the job starts over: what the failed run produced is recomputed
    assert outbox.requeue("x", "9", "retried")  # unknown: a new job


def test_a_conflict_ends_the_job_until_an_operator_requeues_it(outbox: Outbox) -> None:
    outbox.enqueue("m", "1", "webhook")
    job = outbox.lease("w", 60)
    outbox.conflict(job, "the ledger's record differs")
    assert outbox.get("m", "1").state == "conflict" and outbox.counts()["conflict"] == 1
    assert outbox.lease("w", 60) is None and not outbox.revive("m", "1", "reconciler")
    assert outbox.requeue("m", "1", "checked again") and outbox.get("m", "1").state == "pending"


def test_an_outbox_made_before_the_conflict_state_takes_it_and_keeps_its_jobs(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    old_schema = SCHEMA.replace(", 'conflict'", "").replace("    revivals     INTEGER NOT NULL DEFAULT 0,\n", "")
    assert "'conflict'" not in old_schema and "revivals" not in old_schema
    db.executescript(old_schema)
    db.execute(
        "INSERT INTO jobs (key, name, version, state, next_at, origin, created_at, updated_at, checkpoint)"
        " VALUES ('m/1', 'm', '1', 'done', 1, 'webhook', 1, 2, '{\"tx_id\": \"t\"}')"
    )
    db.commit()
    db.close()
    outbox = Outbox(path)
    job = outbox.get("m", "1")
    assert job is not None and job.state == "done" and job.checkpoint == {"tx_id": "t"} and job.updated_at == 2
    assert outbox.requeue("m", "1", "again")
    outbox.conflict(outbox.lease("w", 60), "differs")
    assert outbox.get("m", "1").state == "conflict"
    Outbox(path)  # opening it again changes nothing
    assert outbox.get("m", "1").state == "conflict"
    db = sqlite3.connect(path)
    indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'jobs'")}
    assert "jobs_ready" in indexes and db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'jobs_before_conflict'").fetchone()


def test_the_outboxs_folders_are_private_whatever_the_umask(tmp_path: Path) -> None:
    import os

    old = os.umask(0o022)  # a usual umask: a folder made with the default mode would be 0755
    try:
        Outbox(tmp_path / "state" / "bridge" / "outbox.db")
    finally:
        os.umask(old)
    for folder in (tmp_path / "state", tmp_path / "state" / "bridge"):
        assert (folder.stat().st_mode & 0o777) == 0o700, folder
