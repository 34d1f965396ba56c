"""Benchmark: submit-to-commit latency and throughput, our Python SDK against the official Node client.

Starts a network of its own (temporary folder, free ports), deploys the
chaincode, then at each concurrency (1, 8, 32) runs the same RegisterDataset
workload with ``bench/node/submit.js`` (@hyperledger/fabric-gateway) and with
``bench/py_submit.py`` (modelledger.sdk), alternating which goes first, and
prints both and the ratios. Goals at equal concurrency: our p50 <= 1.0x
theirs, our throughput >= 1.0x theirs. Not a test: nothing here asserts.
One run per setting: differences of a few percent are within run-to-run
noise (throughput at 32 depends on how submits line up with BatchTimeout).

Usage: python bench/submit_vs_node.py [--count N] [--warmup W] [--keep]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from modelledger.network import FabricNetwork, NetworkSettings
from modelledger.network.fabric import free_port_base

HERE = Path(__file__).resolve().parent
ARG = '{"name":"bench-{run}-{i}","sha256":"{sha256:i}","source":"s3://bench/{run}/{i}"}'


def run_client(cmd: list[str]) -> dict:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise SystemExit(f"benchmark client failed ({proc.returncode}): {' '.join(cmd[:2])}\n{proc.stderr[-2000:]}")
    return json.loads(lines[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--count", type=int, default=200, help="measured transactions per client and concurrency")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--concurrency", type=int, nargs="*", default=[1, 8, 32])
    ap.add_argument("--keep", action="store_true", help="leave the network running")
    a = ap.parse_args()

    if not (HERE / "node" / "node_modules" / "@hyperledger" / "fabric-gateway").is_dir():
        raise SystemExit("bench/node/node_modules is missing: run `npm ci --prefix bench/node` (make bench does)")

    state = Path(tempfile.mkdtemp(prefix="modelledger-bench-"))
    settings = NetworkSettings.from_env()
    settings = NetworkSettings(
        state_dir=state, tools_dir=settings.tools_dir, port_base=free_port_base(), health_timeout=90
    )
    net = FabricNetwork(settings)
    print(f"network in {state} (port base {settings.port_base}) ...", flush=True)
    t0 = time.monotonic()
    try:
        net.up()
        net.chaincode.deploy()
        print(f"network and chaincode up in {time.monotonic() - t0:.0f}s", flush=True)
        profile = str(net.layout.connection_profile)
        common = ["--profile", profile, "--msp", "Org1MSP", "--role", "registrar", "--function", "RegisterDataset"]
        common += ["--arg", ARG, "--count", str(a.count), "--warmup", str(a.warmup)]
        rows = []
        for n, c in enumerate(a.concurrency):
            node_cmd = ["node", str(HERE / "node" / "submit.js"), *common, "--concurrency", str(c), "--run-id", f"n{c}"]
            py_cmd = [sys.executable, str(HERE / "py_submit.py"), *common, "--concurrency", str(c), "--run-id", f"p{c}"]
            order = [("node", node_cmd), ("python", py_cmd)]
            if n % 2:
                order.reverse()
            got = {who: run_client(cmd) for who, cmd in order}
            rows.append((c, got["python"], got["node"]))
            print(f"  concurrency {c}: done", flush=True)
    finally:
        if a.keep:
            print(f"network left running: MODELLEDGER_STATE_DIR={state} MODELLEDGER_PORT_BASE={settings.port_base}")
        else:
            net.clean()

    print()
    print(
        "submit-to-commit, RegisterDataset, endorsed by Org1 and Org2 (AND policy), "
        f"{a.count} tx per run after {a.warmup} warm-up"
    )
    head = f"{'conc':>4} | {'client':<8} | {'ok':>4} | {'p50 ms':>7} | {'p95 ms':>7} | {'tx/s':>7} | {'CPU ms/tx':>9}"
    print(head)
    print("-" * len(head))
    for c, py, node in rows:
        if not (py.get("ok") and node.get("ok")):
            print(f"{c:>4} | no ratio: python ok={py.get('ok')}, node ok={node.get('ok')}")
            continue
        for who, r in (("python", py), ("node", node)):
            print(
                f"{c:>4} | {who:<8} | {r['ok']:>4} | {r['p50_ms']:>7.1f} | {r['p95_ms']:>7.1f} | "
                f"{r['tps']:>7.2f} | {r['cpu_ms_per_tx']:>9.2f}"
            )
        p50 = py["p50_ms"] / node["p50_ms"]
        tps = py["tps"] / node["tps"]
        cpu = py["cpu_ms_per_tx"] / node["cpu_ms_per_tx"]
        verdict = "meets" if p50 <= 1.0 and tps >= 1.0 else "misses"
        print(
            f"{c:>4} | ratio    | p50 {p50:.2f}x (goal <= 1.0) · throughput {tps:.2f}x (goal >= 1.0) · "
            f"CPU/tx {cpu:.2f}x · {verdict} the goals"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
