"""Submit-to-commit latency of ModelLedger's Python Gateway SDK (the side measured against bench/node).

Same arguments and the same one-line JSON output as ``bench/node/submit.js``,
so the runner compares like with like: each transaction is timed from the call
until its commit status is known, and counts as ok only if VALID.

Usage: python bench/py_submit.py --profile FILE --function RegisterDataset --arg TEMPLATE
       [--msp Org1MSP] [--role registrar] [--count N] [--concurrency C] [--warmup W] [--run-id ID]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from modelledger.sdk import CallOptions, ConnectionProfile, GatewayError


def expand(template: str, i: int, run_id: str) -> str:
    """Fills ``{i}``, ``{run}`` and ``{sha256:i}`` like the Node client."""
    digest = hashlib.sha256(f"{run_id}:{i}".encode()).hexdigest()
    return template.replace("{sha256:i}", digest).replace("{run}", run_id).replace("{i}", str(i))


def percentile(sorted_ms: list[float], p: float) -> float:
    """Nearest-rank percentile, as the Node client computes it."""
    if not sorted_ms:
        return float("nan")
    rank = max(1, int(-(-p / 100 * len(sorted_ms) // 1)))
    return sorted_ms[min(rank, len(sorted_ms)) - 1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--profile", required=True)
    ap.add_argument("--msp", default="Org1MSP")
    ap.add_argument("--role", default="registrar")
    ap.add_argument("--function", required=True)
    ap.add_argument("--arg", action="append", default=[])
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=0)
    ap.add_argument("--run-id", default=os.urandom(4).hex())
    a = ap.parse_args()

    try:
        prof = ConnectionProfile.load(a.profile)
        # Same per-call deadline as the Node client's --timeout-s default (60 s) on every step.
        gateway = prof.gateway(a.msp, a.role, options=CallOptions(evaluate=60, endorse=60, submit=60, commit_status=60))
    except GatewayError as exc:
        print(f"py_submit: {exc}", file=sys.stderr)
        return 1
    contract = gateway.network(prof.channel).contract(prof.chaincode)

    def one(i: int) -> float | None:
        args = [expand(t, i, a.run_id) for t in a.arg]
        start = time.perf_counter()
        try:
            contract.submit(a.function, args)
        except GatewayError as exc:
            print(f"py_submit: transaction {i}: {str(exc).splitlines()[0]}", file=sys.stderr)
            return None
        return (time.perf_counter() - start) * 1000

    with ThreadPoolExecutor(max_workers=a.concurrency) as pool:
        list(pool.map(one, range(a.warmup)))
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        results = list(pool.map(one, range(a.warmup, a.warmup + a.count)))
        wall = time.perf_counter() - t0
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    ok = sorted(r for r in results if r is not None)
    user_ms = (cpu1.ru_utime - cpu0.ru_utime) * 1000
    sys_ms = (cpu1.ru_stime - cpu0.ru_stime) * 1000
    print(
        json.dumps(
            {
                "client": "modelledger-python-sdk",
                "count": a.count,
                "concurrency": a.concurrency,
                "ok": len(ok),
                "failed": a.count - len(ok),
                "p50_ms": round(percentile(ok, 50), 1) if ok else None,
                "p95_ms": round(percentile(ok, 95), 1) if ok else None,
                "mean_ms": round(sum(ok) / len(ok), 1) if ok else None,
                "wall_s": round(wall, 2),
                "tps": round(len(ok) / wall, 2) if wall else None,
                "cpu_user_ms": round(user_ms),
                "cpu_system_ms": round(sys_ms),
                "cpu_ms_per_tx": round((user_ms + sys_ms) / a.count, 2),
            }
        )
    )
    gateway.close()
    return 0 if ok else 3


if __name__ == "__main__":
    sys.exit(main())
