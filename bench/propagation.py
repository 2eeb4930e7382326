"""How fast a registration on one replica is searchable on another (PostgreSQL; loopback only).

    python -m bench.propagation --database-url postgresql+psycopg://… [--registrations 200] [--poll-seconds 1.0]

Two `counterfeit serve` replicas on one database and data directory. Each registration is sent to
replica A; the clock starts when A acknowledges it and stops when replica B's index holds it (B's
``/readyz`` index size, polled every 2 ms: cheap, and exactly "searchable"). With LISTEN/NOTIFY the
delay is the notification's, not the poll interval's, so the poll is set long (1 s) to show which one
is measured.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from bench.api import free_port, start_server
from bench.hostile import ADMIN, photo


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", required=True, help="a PostgreSQL URL (an empty database)")
    parser.add_argument("--model", default="open_clip:tiny-random")
    parser.add_argument("--registrations", type=int, default=200)
    parser.add_argument(
        "--poll-seconds", type=float, default=1.0, help="the replicas' change-log poll (fallback)"
    )
    args = parser.parse_args()
    env = {
        "COUNTERFEIT_DATABASE_URL": args.database_url,
        "COUNTERFEIT_CHANGE_POLL_SECONDS": str(args.poll_seconds),
        "COUNTERFEIT_RATE_LIMIT_ADMIN": "0",
        "COUNTERFEIT_TORCH_THREADS": "1",
    }
    with tempfile.TemporaryDirectory() as tmp:
        ports = [free_port(), free_port()]
        replicas = [start_server(Path(tmp), args.model, port, ADMIN, env) for port in ports]
        headers = {"Authorization": f"Bearer {ADMIN}"}
        try:
            with (
                httpx.Client(base_url=f"http://127.0.0.1:{ports[0]}", headers=headers, timeout=30) as a,
                httpx.Client(base_url=f"http://127.0.0.1:{ports[1]}", headers=headers, timeout=30) as b,
            ):
                delays = []
                for seed in range(args.registrations):
                    before = b.get("/readyz").json()["index_size"]
                    response = a.post(
                        "/v1/references",
                        data={"brand": "acme", "label": "counterfeit"},
                        files={"image": ("r.png", photo(10_000 + seed), "image/png")},
                    )
                    assert response.status_code == 201, response.text
                    acknowledged = time.perf_counter()
                    while b.get("/readyz").json()["index_size"] <= before:
                        assert time.perf_counter() - acknowledged < 10, "replica B never caught up"
                        time.sleep(0.002)
                    delays.append((time.perf_counter() - acknowledged) * 1000)
        finally:
            for process in replicas:
                process.terminate()
                process.wait(timeout=30)
    ms = np.array(delays)
    summary = {
        "registrations": len(ms),
        "poll_seconds": args.poll_seconds,
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "max_ms": round(float(ms.max()), 1),
    }
    print(json.dumps(summary))
    print(
        f"SUMMARY propagation over {len(ms)} registrations: p50 {summary['p50_ms']} ms, p99 {summary['p99_ms']} ms "
        f"(poll {args.poll_seconds:g} s)"
    )


if __name__ == "__main__":
    main()
