"""Benchmark: webhook (and registration) in MLflow → ``ledger.status=anchored``, against the sum of its parts.

Starts a stack of its own in a temporary folder on free ports (Fabric network
and chaincode, MinIO, MLflow, the bridge), then for a 1 MB and a 100 MB model
(every version a new model: new bytes, so nothing is deduplicated):

- **webhook → anchored tag**, the latency the goal is set on: from the
  arrival of the version's webhook at the bridge to MLflow's answer to the
  ``ledger.status=anchored`` write, both from the bridge's log; p50 and p95;
- **registration → anchored tag seen**, what a data scientist waits: the
  clock starts when ``create_model_version`` returns (MLflow fires the webhook
  then; its delivery takes a few tens of ms more) and stops when the tag is
  seen (polled every 20 ms, one request per poll); p50 and p95;
- **references**, measured standalone in the same run on the same files:
  our digest of the folder, a plain boto3 upload of its files with SHA-256
  part checksums, and one ``RegisterModelVersion`` through the SDK (submit and
  commit status). Goals: webhook → anchored ≤ 1.1x their sum, and
  registration → anchored p50 ≤ 2 s for 1 MB.
- **what the sum leaves out**, also standalone: fetching the version's files
  from MLflow's bucket (the bridge streams them into the upload instead, so
  this overlaps), signing the manifest, and the two tags written after the
  commit (``ledger.block``, then ``ledger.status``; the others are written
  while the block is being cut);
- the bridge's own per-step medians, from its log (``anchored`` lines).

Not a test: nothing asserts. Usage: python bench/bridge_latency.py [--runs-small 10] [--runs-large 4]
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

from boto3.s3.transfer import TransferConfig

from modelledger.mlops.bridge.anchor_parts import SigningIdentity
from modelledger.mlops.bridge.artifacts import stored_location
from modelledger.mlops.bridge.mlflow_api import MlflowApi
from modelledger.mlops.bridge.tags import TAG_STATUS
from modelledger.mlops.servers.minio_root import root_client
from modelledger.mlops.servers.stack import MlflowStack
from modelledger.mlops.store.digest import digest_folder
from modelledger.mlops.store.signing import sign_manifest
from modelledger.mlops.store.source import download_s3_tree
from modelledger.mlops.store.upload import CHUNK_SIZE
from modelledger.network import FabricNetwork, NetworkSettings
from modelledger.network.fabric import free_port_base
from modelledger.runtime.processes import first_busy_port
from modelledger.sdk.profile import ConnectionProfile
from modelledger.sdk.registry.client import RegistryClient
from modelledger.sdk.registry.records import Framework, Manifest, ManifestFile, ModelVersionInput, Storage

MiB = 1024 * 1024


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


def bridge_log(log: Path, model: str) -> tuple[str, list[float]]:
    """From the bridge's log, for ``model`` (the first, warm-up version left out): the median seconds per
    step, and each version's seconds from its webhook's arrival to its ``anchored`` tag.

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
    return medians, [anchored[j] - arrived[j] for j in anchored if j in arrived]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs-small", type=int, default=10)
    ap.add_argument("--runs-large", type=int, default=4)
    a = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="modelledger-bench-bridge-"))
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
        print("starting a stack of its own (network, chaincode, MinIO, MLflow, bridge)…", flush=True)
        net.up()
        net.chaincode.deploy()
        client = parts.up()
        api = MlflowApi(ml.settings.tracking_uri)  # one request per call, as the bridge makes them
        import mlflow

        mlflow.set_tracking_uri(ml.settings.tracking_uri)
        mlflow.set_experiment("bench")
        profile = ConnectionProfile.load(net.layout.connection_profile)
        gw = profile.gateway("Org1MSP", "registrar")
        registry = RegistryClient(gw.network(profile.channel), profile.chaincode)
        s3c = root_client(s3.settings)  # creates a scratch bucket: administration
        s3c.create_bucket(Bucket="bench-plain")
        signing = SigningIdentity.from_msp(profile.user_msp("Org1MSP", "registrar"))
        cfg = TransferConfig(multipart_threshold=CHUNK_SIZE, multipart_chunksize=CHUNK_SIZE, max_concurrency=4)

        for label, size, runs in (("1 MB", MiB, a.runs_small), ("100 MB", 100 * MiB, a.runs_large)):
            e2e: list[float] = []
            ref_digest: list[float] = []
            ref_upload: list[float] = []
            ref_submit: list[float] = []
            extra_fetch: list[float] = []
            extra_sign: list[float] = []
            extra_tags: list[float] = []
            name = f"bench-{label.replace(' ', '').lower()}"
            client.create_registered_model(name)
            for i in range(runs + 1):  # the first run warms caches and connections; it is not counted
                folder = make_model(work / f"{name}-{i}", size)
                with mlflow.start_run():
                    mlflow.log_artifacts(str(folder), "model")
                    run_id = mlflow.active_run().info.run_id
                mv = client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
                t0 = time.perf_counter()
                while (tags := api.get_model_version(name, mv.version).tags).get(TAG_STATUS) != "anchored":
                    if tags.get(TAG_STATUS) == "failed" or time.perf_counter() - t0 > 300:
                        raise RuntimeError(f"{name}/{mv.version} not anchored: {tags}")
                    time.sleep(0.02)
                took = time.perf_counter() - t0
                # References, standalone, on the same bytes.
                t = time.perf_counter()
                m = digest_folder(folder)
                d_digest = time.perf_counter() - t
                t = time.perf_counter()
                for f in folder.iterdir():
                    s3c.upload_file(
                        str(f),
                        "bench-plain",
                        f"{name}/{i}/{f.name}",
                        Config=cfg,
                        ExtraArgs={"ChecksumAlgorithm": "SHA256"},
                    )
                d_upload = time.perf_counter() - t
                record = ModelVersionInput(
                    name=f"ref-{name}",
                    version=str(i + 1),
                    model_digest=m.model_digest,
                    manifest=Manifest([ManifestFile(f.path, f.sha256, f.size) for f in m.files]),
                    manifest_digest=m.manifest_digest,
                    storage=Storage("bench-plain", f"{name}/{i}/", hashlib.sha256(b"x").hexdigest(), "v"),
                    framework=Framework("python_function", "unknown"),
                )
                t = time.perf_counter()
                registry.register_model_version(record)
                d_submit = time.perf_counter() - t
                artifacts = client.get_run(run_id).info.artifact_uri
                (work / f"fetch-{name}-{i}").mkdir()
                t = time.perf_counter()
                fetched = download_s3_tree(
                    s3c,
                    stored_location(f"{artifacts}/model", ml.settings.artifacts_destination),
                    work / f"fetch-{name}-{i}" / "model",
                )
                d_fetch = time.perf_counter() - t
                t = time.perf_counter()
                sign_manifest(m, work / f"sig-{name}-{i}.json", signing.key, signing.certificate, signing.chain)
                d_sign = time.perf_counter() - t
                t = time.perf_counter()
                for k in ("bench.block", "bench.status"):
                    api.set_model_version_tag(name, mv.version, k, "x")
                d_tags = time.perf_counter() - t
                shutil.rmtree(folder)
                shutil.rmtree(fetched.parent, ignore_errors=True)
                if i == 0:
                    continue
                e2e.append(took)
                ref_digest.append(d_digest)
                ref_upload.append(d_upload)
                ref_submit.append(d_submit)
                extra_fetch.append(d_fetch)
                extra_sign.append(d_sign)
                extra_tags.append(d_tags)
                print(f"  {label} v{mv.version}: {took:.2f} s", flush=True)
            ref = statistics.median(ref_digest) + statistics.median(ref_upload) + statistics.median(ref_submit)
            extra = statistics.median(extra_fetch) + statistics.median(extra_sign) + statistics.median(extra_tags)
            p50, p95 = statistics.median(e2e), pct(e2e, 0.95)
            steps, hooked = bridge_log(bridge.log_path, name)
            h50, h95 = (statistics.median(hooked), pct(hooked, 0.95)) if hooked else (float("nan"),) * 2
            rows.append(
                f"  {label:<7} webhook → anchored tag p50 {h50:.2f} s, p95 {h95:.2f} s ({len(hooked)} versions; "
                f"from the bridge's log)\n"
                f"          registration → anchored tag seen p50 {p50:.2f} s, p95 {p95:.2f} s ({runs} versions)"
                f"{'   goal p50 <= 2 s: ' + ('met' if p50 <= 2 else 'MISSED') if label == '1 MB' else ''}\n"
                f"          reference sum {ref:.2f} s = digest {statistics.median(ref_digest):.3f} + upload "
                f"{statistics.median(ref_upload):.3f} + SDK submit {statistics.median(ref_submit):.3f}"
                f"  →  webhook p50 {h50 / ref:.2f}x (goal <= 1.1), registration p50 {p50 / ref:.2f}x\n"
                f"          not in the sum: fetch from MLflow's bucket {statistics.median(extra_fetch):.3f} + sign "
                f"{statistics.median(extra_sign):.3f} + 2 tags {statistics.median(extra_tags):.3f} = {extra:.2f} s"
                f"  →  webhook p50 {h50 / (ref + extra):.2f}x of all parts\n"
                f"          bridge steps (medians): {steps}"
            )
        gw.close()
    finally:
        for step in (bridge.down, ml.down, s3.clean, net.clean):
            try:
                step()
            except Exception as exc:
                print(f"cleanup: {exc}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nbridge latency (webhook or registration → anchored tag), {dt.date.today()}")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
