"""Benchmark: digests and anchored uploads, each as a ratio against a reference run on the same data.

Every comparison is the median of ``--runs`` alternating runs of the reference and ours.

1. single-file digest: our SHA-256 of a 1 GiB file vs ``openssl dgst -sha256`` (goal >= 0.95x its speed);
2. parallel digest: 8 x 256 MiB files with our thread pool vs openssl over one stream of the same
   bytes (goal >= 1.8x on 2 cores);
3. anchored upload: 1 GiB through ModelUploader (file SHA-256, chunk SHA-256 as key and checksum, locked
   content-addressed chunks, index) vs a plain boto3 ``upload_file`` of the same file into a plain
   bucket with the same part size and concurrency, sending the same x-amz-checksum-sha256 per part
   (goal <= 1.1x the time); the ratio to an upload without checksums is printed for information;
4. memory: peak RSS of a process anchoring a 2 GiB model (goal <= 150 MB).

Starts a MinIO of its own in a temporary folder. Not a test: nothing asserts.
Usage: python bench/store_throughput.py [--scale 1.0] [--runs 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from boto3.s3.transfer import TransferConfig

from modelledger.mlops.servers.minio import S3Server
from modelledger.mlops.servers.minio_root import root_client
from modelledger.mlops.store.digest import digest_folder, sha256_file
from modelledger.mlops.store.upload import CHUNK_SIZE, ModelUploader
from modelledger.runtime.processes import first_busy_port
from modelledger.runtime.settings import S3Settings

MiB = 1024 * 1024


def write_random(path: Path, size: int) -> None:
    """A file of ``size`` random bytes with no repeated block (repeats would let the chunk store deduplicate)."""
    with path.open("wb") as f:
        left = size
        while left > 0:
            n = min(left, 64 * MiB)
            f.write(os.urandom(n))
            left -= n


def drop_cache_hint(paths: list[Path]) -> None:
    """Flushes the files just written and reads them once, so every contender starts from the same warm
    page cache and no write-back of them competes for the CPU while they are timed."""
    os.sync()
    for p in paths:
        with p.open("rb") as f:
            while f.read(64 * MiB):
                pass


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def alternating(runs: int, reference: Callable[[], float], ours: Callable[[], float]) -> tuple[float, float]:
    """Median seconds of the reference and of ours over ``runs`` alternating runs (machine noise hits both)."""
    refs, mine = [], []
    for _ in range(max(1, runs)):
        refs.append(reference())
        mine.append(ours())
    return statistics.median(refs), statistics.median(mine)


def openssl(paths: list[Path]) -> float:
    """``openssl dgst -sha256`` over the files one after the other: a single stream."""
    cmd = ["openssl", "dgst", "-sha256", *map(str, paths)]
    return timed(lambda: subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL))


ANCHOR_CHILD = """
import datetime as dt, sys
from pathlib import Path
from modelledger.mlops.store.s3_access import s3_client
from modelledger.runtime.settings import S3Settings, S3User
from modelledger.mlops.store.upload import ModelUploader
settings = S3Settings(state_dir=Path(sys.argv[2]), tools_dir=S3Settings.from_env().tools_dir, port=int(sys.argv[3]))
uploader = ModelUploader(s3_client(settings, user=S3User.BRIDGE), settings.bucket, dt.timedelta(seconds=60))
uploader.upload(sys.argv[1], progress=False)
print(next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3, help="alternating runs of each comparison")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every data size (e.g. 0.25 for a quick run)")
    a = ap.parse_args()
    size = lambda n: int(n * a.scale)  # noqa: E731

    work = Path(tempfile.mkdtemp(prefix="modelledger-bench-store-"))
    port = next(p for p in range(27900, 28900, 2) if first_busy_port("127.0.0.1", [p, p + 1]) is None)
    settings = S3Settings(state_dir=work / "state", tools_dir=S3Settings.from_env().tools_dir, port=port)
    server = S3Server(settings)
    rows: list[tuple[str, str, str, str]] = []
    try:
        # 1. single file
        big = work / "one" / "weights.bin"
        big.parent.mkdir()
        write_random(big, size(1024 * MiB))
        drop_cache_hint([big])
        ref, ours = alternating(a.runs, lambda: openssl([big]), lambda: timed(lambda: sha256_file(big)))
        rows.append(
            (
                "single-file digest",
                f"{big.stat().st_size / ref / MiB:.0f} MiB/s openssl",
                f"{big.stat().st_size / ours / MiB:.0f} MiB/s ours",
                f"{ref / ours:.2f}x speed (goal >= 0.95)",
            )
        )

        # 2. parallel
        many = work / "many"
        many.mkdir()
        shards = [many / f"shard-{i}.bin" for i in range(8)]
        for s in shards:
            write_random(s, size(256 * MiB))
        drop_cache_hint(shards)
        ref, ours = alternating(a.runs, lambda: openssl(shards), lambda: timed(lambda: digest_folder(many)))
        total = sum(s.stat().st_size for s in shards)
        rows.append(
            (
                "parallel digest (8 files)",
                f"{total / ref / MiB:.0f} MiB/s openssl, 1 stream",
                f"{total / ours / MiB:.0f} MiB/s ours, {os.cpu_count()} cores",
                f"{ref / ours:.2f}x speed (goal >= 1.8)",
            )
        )

        # 3. anchored upload vs plain boto3: alternating runs, medians. The reference the goal applies to is a
        # plain upload_file that, like ours, sends x-amz-checksum-sha256 on every part (the server verifies
        # each); the upload without any checksum is printed too. Each anchored run gets a new locked bucket
        # (the same bytes again would be a no-op), each plain run a new key.
        server.up()
        client = root_client(settings)  # creates scratch buckets: administration
        client.create_bucket(Bucket="bench-plain")
        cfg = TransferConfig(multipart_threshold=CHUNK_SIZE, multipart_chunksize=CHUNK_SIZE, max_concurrency=4)
        sha = {"ChecksumAlgorithm": "SHA256"}
        runs: dict[str, list[float]] = {"sha256": [], "bare": [], "ours": []}
        for run in range(a.runs):
            runs["sha256"].append(
                timed(lambda r=run: client.upload_file(str(big), "bench-plain", f"s{r}", Config=cfg, ExtraArgs=sha))
            )
            runs["bare"].append(timed(lambda r=run: client.upload_file(str(big), "bench-plain", f"b{r}", Config=cfg)))
            client.create_bucket(Bucket=f"bench-locked-{run}", ObjectLockEnabledForBucket=True)
            uploader = ModelUploader(client, f"bench-locked-{run}", dt.timedelta(seconds=60))
            runs["ours"].append(timed(lambda u=uploader: u.upload(big.parent, progress=False)))
        med = {k: statistics.median(v) for k, v in runs.items()}
        rows.append(
            (
                "anchored upload",
                f"{med['sha256']:.2f} s boto3, SHA-256 parts",
                f"{med['ours']:.2f} s ours (digest+chunks+index)",
                f"{med['ours'] / med['sha256']:.2f}x time (goal <= 1.1)",
            )
        )
        rows.append(
            (
                "  (same, no checksums)",
                f"{med['bare']:.2f} s boto3, no checksum",
                f"medians of {a.runs} runs",
                f"{med['ours'] / med['bare']:.2f}x time (for information)",
            )
        )

        # 4. memory while anchoring a 2 GiB model, in a fresh process
        two = work / "two"
        two.mkdir()
        for i in range(8):  # 8 files, so every upload worker is busy at once
            write_random(two / f"part-{i}.bin", size(256 * MiB))
        out = subprocess.run(
            [sys.executable, "-c", ANCHOR_CHILD, str(two), str(settings.state_dir), str(port)],
            capture_output=True,
            text=True,
            check=True,
        )
        peak_mb = int(out.stdout.strip().splitlines()[-1]) / 1024
        base = subprocess.run(
            [
                sys.executable,
                "-c",
                "import modelledger.mlops.store.upload, boto3; "
                "print(next(int(x.split()[1]) for x in open('/proc/self/status') if x.startswith('VmHWM:')))",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        base_mb = int(base.stdout.strip()) / 1024
        rows.append(
            (
                "memory, anchoring 2 GiB",
                f"{base_mb:.0f} MB after imports",
                f"{peak_mb:.0f} MB peak RSS",
                f"{peak_mb:.0f} MB (goal <= 150)",
            )
        )
    finally:
        server.clean()
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nstore benchmarks (scale {a.scale}), 1 GiB = {size(1024 * MiB)} bytes here")
    for r in rows:
        print(f"  {r[0]:<28} {r[1]:<34} {r[2]:<38} {r[3]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
