"""The durable outbox: one job per model version to anchor, in SQLite (WAL, synchronous FULL).

A webhook is acknowledged only after its job is committed here, and a job
leaves the outbox only as ``done`` (a VALID commit was seen and recorded) or
``dead`` (with a reason), or as ``conflict``: the ledger already holds a
record of the version that does not match the bytes MLflow holds (the
reason names the files and the record's registrant). In between:

- **Leases.** A worker takes a job for ``lease_seconds``; if it crashes, the
  lease expires and another worker (or the restarted bridge) takes the job
  over. Every write a worker makes checks that it still holds the lease.
- **Checkpoints.** Each step stores what it produced (manifest, pointer,
  transaction id) in the job, so a job taken over resumes instead of
  repeating work that is already durable.
- **Retries.** A transient failure puts the job back with exponential backoff
  (1 s, 2 s, 4 s ... capped at 60 s); after ``max_attempts`` it is dead with
  ``transient = 1`` so that the reconciler may revive it later. A permanent
  failure (a refusal, a bad source) is dead at once.
- **Deliveries.** Accepted webhook delivery ids are kept (for replay
  detection) in the same transaction as the job they created.

Times come from an injectable clock so tests can move them.

Why this module is long: every state a job can be in, and every transition
between them, is one SQLite statement guarded by the lease; they read best
together with the schema (and its in-place migration) they act on, so that
no transition can be checked against a different definition of a state.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelledger.runtime.private_files import make_private_dir

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    key          TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    version      TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('pending', 'leased', 'done', 'dead', 'conflict')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      REAL NOT NULL,
    lease_owner  TEXT NOT NULL DEFAULT '',
    lease_until  REAL NOT NULL DEFAULT 0,
    reason       TEXT NOT NULL DEFAULT '',
    transient    INTEGER NOT NULL DEFAULT 0,
    revivals     INTEGER NOT NULL DEFAULT 0,
    checkpoint   TEXT NOT NULL DEFAULT '{}',
    origin       TEXT NOT NULL,
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_ready ON jobs (state, next_at);
CREATE TABLE IF NOT EXISTS deliveries (
    id           TEXT PRIMARY KEY,
    event        TEXT NOT NULL,
    job_key      TEXT NOT NULL,
    received_at  REAL NOT NULL
);
"""

STATES = ("pending", "leased", "done", "dead", "conflict")
BACKOFF_CAP = 60.0
MAX_REVIVALS = 3  # the reconciler revives a transiently dead job at most this often


class LeaseLostError(Exception):
    """The job's lease expired and another worker took it; this worker must stop working on it."""


def job_key(name: str, version: str) -> str:
    """The outbox key of a model version."""
    return f"{name}/{version}"


def backoff(attempts: int) -> float:
    """Seconds before the next try after ``attempts`` tries: 1, 2, 4 ... capped at 60."""
    return float(min(BACKOFF_CAP, 2 ** max(0, attempts - 1)))


@dataclass(frozen=True)
class Job:
    """One model version to anchor, as the outbox holds it."""

    key: str
    name: str
    version: str
    state: str
    attempts: int
    next_at: float
    lease_owner: str
    lease_until: float
    reason: str
    transient: bool
    revivals: int
    origin: str
    created_at: float
    updated_at: float
    checkpoint: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def _from_row(cls, row: sqlite3.Row) -> Job:
        d = dict(row)
        d["checkpoint"] = json.loads(d["checkpoint"])
        d["transient"] = bool(d["transient"])
        return cls(**d)


class Outbox:
    """The jobs and deliveries of one bridge (see the module docstring).

    Args:
        path: The SQLite file (created with its folder, mode 0600).
        max_attempts: Tries of a job before it is dead.
        clock: Seconds since the epoch (``time.time`` by default).
    """

    def __init__(self, path: Path, max_attempts: int = 12, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.max_attempts = max_attempts
        self.clock = clock
        make_private_dir(self.path.parent)  # it and each missing parent 0700, whatever the umask
        if not self.path.exists():
            self.path.touch(mode=0o600)
        self._local = threading.local()
        self._db().executescript(SCHEMA)  # idempotent DDL; executescript manages its own transaction
        columns = {r["name"] for r in self._db().execute("PRAGMA table_info(jobs)").fetchall()}
        if "revivals" not in columns:  # an outbox made before the column existed
            self._db().execute("ALTER TABLE jobs ADD COLUMN revivals INTEGER NOT NULL DEFAULT 0")
        self._allow_conflict_state()

    def _allow_conflict_state(self) -> None:
        """An outbox made before the ``conflict`` state: its table is rebuilt with the new CHECK, rows kept."""
        def done(db: sqlite3.Connection) -> bool:
            sql = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'jobs'").fetchone()["sql"]
            return "'conflict'" in sql

        if done(self._db()):
            return
        with self._tx() as tx:
            if done(tx):  # another process migrated it meanwhile
                return
            tx.execute("ALTER TABLE jobs RENAME TO jobs_before_conflict")
            tx.execute("DROP INDEX IF EXISTS jobs_ready")
            for statement in SCHEMA.split(";"):  # not executescript, which would commit mid-way
                if statement.strip() and "deliveries" not in statement:
                    tx.execute(statement)
            columns = ", ".join(r["name"] for r in tx.execute("PRAGMA table_info(jobs_before_conflict)").fetchall())
            tx.execute(f"INSERT INTO jobs ({columns}) SELECT {columns} FROM jobs_before_conflict")
            tx.execute("DROP TABLE jobs_before_conflict")

    def out_of_attempts(self, attempts: int) -> bool:
        """Whether a job that has been tried ``attempts`` times may not be tried again."""
        return attempts >= self.max_attempts

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=True)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=30000")
            self._local.db = db
        return db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction (the write lock is taken at the start, so reads inside are current)."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    # ------------------------------------------------------------------ intake
    def _enqueue(self, db: sqlite3.Connection, name: str, version: str, origin: str) -> bool:
        now = self.clock()
        cur = db.execute(
            "INSERT INTO jobs (key, name, version, state, next_at, origin, created_at, updated_at)"
            " VALUES (?, ?, ?, 'pending', ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
            (job_key(name, version), name, version, now, origin, now, now),
        )
        return cur.rowcount == 1

    def enqueue(self, name: str, version: str, origin: str) -> bool:
        """Adds a job for the version unless one exists (whatever its state); True if added."""
        with self._tx() as db:
            return self._enqueue(db, name, version, origin)

    def accept_delivery(self, delivery_id: str, event: str, name: str, version: str) -> bool:
        """Records a webhook delivery and enqueues its version, atomically.

        Returns:
            False if this delivery id was seen before (a replay or a retry): nothing changes then.
        """
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO deliveries (id, event, job_key, received_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (id) DO NOTHING",
                (delivery_id, event, job_key(name, version), self.clock()),
            )
            if cur.rowcount == 0:
                return False
            if name:
                self._enqueue(db, name, version, "webhook")
            return True

    def delivery_seen(self, delivery_id: str) -> bool:
        row = self._db().execute("SELECT 1 FROM deliveries WHERE id = ?", (delivery_id,)).fetchone()
        return row is not None

    def prune_deliveries(self, older_than: float) -> int:
        """Forgets delivery ids received before ``older_than`` (they would be refused as stale anyway)."""
        with self._tx() as db:
            return db.execute("DELETE FROM deliveries WHERE received_at < ?", (older_than,)).rowcount

    def revive(self, name: str, version: str, reason: str, not_after: float | None = None) -> bool:
        """Puts a done or transiently dead job back to pending (the reconciler found it not anchored).

        Its copy (``pointer``, ``manifest``) is forgotten, so the worker reads
        MLflow's files again; the transaction and provenance it registered stay.

        A transiently dead job is revived at most ``MAX_REVIVALS`` times; a job
        that changed after ``not_after`` (e.g. finished during the scan that
        found it) is left alone.
        """
        now = self.clock()
        with self._tx() as db:
            cur = db.execute(
                "UPDATE jobs SET state = 'pending', attempts = 0, next_at = ?, reason = ?, transient = 0,"
                " revivals = revivals + 1, checkpoint = json_remove(checkpoint, '$.pointer', '$.manifest'),"
                " updated_at = ?"
                " WHERE key = ? AND updated_at <= ? AND (state = 'done'"
                " OR (state = 'dead' AND transient = 1 AND revivals < ?))",
                (now, reason, now, job_key(name, version), now if not_after is None else not_after, MAX_REVIVALS),
            )
            return cur.rowcount == 1

    def requeue(self, name: str, version: str, reason: str) -> bool:
        """An operator's retry: a dead, done or conflict job starts over, with fresh attempts and no checkpoint.

        Returns:
            False if the job is pending or leased (it is already being handled).
        """
        now = self.clock()
        with self._tx() as db:
            cur = db.execute(
                "UPDATE jobs SET state = 'pending', attempts = 0, revivals = 0, transient = 0, next_at = ?, reason = ?,"
                " checkpoint = '{}', updated_at = ? WHERE key = ? AND state IN ('dead', 'done', 'conflict')",
                (now, reason, now, job_key(name, version)),
            )
            if cur.rowcount == 0:
                return self._enqueue(db, name, version, "operator")
            return True

    # ------------------------------------------------------------------ work
    def release_orphans(self, owner_alive: Callable[[str], bool]) -> list[str]:
        """Returns to pending the leased jobs whose owner is known to be gone (a crashed bridge on this host).

        Without this a restarted bridge would wait for the old leases to expire.
        """
        now = self.clock()
        with self._tx() as db:
            rows = db.execute("SELECT key, lease_owner FROM jobs WHERE state = 'leased'").fetchall()
            gone = [r["key"] for r in rows if not owner_alive(r["lease_owner"])]
            for key in gone:
                db.execute(
                    "UPDATE jobs SET state = 'pending', next_at = ?, lease_owner = '', lease_until = 0, updated_at = ?"
                    " WHERE key = ? AND state = 'leased'",
                    (now, now, key),
                )
            return gone

    def lease(self, owner: str, lease_seconds: float) -> Job | None:
        """Takes the next ready job (pending and due, or leased with an expired lease), or None.

        A job whose tries are used up (e.g. it crashed its worker every time) is
        dead-lettered here instead of being handed out again.
        """
        now = self.clock()
        with self._tx() as db:
            while True:
                row = db.execute(
                    "SELECT key, attempts, reason FROM jobs WHERE (state = 'pending' AND next_at <= ?)"
                    " OR (state = 'leased' AND lease_until < ?) ORDER BY next_at, created_at LIMIT 1",
                    (now, now),
                ).fetchone()
                if row is None:
                    return None
                if not self.out_of_attempts(row["attempts"]):
                    break
                db.execute(
                    "UPDATE jobs SET state = 'dead', transient = 1, reason = ?, lease_owner = '', lease_until = 0,"
                    " updated_at = ? WHERE key = ?",
                    (
                        f"gave up after {row['attempts']} attempts: {row['reason'] or 'the worker stopped mid-job'}",
                        now,
                        row["key"],
                    ),
                )
            db.execute(
                "UPDATE jobs SET state = 'leased', lease_owner = ?, lease_until = ?, attempts = attempts + 1,"
                " updated_at = ? WHERE key = ?",
                (owner, now + lease_seconds, now, row["key"]),
            )
            return Job._from_row(db.execute("SELECT * FROM jobs WHERE key = ?", (row["key"],)).fetchone())

    def _owned(self, db: sqlite3.Connection, job: Job) -> sqlite3.Row:
        row = db.execute("SELECT * FROM jobs WHERE key = ?", (job.key,)).fetchone()
        if row is None or row["state"] != "leased" or row["lease_owner"] != job.lease_owner:
            raise LeaseLostError(f"{job.key}: the lease of {job.lease_owner} is gone")
        return row

    def renew(self, job: Job, lease_seconds: float) -> None:
        """Extends the lease while the worker is busy (a heartbeat).

        Raises:
            LeaseLostError: Another worker owns the job now.
        """
        now = self.clock()
        with self._tx() as db:
            self._owned(db, job)
            db.execute("UPDATE jobs SET lease_until = ? WHERE key = ?", (now + lease_seconds, job.key))

    def checkpoint(self, job: Job, lease_seconds: float, **data: Any) -> Job:
        """Stores step results in the job and renews the lease.

        Raises:
            LeaseLostError: Another worker owns the job now.
        """
        now = self.clock()
        with self._tx() as db:
            row = self._owned(db, job)
            merged = {**json.loads(row["checkpoint"]), **data}
            db.execute(
                "UPDATE jobs SET checkpoint = ?, lease_until = ?, updated_at = ? WHERE key = ?",
                (json.dumps(merged, sort_keys=True), now + lease_seconds, now, job.key),
            )
            return Job._from_row(db.execute("SELECT * FROM jobs WHERE key = ?", (job.key,)).fetchone())

    def complete(self, job: Job, **data: Any) -> None:
        """Marks the job done (its result merged into the checkpoint)."""
        now = self.clock()
        with self._tx() as db:
            row = self._owned(db, job)
            merged = {**json.loads(row["checkpoint"]), **data}
            db.execute(
                "UPDATE jobs SET state = 'done', checkpoint = ?, reason = '', lease_owner = '', lease_until = 0,"
                " updated_at = ? WHERE key = ?",
                (json.dumps(merged, sort_keys=True), now, job.key),
            )

    def retry(self, job: Job, reason: str) -> Job:
        """A transient failure: back to pending after a backoff, or dead (transient) when out of attempts."""
        now = self.clock()
        with self._tx() as db:
            row = self._owned(db, job)
            if self.out_of_attempts(row["attempts"]):
                db.execute(
                    "UPDATE jobs SET state = 'dead', transient = 1, reason = ?, lease_owner = '', lease_until = 0,"
                    " updated_at = ? WHERE key = ?",
                    (f"gave up after {row['attempts']} attempts: {reason}", now, job.key),
                )
            else:
                db.execute(
                    "UPDATE jobs SET state = 'pending', next_at = ?, reason = ?, lease_owner = '', lease_until = 0,"
                    " updated_at = ? WHERE key = ?",
                    (now + backoff(row["attempts"]), reason, now, job.key),
                )
            return Job._from_row(db.execute("SELECT * FROM jobs WHERE key = ?", (job.key,)).fetchone())

    def dead(self, job: Job, reason: str) -> None:
        """A permanent failure: the job is dead-lettered with ``reason`` (the reconciler leaves it)."""
        self._end(job, "dead", reason)

    def conflict(self, job: Job, reason: str) -> None:
        """The ledger's record disagrees with MLflow's version: the job ends in ``conflict`` with ``reason``.

        Nothing retries it on its own (the ledger record stays as it is); the
        reconciler reports it at every scan, and an operator's ``requeue``
        checks it again.
        """
        self._end(job, "conflict", reason)

    def _end(self, job: Job, state: str, reason: str) -> None:
        """Ends a leased job in ``state`` (``dead`` or ``conflict``) for good, with ``reason``."""
        now = self.clock()
        with self._tx() as db:
            self._owned(db, job)
            db.execute(
                "UPDATE jobs SET state = ?, transient = 0, reason = ?, lease_owner = '', lease_until = 0,"
                " updated_at = ? WHERE key = ?",
                (state, reason, now, job.key),
            )

    # ------------------------------------------------------------------ reading
    def get(self, name: str, version: str) -> Job | None:
        row = self._db().execute("SELECT * FROM jobs WHERE key = ?", (job_key(name, version),)).fetchone()
        return Job._from_row(row) if row else None

    def jobs(self, state: str | None = None) -> list[Job]:
        if state is None:
            rows = self._db().execute("SELECT * FROM jobs ORDER BY created_at").fetchall()
        else:
            rows = self._db().execute("SELECT * FROM jobs WHERE state = ? ORDER BY created_at", (state,)).fetchall()
        return [Job._from_row(r) for r in rows]

    def counts(self) -> dict[str, int]:
        rows = self._db().execute("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state").fetchall()
        return dict.fromkeys(STATES, 0) | {r["state"]: r["n"] for r in rows}

    def next_due(self) -> float | None:
        """When the next pending job becomes ready (None if none is pending)."""
        row = self._db().execute("SELECT MIN(next_at) AS t FROM jobs WHERE state = 'pending'").fetchone()
        return row["t"]
