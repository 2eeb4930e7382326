"""The real server under load: /v1/check from 1, 4, 16 and 64 concurrent clients (loopback only).

    python -m bench.api [--model open_clip:ViT-B-32@random]

Starts `counterfeit serve` as a real process on a free loopback port, registers reference photos,
then runs closed-loop clients (each sends its next request when the previous one answers). The
bare model throughput (forward passes at the batch size, preprocessed input) is measured in the
same run, before the server starts, and the summary divides the 16-client throughput by it.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from bench.embed import real_jpegs
from index.images import decode_image
from index.models import load_embedder


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bare_model_throughput(model: str, batch_size: int, batches: int = 3) -> float:
    embedder = load_embedder(model, batch_size=batch_size).base
    big = 1 << 40
    batch = embedder.preprocess([decode_image(d, big, big, embedder.draft_size) for d in real_jpegs(batch_size)])
    embedder.forward_batch(batch)
    started = time.perf_counter()
    for _ in range(batches):
        embedder.forward_batch(batch)
    return batches * batch_size / (time.perf_counter() - started)


def start_server(data_dir: Path, model: str, port: int, admin_key: str,
                 extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    env = {**os.environ, "COUNTERFEIT_DATA_DIR": str(data_dir), "COUNTERFEIT_MODEL": model,
           "COUNTERFEIT_BOOTSTRAP_ADMIN_KEY": admin_key, "COUNTERFEIT_LOG_LEVEL": "warning", **(extra_env or {})}
    process = subprocess.Popen([sys.executable, "-m", "service", "serve", "--port", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("server did not start")


async def load(url: str, key: str, payloads: list[bytes], clients: int, requests_per_client: int) -> tuple[float, np.ndarray, int]:
    latencies: list[float] = []
    errors = 0

    async def client_loop(client: httpx.AsyncClient, offset: int) -> None:
        nonlocal errors
        for i in range(requests_per_client):
            data = payloads[(offset + i) % len(payloads)]
            started = time.perf_counter()
            response = await client.post("/v1/check", files={"image": ("q.jpg", data, "image/jpeg")})
            latencies.append(time.perf_counter() - started)
            errors += response.status_code != 200

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=300, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client, c) for c in range(clients)))
        elapsed = time.perf_counter() - started
    return clients * requests_per_client / elapsed, np.array(latencies), errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="open_clip:ViT-B-32@random")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--requests", type=int, default=64, help="requests per concurrency level (at least 2 per client)")
    args = parser.parse_args()

    bare = bare_model_throughput(args.model, args.batch_size)
    payloads = real_jpegs(40)
    port, key = free_port(), "bench-admin-key"
    with tempfile.TemporaryDirectory() as data_dir:
        server = start_server(Path(data_dir), args.model, port, key)
        url = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as admin:
                for i, data in enumerate(payloads[:20]):
                    admin.post("/v1/references", files={"image": ("r.jpg", data, "image/jpeg")},
                               data={"brand": "acme", "label": "counterfeit" if i % 2 else "authentic"}).raise_for_status()
            asyncio.run(load(url, key, payloads, 2, 2))  # warm-up
            rows = {}
            for clients in (1, 4, 16, 64):
                per_client = max(2, args.requests // clients)
                rows[clients] = asyncio.run(load(url, key, payloads, clients, per_client))
        finally:
            server.terminate()
            server.wait(timeout=60)

    print(f"model {args.model}; bare model {bare:.1f} img/s at batch {args.batch_size}")
    print(f"{'clients':>8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for clients, (rate, latencies, errors) in rows.items():
        print(f"{clients:>8} {rate:>8.1f} {np.percentile(latencies, 50) * 1000:>8.0f} {np.percentile(latencies, 99) * 1000:>8.0f} {errors:>7}")
    at16 = rows[16][0]
    print(f"SUMMARY api {args.model}: throughput@16 / bare model = {at16 / bare:.2f} (goal >= 0.85); "
          f"{at16:.1f} req/s at 16 clients, bare {bare:.1f} img/s")


if __name__ == "__main__":
    main()
