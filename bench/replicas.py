"""Check throughput with 1 and with 2 `counterfeit serve` replicas on one database (loopback only).

    python -m bench.replicas [--database-url postgresql+psycopg://…] [--clients 16] [--seconds 15]

The same closed-loop clients spread their requests over the replicas round-robin. On a machine with
few cores the replicas share them, so expect no gain there; the figure says what one more process
costs or buys on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.api import free_port, start_server
from bench.hostile import ADMIN, photo


async def load(urls: list[str], clients: int, seconds: float) -> float:
    deadline = time.monotonic() + seconds
    done = 0

    async def client(i: int):
        nonlocal done
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60) as http:
            n = i
            while time.monotonic() < deadline:
                response = await http.post(
                    urls[n % len(urls)] + "/v1/check", files={"image": ("q.png", photo(n % 16), "image/png")}
                )
                done += response.status_code == 200
                n += 1

    await asyncio.gather(*(client(i) for i in range(clients)))
    return done / seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="open_clip:tiny-random")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=15)
    args = parser.parse_args()
    results = {}
    for replicas in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            env = {"COUNTERFEIT_RATE_LIMIT_ADMIN": "0"}
            if args.database_url:
                env["COUNTERFEIT_DATABASE_URL"] = args.database_url
                subprocess.run(
                    [sys.executable, "-m", "service", "db", "upgrade"],
                    env={**os.environ, **env},
                    check=True,
                    capture_output=True,
                )
            ports = [free_port() for _ in range(replicas)]
            processes = [start_server(Path(tmp), args.model, port, ADMIN, env) for port in ports]
            urls = [f"http://127.0.0.1:{port}" for port in ports]
            try:
                for seed in range(16):
                    httpx.post(
                        urls[0] + "/v1/references",
                        headers={"Authorization": f"Bearer {ADMIN}"},
                        timeout=60,
                        files={"image": ("r.png", photo(seed), "image/png")},
                        data={"brand": "acme", "label": "counterfeit"},
                    )
                time.sleep(1.5)  # every replica has applied the registrations
                results[replicas] = asyncio.run(load(urls, args.clients, args.seconds))
            finally:
                for process in processes:
                    process.terminate()
                    process.wait(timeout=30)
        print(f"{replicas} replica(s): {results[replicas]:.1f} checks/s at {args.clients} clients")
    print(f"SUMMARY 2 replicas / 1 = {results[2] / results[1]:.2f} ({os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
