"""Benchmark: webhook (and registration) in MLflow → ``ledger.status=anchored``, against a plain script.

Starts a stack of its own on free ports, with its state in a new folder under
this checkout's ``.state/`` (Fabric network and chaincode, MinIO, MLflow, the
bridge), then for a 1 MB and a 100 MB model (every version a new model: new
bytes, so nothing is deduplicated):

- **webhook → anchored tag**, the latency the goal is set on: from the
  arrival of the version's webhook at the bridge to MLflow's answer to the
  ``ledger.status=anchored`` write, both from the bridge's log;
- **the reference: a plain sequential script** doing the same work, in the
  same run on the same stack, right after the bridge anchored the version:
  read the version, resolve where its files are and read its run (for the
  provenance); fetch the files from MLflow's bucket; digest them (per-file
  SHA-256 manifest); sign the manifest (the bridge's registrar identity);
  upload the files and the signature bundle to the anchored bucket with a
  COMPLIANCE retention and SHA-256 checksums (boto3's transfer manager, 16 MiB
  parts, 4 at a time); submit ``RegisterModelVersion`` and wait for its
  commit; write the five result tags (``ledger.tx_id``, ``model.digest``,
  ``storage.uri``, ``ledger.block``, ``ledger.status``; under other keys, so
  as not to touch the bridge's). The headline is the bridge's ratio to the
  script, p50 and p90 (each taken over the versions of the run);
- **registration → anchored tag seen**, what a data scientist waits: the
  clock starts when ``create_model_version`` returns (MLflow fires the webhook
  then; its delivery takes a few tens of ms more) and stops when the tag is
  seen: read once, as soon as the bridge's log says the job is done (the log is
  followed rather than MLflow polled, which would load MLflow's one worker
  process while the bridge works, and not while the script does);
- the script's steps (medians), their sums as the earlier reference ratios,
  and the bridge's own per-step medians, from its log (``anchored`` lines).

Not a test: nothing asserts. Usage: python bench/bridge_latency.py [--runs-small 10] [--runs-large 4]
(the bridge's log is left in ``.state/bench-bridge-last.log``)
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from boto3.s3.transfer import TransferConfig

from modelledger.mlops.bridge.anchor_parts import SigningIdentity
from modelledger.mlops.bridge.artifacts import ArtifactAllowlist, resolve_download_uri, stored_location
from modelledger.mlops.bridge.mlflow_api import MlflowApi, RunReadOnce
from modelledger.mlops.bridge.mlflow_credentials import MlflowUser, act_as
from modelledger.mlops.bridge.outcomes import storage_uri
from modelledger.mlops.bridge.provenance import collect
from modelledger.mlops.bridge.tags import (
    STATUS_ANCHORED,
    STATUS_CONFLICT,
    STATUS_FAILED,
    TAG_BLOCK,
    TAG_DIGEST,
    TAG_STATUS,
    TAG_STORAGE,
    TAG_TX,
)
from modelledger.mlops.servers.minio_root import root_client
from modelledger.mlops.servers.stack import MlflowStack
from modelledger.mlops.store.digest import digest_folder
from modelledger.mlops.store.index import StoragePointer
from modelledger.mlops.store.ledger_records import version_input
from modelledger.mlops.store.signing import sign_manifest
from modelledger.mlops.store.source import download_s3_tree
from modelledger.mlops.store.upload import CHUNK_SIZE
from modelledger.network import FabricNetwork, NetworkSettings
from modelledger.network.fabric import free_port_base
from modelledger.runtime.processes import first_busy_port
from modelledger.sdk.profile import ConnectionProfile
from modelledger.sdk.registry.client import RegistryClient

MiB = 1024 * 1024
REPO = Path(__file__).resolve().parents[1]
# The bridge's log lines that end a job, and the status each leaves on the version.
OUTCOMES = {"anchored": STATUS_ANCHORED, "dead-lettered": STATUS_FAILED, "conflict": STATUS_CONFLICT}
# The script writes the bridge's five result tags under these keys, so as not to touch the bridge's.
SCRIPT_TAG_PREFIX = "bench-script."
SCRIPT_STEPS = ("read", "fetch", "digest", "sign", "upload", "submit", "tags")


def free_port(start: int) -> int:
    return next(p for p in range(start, start + 2000, 2) if first_busy_port("127.0.0.1", [p, p + 1]) is None)


def make_model(folder: Path, size: int) -> Path:
    folder.mkdir(parents=True)
    (folder / "MLmodel").write_text("flavors:\n  python_function: {loader_module: bench}\n")
    (folder / "requirements.txt").write_text("numpy==2.4.6\n")
    with (folder / "weights.bin").open("wb") as f:
        left = size
        while left:
            n = min(left, 64 * MiB)
            f.write(os.urandom(n))
            left -= n
    return folder


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def bridge_log(log: Path, model: str) -> tuple[str, dict[str, float]]:
    """From the bridge's log, for ``model`` (the first, warm-up version left out): the median seconds per
    step, and each version's seconds from its webhook's arrival to its ``anchored`` tag (by version).

    The arrival is the ``delivery`` line's time less its ``ms``; the ``anchored`` line is logged once
    MLflow has answered the ``ledger.status`` write (and the outbox has recorded the job as done).
    """
    steps: dict[str, list[float]] = {}
    arrived: dict[str, float] = {}
    anchored: dict[str, float] = {}
    for line in log.read_text().splitlines():
        doc = json.loads(line) if line.startswith("{") else {}
        job = doc.get("job", "")
        if not job.startswith(f"{model}/") or job == f"{model}/1":
            continue
        at = dt.datetime.fromisoformat(doc["time"]).timestamp()
        if doc.get("msg") == "delivery" and doc.get("outcome") == "accepted":
            arrived.setdefault(job, at - doc["ms"] / 1000)
        elif doc.get("msg") == "anchored":
            anchored[job] = at
            for step, secs in doc.get("steps", {}).items():
                steps.setdefault(step, []).append(secs)
    medians = " ".join(f"{k} {statistics.median(v):.3f}" for k, v in steps.items())
    return medians, {j.rsplit("/", 1)[1]: anchored[j] - arrived[j] for j in anchored if j in arrived}


class LogWatch:
    """Follows the bridge's log for a job's outcome, so that waiting puts no load on MLflow.

    Polling MLflow for the tag (one request every 20 ms) would keep its one
    worker process busy while the bridge's own requests wait behind the polls;
    the script runs with no such load.
    """

    def __init__(self, log: Path) -> None:
        self.log, self._offset, self._partial = log, 0, b""

    def outcome(self, job: str, deadline: float) -> str:
        """Waits until the log says how ``job`` ended (the status it left); "timeout" past ``deadline``."""
        while time.perf_counter() < deadline:
            with self.log.open("rb") as f:
                f.seek(self._offset)
                data = self._partial + f.read()
                self._offset = f.tell()
            *lines, self._partial = data.split(b"\n")
            for line in lines:
                doc = json.loads(line) if line.startswith(b"{") else {}
                if doc.get("job") == job and doc.get("msg") in OUTCOMES:
                    return OUTCOMES[doc["msg"]]
            time.sleep(0.01)
        return "timeout"


class PlainScript:
    """The reference: the bridge's work for one version, one step after the other, on the same stack."""

    def __init__(self, api: MlflowApi, s3: Any, bucket: str, retention_days: int, registry: RegistryClient,
                 signing: SigningIdentity, allowlist: ArtifactAllowlist, destination: str, work: Path) -> None:
        self.api, self.s3, self.bucket, self.registry = api, s3, bucket, registry
        self.retention = dt.timedelta(days=retention_days)
        self.signing, self.allowlist, self.destination, self.work = signing, allowlist, destination, work
        self.cfg = TransferConfig(multipart_threshold=CHUNK_SIZE, multipart_chunksize=CHUNK_SIZE, max_concurrency=4)

    def run(self, name: str, version: str) -> tuple[float, dict[str, float]]:
        """Anchors ``name``/``version`` as ``ref-<name>`` on the ledger; returns seconds in all and per step."""
        steps: dict[str, float] = {}
        t0 = t = time.perf_counter()

        def lap(step: str) -> None:
            nonlocal t
            now = time.perf_counter()
            steps[step] = now - t
            t = now

        mv = self.api.get_model_version(name, version)
        reads = RunReadOnce(self.api)  # the run is read once: for where the files are, and for the provenance
        uri = self.allowlist.check(stored_location(resolve_download_uri(reads, name, version), self.destination))
        run = reads.get_run(mv.run_id)
        lap("read")
        scratch = Path(tempfile.mkdtemp(prefix="script-", dir=self.work))
        folder = download_s3_tree(self.s3, uri, scratch / "model")
        lap("fetch")
        manifest = digest_folder(folder)
        lap("digest")
        bundle = scratch / "model.sig.json"
        sign_manifest(manifest, bundle, self.signing.key, self.signing.certificate, self.signing.chain, name)
        lap("sign")
        lock = {
            "ChecksumAlgorithm": "SHA256",
            "ObjectLockMode": "COMPLIANCE",
            "ObjectLockRetainUntilDate": dt.datetime.now(dt.UTC) + self.retention,
        }
        prefix = f"script/{name}/{version}"
        for f in manifest.files:
            self.s3.upload_file(str(folder / f.path), self.bucket, f"{prefix}/files/{f.path}", Config=self.cfg,
                                ExtraArgs=lock)
        body = bundle.read_bytes()
        put = self.s3.put_object(Bucket=self.bucket, Key=f"{prefix}/model.sig.json", Body=body, **lock)
        lap("upload")
        prov = collect(mv, run, None, folder)
        pointer = StoragePointer(
            bucket=self.bucket,
            key=f"{prefix}/model.sig.json",
            version_id=str(put["VersionId"]),
            sha256=hashlib.sha256(body).hexdigest(),
        )
        record = version_input(
            name=f"ref-{name}",
            version=str(version),
            manifest=manifest,
            pointer=pointer,
            mlflow=prov.mlflow,
            framework=prov.framework,
            libraries=prov.libraries,
            params=prov.params,
            metrics=prov.metrics,
            datasets=prov.datasets,
        )
        status = self.registry.register_model_version_async(record).wait()  # submit, then the commit (VALID)
        lap("submit")
        for key, value in (
            (TAG_TX, status.transaction_id),
            (TAG_DIGEST, manifest.model_digest),
            (TAG_STORAGE, storage_uri(pointer)),
            (TAG_BLOCK, str(status.block_number)),
            (TAG_STATUS, STATUS_ANCHORED),
        ):
            self.api.set_model_version_tag(name, version, f"{SCRIPT_TAG_PREFIX}{key}", value)
        lap("tags")
        took = time.perf_counter() - t0
        shutil.rmtree(scratch)
        return took, steps


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs-small", type=int, default=10)
    ap.add_argument("--runs-large", type=int, default=4)
    a = ap.parse_args()

    (REPO / ".state").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-bridge-", dir=REPO / ".state"))
    state = work / "state"
    os.environ.update(
        {
            "MODELLEDGER_STATE_DIR": str(state),
            "MODELLEDGER_S3_PORT": str(free_port(28100)),
            "MODELLEDGER_MLFLOW_PORT": str(free_port(28300)),
            "MODELLEDGER_BRIDGE_PORT": str(free_port(28500)),
        }
    )
    base = NetworkSettings.from_env()
    net = FabricNetwork(NetworkSettings(state_dir=state, tools_dir=base.tools_dir, port_base=free_port_base()))
    parts = MlflowStack.from_env()
    s3, ml, bridge = parts.s3, parts.mlflow, parts.bridge
    rows: list[str] = []
    try:
        print(f"starting a stack of its own in {work} (network, chaincode, MinIO, MLflow, bridge)…", flush=True)
        net.up()
        net.chaincode.deploy()
        client = parts.up()
        act_as(ml.settings, MlflowUser.SCIENTIST)  # this process logs and registers as the data scientist
        api = MlflowApi(ml.settings.tracking_uri)  # one request per call, as the bridge makes them
        import mlflow

        mlflow.set_tracking_uri(ml.settings.tracking_uri)
        mlflow.set_experiment("bench")
        profile = ConnectionProfile.load(net.layout.connection_profile)
        gw = profile.gateway("Org1MSP", "registrar")
        registry = RegistryClient(gw.network(profile.channel), profile.chaincode)
        s3c = root_client(s3.settings)  # the reference writes where the bridge does, as MinIO's administrator
        script = PlainScript(
            api,
            s3c,
            s3.settings.bucket,
            s3.settings.retention_days,
            registry,
            SigningIdentity.from_msp(profile.user_msp("Org1MSP", "registrar")),
            ArtifactAllowlist.of(ml.settings.tracking_uri, [ml.settings.artifacts_bucket]),
            ml.settings.artifacts_destination,
            work,
        )

        watch = LogWatch(bridge.log_path)
        for label, size, runs in (("1 MB", MiB, a.runs_small), ("100 MB", 100 * MiB, a.runs_large)):
            e2e: list[float] = []
            scripted: dict[str, float] = {}
            script_steps: dict[str, list[float]] = {k: [] for k in SCRIPT_STEPS}
            name = f"bench-{label.replace(' ', '').lower()}"
            client.create_registered_model(name)
            for i in range(runs + 1):  # the first run warms caches and connections; it is not counted
                folder = make_model(work / f"{name}-{i}", size)
                with mlflow.start_run():
                    mlflow.log_artifacts(str(folder), "model")
                    mlflow.log_param("alpha", "0.5")
                    run_id = mlflow.active_run().info.run_id
                shutil.rmtree(folder)
                mv = client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
                t0 = time.perf_counter()
                outcome = watch.outcome(f"{name}/{mv.version}", t0 + 300)
                tags = api.get_model_version(name, mv.version).tags  # seen: one request, once the bridge is done
                took = time.perf_counter() - t0
                if outcome != STATUS_ANCHORED or tags.get(TAG_STATUS) != STATUS_ANCHORED:
                    raise RuntimeError(f"{name}/{mv.version} not anchored ({outcome}): {tags}")
                # The reference, on the same version, once the bridge is done with it.
                s_took, s_steps = script.run(name, mv.version)
                if i == 0:
                    continue
                e2e.append(took)
                scripted[str(mv.version)] = s_took
                for k, v in s_steps.items():
                    script_steps[k].append(v)
                print(f"  {label} v{mv.version}: registration → anchored seen {took:.2f} s, script {s_took:.2f} s",
                      flush=True)
            med = {k: statistics.median(v) for k, v in script_steps.items()}
            steps, hooked = bridge_log(bridge.log_path, name)
            both = sorted(v for v in hooked if v in scripted)
            b = [hooked[v] for v in both]
            s = [scripted[v] for v in both]
            if b:
                b50, b90, s50, s90 = statistics.median(b), pct(b, 0.9), statistics.median(s), pct(s, 0.9)
                per = sorted(x / y for x, y in zip(b, s, strict=True))
                headline = (
                    f"  {label:<7} bridge / plain script: p50 {b50 / s50:.2f}x, p90 {b90 / s90:.2f}x"
                    f"   goal <= 1.0: {'met' if b50 / s50 <= 1.0 else 'MISSED'}\n"
                    f"          (bridge webhook → anchored p50 {b50:.2f} s, p90 {b90:.2f} s; script p50 {s50:.2f} s, "
                    f"p90 {s90:.2f} s; {len(b)} versions; per-version ratio median {statistics.median(per):.2f}x)"
                )
            else:
                headline = f"  {label:<7} bridge / plain script: no version found in the bridge's log"
                b50 = float("nan")
            p50, p95 = statistics.median(e2e), pct(e2e, 0.95)
            ref = med["digest"] + med["upload"] + med["submit"]
            extra = med["fetch"] + med["sign"] + med["tags"]
            rows.append(
                f"{headline}\n"
                f"          registration → anchored tag seen p50 {p50:.2f} s, p95 {p95:.2f} s ({runs} versions)"
                f"{'   goal p50 <= 2 s: ' + ('met' if p50 <= 2 else 'MISSED') if label == '1 MB' else ''}\n"
                f"          script steps (medians): " + " ".join(f"{k} {v:.3f}" for k, v in med.items()) + "\n"
                f"          digest + upload + submit {ref:.2f} s  →  webhook p50 {b50 / ref:.2f}x; with fetch, sign "
                f"and tags {ref + extra:.2f} s  →  {b50 / (ref + extra):.2f}x\n"
                f"          bridge steps (medians): {steps}"
            )
        gw.close()
    finally:
        if bridge.log_path.exists():  # kept for a look at the bridge's own step lines
            shutil.copyfile(bridge.log_path, REPO / ".state" / "bench-bridge-last.log")
        for step in (bridge.down, ml.down, s3.clean, net.clean):
            try:
                step()
            except Exception as exc:
                print(f"cleanup: {exc}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nbridge latency (webhook → anchored tag) against a plain sequential script, {dt.date.today()}")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
