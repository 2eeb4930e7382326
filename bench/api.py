"""The real server under load: /v1/check from 1, 4, 16 and 64 concurrent clients (loopback only).

    python -m bench.api [--model open_clip:ViT-B-32@random] [--device cuda] [--null-model] [--clients 1,4,16,64]
                        [--query-regions whole|default|wide] [--local-features on|off]

Starts `counterfeit serve` as a real process on a free loopback port, registers reference photos,
then runs closed-loop clients (each sends its next request when the previous one answers). The
bare model throughput (forward passes at the batch size, preprocessed input) is measured in the
same run, before the server starts, and the summary divides the 16-client throughput by it.
The server's own per-stage histograms (``counterfeit_stage_seconds``) give where a check's time
goes; ``--null-model`` serves with the forward pass replaced by a no-op (the pipeline's ceiling).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from bench.embed import bare_forward, real_jpegs
from index.models import ModelUnavailableError, load_embedder
from index.regions import query_regions


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bare_model_throughputs(
    model: str, batch_size: int, runtimes: list[str], batches: int = 8, device: str | None = None
) -> dict[str, float]:
    """The bare forward of every runtime that runs here (``auto`` resolves to one of them)."""
    rates = {}
    for runtime in sorted({"torch", "onnx"} | set(runtimes) - {"auto"}):
        try:
            embedder = load_embedder(model, batch_size=batch_size, device=device, runtime=runtime)
        except ModelUnavailableError as exc:
            print(f"bare {runtime}: not measured ({exc})")
            continue
        rates[runtime] = bare_forward(embedder, real_jpegs(batch_size), batch_size, batches)
    return rates


def stage_breakdown(metrics_text: str) -> dict[str, tuple[float, float]]:
    """stage → (total seconds, observations) from the server's /metrics."""
    sums = dict(
        re.findall(r'^counterfeit_stage_seconds_sum\{stage="([a-z_]+)"\} ([0-9.e+-]+)$', metrics_text, re.M)
    )
    counts = dict(
        re.findall(r'^counterfeit_stage_seconds_count\{stage="([a-z_]+)"\} ([0-9.e+-]+)$', metrics_text, re.M)
    )
    return {stage: (float(sums[stage]), float(counts.get(stage, 0))) for stage in sums}


def settle(admin: httpx.Client, timeout: float = 300.0) -> None:
    """Wait for the look-alike fit the registrations start (debounce 0 here) to end, so the load measures
    checks alone: with the default 30 s debounce it would start in the middle of the load levels."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = admin.get("/v1/jobs", params={"kind": "lookalike"}).raise_for_status().json()["items"]
        if jobs and all(job["state"] not in ("queued", "running") for job in jobs):
            return
        time.sleep(0.5)
    raise RuntimeError("the look-alike fit the registrations started did not end")


def start_server(
    data_dir: Path, model: str, port: int, admin_key: str, extra_env: dict[str, str] | None = None
) -> subprocess.Popen:
    env = {
        **os.environ,
        "COUNTERFEIT_DATA_DIR": str(data_dir),
        "COUNTERFEIT_MODEL": model,
        "COUNTERFEIT_BOOTSTRAP_ADMIN_KEY": admin_key,
        "COUNTERFEIT_LOG_LEVEL": "warning",
        **(extra_env or {}),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("server did not start")


async def load(
    url: str, key: str, payloads: list[bytes], clients: int, requests_per_client: int
) -> tuple[float, np.ndarray, int]:
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
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=300, limits=limits
    ) as client:
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client, c) for c in range(clients)))
        elapsed = time.perf_counter() - started
    return clients * requests_per_client / elapsed, np.array(latencies), errors


def _load_share(args: tuple) -> tuple[int, float, np.ndarray, int]:
    url, key, payloads, clients, per_client, offset = args
    rate, latencies, errors = asyncio.run(
        load(url, key, payloads[offset:] + payloads[:offset], clients, per_client)
    )
    return clients * per_client, clients * per_client / rate, latencies, errors


def load_from_processes(
    url: str, key: str, payloads: list[bytes], clients: int, per_client: int, processes: int
) -> tuple[float, np.ndarray, int]:
    """The same closed loop from several client processes (one Python process tops out near 1,000 req/s)."""
    if processes <= 1 or clients < processes:
        return asyncio.run(load(url, key, payloads, clients, per_client))
    import multiprocessing

    shares = [
        (url, key, payloads, clients // processes + (i < clients % processes), per_client, i * 7)
        for i in range(processes)
    ]
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        results = pool.map(_load_share, shares)
    requests = sum(r[0] for r in results)
    elapsed = max(r[1] for r in results)
    return requests / elapsed, np.concatenate([r[2] for r in results]), sum(r[3] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="open_clip:ViT-B-32@random")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 256 on a GPU, 32 on CPU")
    parser.add_argument("--clients", default="1,4,16,64")
    parser.add_argument(
        "--requests", type=int, default=64, help="requests per concurrency level (at least 2 per client)"
    )
    parser.add_argument("--null-model", action="store_true")
    parser.add_argument(
        "--runtimes",
        default="auto",
        help="comma-separated COUNTERFEIT_RUNTIME values, each served and loaded in turn (e.g. torch,onnx)",
    )
    parser.add_argument("--summary-clients", type=int, default=16)
    parser.add_argument(
        "--client-processes", type=int, default=1, help="load generator processes (GPU runs need several)"
    )
    parser.add_argument(
        "--query-regions",
        default=None,
        help="COUNTERFEIT_QUERY_REGIONS for the server (index/regions.py); "
        "each region is one more model input per check",
    )
    parser.add_argument(
        "--local-features",
        choices=("on", "off"),
        default=None,
        help="COUNTERFEIT_LOCAL_FEATURES for the server: keypoints per check, top-5 verification",
    )
    args = parser.parse_args()

    from index.models import resolve_device

    device = resolve_device(args.device)
    batch_size = args.batch_size or (256 if device.startswith("cuda") else 32)
    runtimes = args.runtimes.split(",")
    bares = bare_model_throughputs(args.model, batch_size, runtimes, device=device)
    fastest = max(bares, key=bares.get)
    print(
        "bare forward: "
        + "  ".join(f"{rt} {rate:.1f} img/s" for rt, rate in bares.items())
        + f"; fastest {fastest}"
    )
    rates = {
        runtime: serve_and_load(args, device, batch_size, runtime, bares[fastest]) for runtime in runtimes
    }
    if len(rates) > 1:
        base = "torch" if "torch" in rates else runtimes[0]
        print(
            f"SUMMARY api-runtimes {args.model} {device}: checks/s @{args.summary_clients} "
            + "  ".join(f"{rt} {rate:.1f} (x{rate / rates[base]:.2f} {base})" for rt, rate in rates.items())
            + " (goal: onnx >= 2x torch on CPU)"
        )


def serve_and_load(args, device: str, batch_size: int, runtime: str, bare: float) -> float:
    """One server process on ``runtime``, loaded at each client count; prints its table and SUMMARY line and
    returns checks/s at the summary client count."""
    payloads = real_jpegs(40)
    port, key = free_port(), "bench-admin-key"
    env = {
        "COUNTERFEIT_DEVICE": device,
        "COUNTERFEIT_RUNTIME": runtime,
        "COUNTERFEIT_BATCH_SIZE": str(batch_size),
        "COUNTERFEIT_MAX_INFLIGHT_CHECKS": "1024",
        "COUNTERFEIT_EMBED_QUEUE_SIZE": "1024",
        "COUNTERFEIT_RATE_LIMIT_ADMIN": "0",
        "COUNTERFEIT_LOOKALIKE_DEBOUNCE_SECONDS": "0",
    }
    if args.null_model:
        env["COUNTERFEIT_BENCHMARK_NULL_FORWARD"] = "true"
    if args.query_regions:
        env["COUNTERFEIT_QUERY_REGIONS"] = args.query_regions
    if args.local_features:
        env["COUNTERFEIT_LOCAL_FEATURES"] = "true" if args.local_features == "on" else "false"
    with tempfile.TemporaryDirectory() as data_dir:
        server = start_server(Path(data_dir), args.model, port, key, env)
        url = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as admin:
                # Photos 0-9 of the 20 are registered: half the checks are re-uploads at another size (PDQ matches),
                # half are photos of nothing registered (CLIP candidates verified by keypoints).
                for i, data in enumerate(payloads[:10]):
                    admin.post(
                        "/v1/references",
                        files={"image": ("r.jpg", data, "image/jpeg")},
                        data={"brand": "acme", "label": "counterfeit" if i % 2 else "authentic"},
                    ).raise_for_status()
                settle(admin)
                asyncio.run(load(url, key, payloads, 2, 2))  # warm-up
                before = stage_breakdown(admin.get("/metrics").text)
                rows = {}
                for clients in (int(c) for c in args.clients.split(",")):
                    per_client = max(2, args.requests // clients)
                    rows[clients] = load_from_processes(
                        url, key, payloads, clients, per_client, args.client_processes
                    )
                after = stage_breakdown(admin.get("/metrics").text)
        finally:
            server.terminate()
            server.wait(timeout=60)

    regions = args.query_regions or os.environ.get("COUNTERFEIT_QUERY_REGIONS", "default")
    local = args.local_features or os.environ.get("COUNTERFEIT_LOCAL_FEATURES", "default")
    print(
        f"model {args.model}{' (NULL forward)' if args.null_model else ''} on {device}, runtime {runtime}, "
        f"query regions {regions}, local features {local}; fastest bare model {bare:.1f} img/s at batch {batch_size}"
    )
    print(f"{'clients':>8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for clients, (rate, latencies, errors) in rows.items():
        print(
            f"{clients:>8} {rate:>8.1f} {np.percentile(latencies, 50) * 1000:>8.0f} {np.percentile(latencies, 99) * 1000:>8.0f} {errors:>7}"
        )
    stages = []
    for stage, (total, count) in after.items():
        total -= before.get(stage, (0.0, 0.0))[0]
        count -= before.get(stage, (0.0, 0.0))[1]
        if count:
            stages.append(f"{stage} {total / count * 1000:.2f}")
    print(
        "mean ms per check by stage (decode/pdq/resize are CPU-worker time; *_wait include queueing): "
        + "  ".join(stages)
    )
    summary = args.summary_clients if args.summary_clients in rows else max(rows)
    rate, latencies, _ = rows[summary]
    # Each query region is one model input per check (index/regions.py): the model is fully fed at
    # bare / inputs checks per second, so the ratio compares model inputs per second, as bench.reindex does.
    inputs = len(query_regions(regions))
    print(
        f"SUMMARY api {args.model} {device} runtime={runtime}{' null-model' if args.null_model else ''} regions={regions} "
        f"local-features={local}: model inputs/s @{summary} / fastest bare model = {rate * inputs / bare:.2f} (goal >= 0.85 CPU, GPU >= 1000 req/s at 64 "
        f"with p99 <= 250 ms); {rate:.1f} req/s x {inputs} inputs a check, checks/s / bare {rate / bare:.2f}, "
        f"p99 {np.percentile(latencies, 99) * 1000:.0f} ms at {summary} clients, bare {bare:.1f} img/s"
    )
    return rate


if __name__ == "__main__":
    main()
