"""Hostile input and overload against the real server process (loopback only), issue 9's goals.

    python -m bench.hostile [--model open_clip:tiny-random] [--soak-seconds 600]

1. decode memory: 8 concurrent worst-case uploads (a 6 KB PNG that decodes to 50 MP, 1 bit per
   pixel), RSS sampled every 20 ms: peak rise over the warmed-up baseline, and RSS afterwards;
2. a hostile corpus (≥ 100 requests: bad metadata, ids, cursors, bodies, forms, fields, types,
   bombs, headers): 5xx count, and that nothing was written (reference count, audit rows);
3. overload: 64 closed-loop clients on /v1/check while /healthz is polled: probe latency p50/p99/max;
4. soak: mixed traffic (checks, registrations, listings, bad requests) for --soak-seconds:
   errors (5xx or transport) and RSS growth.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from bench.api import free_port, start_server
from index.synthetic import synthetic_image

ADMIN = "cfk_bench_admin"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def photo(seed: int) -> bytes:
    return png(synthetic_image(seed))


async def decode_memory(client: httpx.AsyncClient, pid: int) -> dict:
    for seed in range(4):  # warm up: model, allocator, thread pools
        await client.post("/v1/check", files={"image": ("w.png", photo(seed), "image/png")})
    await asyncio.sleep(1)
    baseline = rss_mb(pid)
    bomb = png(Image.new("1", (7071, 7071)))
    peak, done = baseline, False

    async def sample():
        nonlocal peak
        while not done:
            peak = max(peak, rss_mb(pid))
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    started = time.perf_counter()
    responses = await asyncio.gather(
        *(client.post("/v1/check", files={"image": ("b.png", bomb, "image/png")}) for _ in range(8))
    )
    seconds = time.perf_counter() - started
    done = True
    await sampler
    await asyncio.sleep(2)
    after = rss_mb(pid)
    return {
        "bomb_bytes": len(bomb),
        "statuses": sorted(r.status_code for r in responses),
        "seconds": round(seconds, 2),
        "baseline_mb": round(baseline),
        "peak_rise_mb": round(peak - baseline),
        "after_mb": round(after),
        "after_vs_baseline": round(after / baseline - 1, 3),
    }


def hostile_corpus() -> list[tuple[str, dict]]:
    """(name, httpx request kwargs) for ≥ 100 requests that must each get a 4xx."""
    ok = photo(1)
    form = {"brand": "acme", "label": "counterfeit"}
    cases: list[tuple[str, dict]] = []
    metadata = [
        '{"x": NaN}',
        '{"x": Infinity}',
        '{"x": -Infinity}',
        '{"x": 1e999}',
        "[" * 100_000,
        "{" * 50_000,
        '{"a":' * 9 + "1" + "}" * 9,
        json.dumps({"x": "y" * 17_000}),
        "[1]",
        '"text"',
        "{oops",
        "\x00",
        "null",
    ]
    for i, text in enumerate(metadata):
        cases.append(
            (
                f"metadata {i}",
                {
                    "method": "POST",
                    "url": "/v1/references",
                    "files": {"image": ("r.png", ok, "image/png")},
                    "data": {**form, "metadata": text},
                },
            )
        )
    for path in (
        "9223372036854775808",
        "-1",
        "0",
        "1e3",
        "abc",
        "99999999999999999999999999999",
        "1.5",
        "%00",
    ):
        for suffix in ("", "/image"):
            cases.append((f"id {path}{suffix}", {"method": "GET", "url": f"/v1/references/{path}{suffix}"}))
        cases.append((f"delete id {path}", {"method": "DELETE", "url": f"/v1/references/{path}"}))
    for cursor in ("9223372036854775808", "-1", "", "abc", "9" * 40, "%00", "1 OR 1=1"):
        cases.append(
            (f"cursor {cursor!r}", {"method": "GET", "url": "/v1/references", "params": {"cursor": cursor}})
        )
        cases.append(
            (f"audit cursor {cursor!r}", {"method": "GET", "url": "/v1/audit", "params": {"cursor": cursor}})
        )
    for name, params in (
        ("limit 0", {"limit": 0}),
        ("limit 501", {"limit": 501}),
        ("limit text", {"limit": "x"}),
        ("unknown query", {"lable": "counterfeit"}),
        ("bad label", {"label": "fake"}),
        ("bad brand", {"brand": "ACME!"}),
        ("empty brand", {"brand": ""}),
    ):
        cases.append((f"list {name}", {"method": "GET", "url": "/v1/references", "params": params}))
    fields = [
        ("label missing", {"brand": "acme"}),
        ("label unknown", {**form, "label": "fake"}),
        ("brand bad", {**form, "brand": "Acme Corp"}),
        ("brand empty", {**form, "brand": ""}),
        ("share 0", {**form, "share_signals": "0"}),
        ("share yes", {**form, "share_signals": "yes"}),
        ("unknown field", {**form, "colour": "red"}),
        ("product huge", {**form, "product": "p" * 2_000_000}),
        ("product control chars", {**form, "product": "a\x00b"}),
        ("source long", {**form, "source": "s" * 600}),
    ]
    for name, data in fields:
        cases.append(
            (
                f"register {name}",
                {
                    "method": "POST",
                    "url": "/v1/references",
                    "files": {"image": ("r.png", ok, "image/png")},
                    "data": data,
                },
            )
        )
    images = [
        ("empty", b""),
        ("text", b"not an image"),
        ("truncated png", ok[:200]),
        ("html", b"<html><script>1</script>"),
        ("bomb 56 MP", png(Image.new("L", (8000, 7000)))),
        ("gif header only", b"GIF89a" + b"\0" * 20),
        ("jpeg header only", b"\xff\xd8\xff\xe0" + b"\0" * 30),
    ]
    for name, data in images:
        cases.append(
            (
                f"register image {name}",
                {
                    "method": "POST",
                    "url": "/v1/references",
                    "files": {"image": ("x.jpg", data, "image/jpeg")},
                    "data": form,
                },
            )
        )
        cases.append(
            (
                f"check image {name}",
                {"method": "POST", "url": "/v1/check", "files": {"image": ("x.jpg", data, "image/jpeg")}},
            )
        )
    for name, data in (
        ("k 0", {"k": "0"}),
        ("k 1000", {"k": "1000"}),
        ("k text", {"k": "ten"}),
        ("k empty", {"k": ""}),
        ("brand bad", {"brand": "NOT VALID"}),
        ("unknown", {"kk": "3"}),
    ):
        cases.append(
            (
                f"check {name}",
                {
                    "method": "POST",
                    "url": "/v1/check",
                    "files": {"image": ("q.png", ok, "image/png")},
                    "data": data,
                },
            )
        )
    too_many = [("images", (f"{i}.png", ok, "image/png")) for i in range(33)]
    cases.append(("batch 33 images", {"method": "POST", "url": "/v1/check/batch", "files": too_many}))
    cases.append(
        (
            "body over limit (Content-Length)",
            {
                "method": "POST",
                "url": "/v1/check",
                "files": {"image": ("big.jpg", b"\xff" * (22 << 20), "image/jpeg")},
            },
        )
    )

    async def chunked():  # no Content-Length: the limit must stop it as it arrives
        yield b'--xyz\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n'
        for _ in range(30):
            yield b"\0" * (1 << 20)

    cases.append(
        (
            "chunked body over limit",
            {
                "method": "POST",
                "url": "/v1/check",
                "content": chunked(),
                "headers": {"Content-Type": "multipart/form-data; boundary=xyz"},
            },
        )
    )
    for name, body in (
        ("unknown field", {"auto_add_confirmed_counterfeits": True, "typo": 1}),
        ("0 as bool", {"auto_add_confirmed_counterfeits": 0}),
        ("text as number", {"counterfeit_threshold": "0.9"}),
        ("threshold 1", {"counterfeit_threshold": 1}),
        ("order", {"counterfeit_threshold": 0.2, "authentic_threshold": 0.5}),
        ("list", [1, 2]),
    ):
        cases.append((f"policy {name}", {"method": "PUT", "url": "/v1/brands/acme/policy", "json": body}))
    cases.append(("policy bad brand", {"method": "PUT", "url": "/v1/brands/ACME/policy", "json": {}}))
    cases.append(
        (
            "policy invalid json",
            {
                "method": "PUT",
                "url": "/v1/brands/acme/policy",
                "content": b"{",
                "headers": {"Content-Type": "application/json"},
            },
        )
    )
    for name, body in (
        ("unknown", {"engine": "local", "egnine": "ray"}),
        ("index type", {"index_type": "hnsw2"}),
        ("engine", {"engine": "spark"}),
        ("model", {"model": "nope:nothing"}),
        ("types", {"model": 5}),
    ):
        cases.append((f"reindex {name}", {"method": "POST", "url": "/v1/reindex", "json": body}))
    for name, body in (
        ("empty", {}),
        (
            "bad signature",
            {
                "format": "counterfeit-signals/1",
                "issuer": "x",
                "brand": "acme",
                "created_at": "",
                "signals": [],
                "signature": "AAAA",
            },
        ),
        ("deep", json.loads("[" * 500 + "]" * 500)),
        ("huge", {"signals": ["x" * 100] * 20_000}),
    ):
        cases.append(
            (f"signals import {name}", {"method": "POST", "url": "/v1/signals/import", "json": body})
        )
    for name, body in (("label", {"label": "fake"}), ("unknown", {"label": "authentic", "x": 1})):
        cases.append((f"review {name}", {"method": "POST", "url": "/v1/checks/chk_0/review", "json": body}))
    for name, headers in (
        ("no auth", {"Authorization": ""}),
        ("basic", {"Authorization": "Basic YTpi"}),
        ("unknown key", {"Authorization": "Bearer cfk_nope"}),
        ("huge key", {"Authorization": "Bearer " + "k" * 6000}),
    ):
        cases.append((f"auth {name}", {"method": "GET", "url": "/v1/references", "headers": headers}))
    cases.append(
        (
            "keys rotate negative overlap",
            {"method": "POST", "url": "/v1/keys/rotate", "json": {"overlap_hours": -1}},
        )
    )
    cases.append(("method not allowed", {"method": "PATCH", "url": "/v1/references"}))
    return cases + issue_25_corpus(ok, form)


def _zip(members: dict[str, bytes]) -> bytes:
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _huge_parquet(rows: int = 2_000_000) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(
        pa.table(
            {
                "listing_id": pa.array(["L1"] * rows),
                "image_urls": pa.array(["http://example.com/a.jpg"] * rows),
            }
        ),
        buffer,
        compression="zstd",
    )
    return buffer.getvalue()


def issue_25_corpus(ok: bytes, form: dict) -> list[tuple[str, dict]]:
    """What broke the service in issue 25: each must be a 4xx that writes nothing."""
    cases: list[tuple[str, dict]] = []
    for i, text in enumerate(
        [
            '{"a": "\\ud800"}',
            '{"\\udfff": 1}',
            '{"a": ["\\udc00\\ud800"]}',
            '{"a": "x\\u0000y"}',
            '{"\\u0000": 1}',
            '{"a": {"b": "\\ud83d"}}',
        ]
    ):
        cases.append(
            (
                f"metadata text {i}",
                {
                    "method": "POST",
                    "url": "/v1/references",
                    "files": {"image": ("r.png", ok, "image/png")},
                    "data": {**form, "metadata": text},
                },
            )
        )
    for spelling in ("+1", "%201", "01", "1.0", "1%20", "%2B1", "0x1", "1_0"):
        for method, suffix in (("GET", ""), ("GET", "/image"), ("DELETE", "")):
            cases.append(
                (
                    f"id spelling {method} {spelling}{suffix}",
                    {"method": method, "url": f"/v1/references/{spelling}{suffix}"},
                )
            )
    for host in ("a..b", ".x", "a" * 64 + ".com", "-", "x..", "..", "a.-.b", "\u2024.com"):
        cases.append(
            (
                f"image_url host {host[:12]}",
                {"method": "POST", "url": "/v1/check", "data": {"image_url": f"http://{host}/p.jpg"}},
            )
        )
        cases.append(
            (
                f"webhook host {host[:12]}",
                {
                    "method": "POST",
                    "url": "/v1/webhooks",
                    "json": {"url": f"http://{host}/hook", "events": ["review.confirmed"]},
                },
            )
        )
    cases += [
        (
            "two labels",
            {
                "method": "POST",
                "url": "/v1/references",
                "files": {"image": ("r.png", ok, "image/png")},
                "data": {"brand": "acme", "label": ["authentic", "counterfeit"]},
            },
        ),
        (
            "two images",
            {
                "method": "POST",
                "url": "/v1/references",
                "data": form,
                "files": [("image", ("a.png", ok, "image/png")), ("image", ("b.png", photo(2), "image/png"))],
            },
        ),
        (
            "two check images",
            {
                "method": "POST",
                "url": "/v1/check",
                "files": [("image", ("a.png", ok, "image/png")), ("image", ("b.png", photo(2), "image/png"))],
            },
        ),
        (
            "duplicate query",
            {
                "method": "GET",
                "url": "/v1/references",
                "params": [("label", "authentic"), ("label", "counterfeit")],
            },
        ),
        (
            "duplicate json key",
            {
                "method": "PUT",
                "url": "/v1/brands/acme/policy",
                "headers": {"Content-Type": "application/json"},
                "content": b'{"auto_add_confirmed_counterfeits": false, "auto_add_confirmed_counterfeits": true}',
            },
        ),
    ]
    for price in ("inf", "-inf", "nan", "1e999", "Infinity"):
        cases.append(
            (
                f"listing price {price}",
                {
                    "method": "POST",
                    "url": "/v1/listings/check",
                    "data": {"price": price},
                    "files": [("images", ("a.png", ok, "image/png"))],
                },
            )
        )
    for email in ("\u202e@evil.com", "moc.live\u202e@x.com", "a\u200b@b.com", "a\u2066@b.com"):
        cases.append(
            (
                f"seller email {email!r}",
                {
                    "method": "POST",
                    "url": "/v1/listings/check",
                    "files": [("images", ("a.png", ok, "image/png"))],
                    "data": {"seller_id": "s", "marketplace": "m", "seller_email": email},
                },
            )
        )
    good = '{"listing_id": "L1", "image_urls": ["http://example.com/a.jpg"]}'
    feeds = [
        (
            "jsonl Infinity",
            "f.jsonl",
            f'{good}\n{{"listing_id": "L2", "image_urls": ["x"], "price": Infinity}}'.encode(),
        ),
        ("jsonl NaN", "f.jsonl", b'{"listing_id": "L2", "image_urls": ["x"], "price": NaN}'),
        ("jsonl 1e999", "f.jsonl", b'{"listing_id": "L2", "image_urls": ["x"], "price": 1e999}'),
        ("jsonl bad utf-8", "f.jsonl", good.encode() + b'\n{"listing_id": "L\xff"}'),
        ("jsonl surrogate", "f.jsonl", b'{"listing_id": "L1", "title": "\\ud800", "image_urls": ["x"]}'),
        ("csv inf price", "f.csv", b"listing_id,image_urls,price\nL1,http://a/b.jpg,inf\n"),
        ("csv duplicate header", "f.csv", b"listing_id,image_urls,listing_id\nL1,http://a/b.jpg,L2\n"),
        ("csv bad utf-8", "f.csv", b"listing_id,image_urls\nL\xe9,http://a/c.jpg\n"),
        (
            "csv huge cell",
            "f.csv",
            b"listing_id,image_urls,title\nL1,http://a/b.jpg," + b"t" * 140_000 + b"\n",
        ),
        ("parquet 2,000,000 rows", "f.parquet", _huge_parquet()),
    ]
    for name, filename, body in feeds:
        cases.append(
            (
                f"scan feed {name}",
                {"method": "POST", "url": "/v1/scans", "files": {"feed": (filename, body, "x")}},
            )
        )
    archive = _zip({f"p{i}.jpg": photo(100 + i) for i in range(20)})
    rows = [{"listing_id": f"L{i}", "image_files": [f"p{i}.jpg"]} for i in range(19)] + [
        {"listing_id": "L19", "price": -1, "image_files": ["p19.jpg"]}
    ]
    cases.append(
        (
            "scan archive bad last row",
            {
                "method": "POST",
                "url": "/v1/scans",
                "files": {
                    "feed": ("f.jsonl", "\n".join(json.dumps(r) for r in rows).encode(), "x"),
                    "images": ("p.zip", archive, "application/zip"),
                },
            },
        )
    )
    return cases


def data_dir_bytes(data_dir: Path) -> int:
    """Blobs and index files (not the database, whose WAL moves with every read)."""
    return sum(
        p.stat().st_size for p in data_dir.rglob("*") if p.is_file() and "counterfeit.db" not in p.name
    )


async def written(client: httpx.AsyncClient, data_dir: Path) -> tuple:
    return (
        (await client.get("/v1/info")).json()["references"],
        len((await client.get("/v1/audit", params={"limit": 500})).json()["items"]),
        len((await client.get("/v1/jobs", params={"limit": 100})).json()["items"]),
        data_dir_bytes(data_dir),
    )


async def hostile(client: httpx.AsyncClient, callers: dict[str, str], data_dir: Path) -> dict:
    """The corpus as every role (admin, platform, brand): each request must be a 4xx, and nothing may be written."""
    before = await written(client, data_dir)
    statuses: dict[int, int] = {}
    server_errors = []
    cases = hostile_corpus()
    for role, key in callers.items():
        for name, request in cases:
            try:
                response = await client.request(
                    **{**request, "headers": {"Authorization": f"Bearer {key}", **request.get("headers", {})}}
                )
                status = response.status_code
            except httpx.HTTPError:  # a 413 sent before the upload finished, then the connection closed
                status = "refused, closed"
            statuses[status] = statuses.get(status, 0) + 1
            if status != "refused, closed" and not 400 <= status < 500:
                server_errors.append((role, name, status))
    after = await written(client, data_dir)
    return {
        "requests": len(cases) * len(callers),
        "statuses": dict(sorted(statuses.items(), key=str)),
        "not_4xx": server_errors,
        "nothing_written": before == after,
        "before_after": [before, after],
    }


def probe_healthz(url: str, seconds: float, out) -> None:
    """Runs in its own process, so the probe's latency is the server's, not the load generator's event loop."""
    latencies = []
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=url, timeout=10) as client:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            assert client.get("/healthz").status_code == 200
            latencies.append((time.perf_counter() - started) * 1000)
            time.sleep(0.05)
    out.send(latencies)


async def overload(url: str, seconds: float, clients: int = 64) -> dict:
    import multiprocessing

    limits = httpx.Limits(max_connections=clients + 4)
    deadline = time.monotonic() + seconds
    counts: dict[int, int] = {}

    without_retry_after = 0
    errors: dict[str, int] = {}

    async def worker(client, seed):
        nonlocal without_retry_after
        data = photo(seed % 16)
        while time.monotonic() < deadline:
            try:
                response = await client.post("/v1/check", files={"image": ("q.png", data, "image/png")})
                status = response.status_code
                without_retry_after += status == 503 and "retry-after" not in response.headers
            except httpx.HTTPError as exc:  # a reset or a closed connection: the client never got an answer
                status = -1
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            counts[status] = counts.get(status, 0) + 1

    receiver, sender = multiprocessing.Pipe(duplex=False)
    prober = multiprocessing.get_context("spawn").Process(target=probe_healthz, args=(url, seconds, sender))
    prober.start()
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120, limits=limits) as load:
        await asyncio.gather(*(worker(load, i) for i in range(clients)))
    probes = np.array(receiver.recv())
    prober.join()
    return {
        "clients": clients,
        "seconds": seconds,
        "check_statuses": counts,
        "resets": counts.get(-1, 0),
        "errors": errors,
        "503_without_retry_after": without_retry_after,
        "checks_per_second": round(sum(v for k, v in counts.items() if k == 200) / seconds, 1),
        "healthz_ms": {
            "n": len(probes),
            "p50": round(float(np.percentile(probes, 50)), 1),
            "p99": round(float(np.percentile(probes, 99)), 1),
            "max": round(float(probes.max()), 1),
        },
    }


async def soak(client: httpx.AsyncClient, pid: int, seconds: float) -> dict:
    deadline = time.monotonic() + seconds
    start_rss = rss_mb(pid)
    errors, requests, seed = 0, 0, 1000

    async def worker(kind: int):
        nonlocal errors, requests, seed
        while time.monotonic() < deadline:
            seed += 1
            try:
                if kind == 0:
                    response = await client.post(
                        "/v1/references",
                        files={"image": ("r.png", photo(seed % 400), "image/png")},
                        data={"brand": "soak", "label": "counterfeit" if seed % 2 else "authentic"},
                    )
                elif kind == 1:
                    response = await client.get("/v1/references", params={"brand": "soak", "limit": 50})
                elif kind == 2:
                    response = await client.post(
                        "/v1/references",
                        files={"image": ("x", b"junk", "image/png")},
                        data={"brand": "soak", "label": "authentic", "metadata": '{"x": NaN}'},
                    )
                else:
                    response = await client.post(
                        "/v1/check", files={"image": ("q.png", photo(seed % 400), "image/png")}
                    )
                errors += response.status_code >= 500
            except httpx.HTTPError:
                errors += 1
            requests += 1

    await asyncio.gather(*(worker(i % 4) for i in range(8)))
    await asyncio.sleep(2)
    end_rss = rss_mb(pid)
    return {
        "seconds": seconds,
        "requests": requests,
        "errors": errors,
        "rss_start_mb": round(start_rss),
        "rss_end_mb": round(end_rss),
        "rss_growth": round(end_rss / start_rss - 1, 3),
    }


def create_key(data_dir: Path, role: str) -> str:
    """A key of ``role`` made by the CLI on the server's data directory (brand keys are acme's)."""
    import os
    import subprocess
    import sys

    extra = ["--brand", "acme"] if role == "brand" else []
    env = {**os.environ, "COUNTERFEIT_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "service", "keys", "create", "--role", role, *extra],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


async def run(args) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        import os

        # Admission at 100 checks in flight: the crowd run (200 clients) is refused in part, as production overload is.
        os.environ.update(
            {
                "COUNTERFEIT_RATE_LIMIT_ADMIN": "0",
                "COUNTERFEIT_TORCH_THREADS": "1",
                "COUNTERFEIT_MAX_INFLIGHT_CHECKS": str(args.max_inflight),
            }
        )
        process = start_server(Path(tmp), args.model, port, ADMIN)
        try:
            async with httpx.AsyncClient(
                base_url=url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=120
            ) as client:
                for seed in range(16):
                    await client.post(
                        "/v1/references",
                        files={"image": ("r.png", photo(seed), "image/png")},
                        data={"brand": "acme", "label": "counterfeit"},
                    )
                memory = await decode_memory(client, process.pid)
                print("decode memory:", json.dumps(memory))
                callers = {
                    "admin": ADMIN,
                    **{role: create_key(Path(tmp), role) for role in ("platform", "brand")},
                }
                corpus = await hostile(client, callers, Path(tmp))
                print("hostile corpus:", json.dumps(corpus))
            loaded = await overload(url, args.overload_seconds)
            print("overload:", json.dumps(loaded))
            crowded = await overload(url, args.overload_seconds, clients=args.crowd_clients)
            print("overload (crowd):", json.dumps(crowded))
            if args.soak_seconds:
                async with httpx.AsyncClient(
                    base_url=url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=120
                ) as client:
                    soaked = await soak(client, process.pid, args.soak_seconds)
                print("soak:", json.dumps(soaked))
        finally:
            process.terminate()
            process.wait(timeout=30)
    print(
        f"SUMMARY 8 worst-case uploads: RSS +{memory['peak_rise_mb']} MB peak, after {memory['after_vs_baseline']:+.1%} "
        f"of baseline; hostile: {corpus['requests']} requests, {len(corpus['not_4xx'])} not 4xx, nothing written "
        f"{corpus['nothing_written']}; /healthz at {loaded['clients']} clients p99 {loaded['healthz_ms']['p99']} ms; "
        f"{crowded['clients']} clients: {crowded['resets']} resets, {crowded['check_statuses'].get(503, 0)} 503s "
        f"({crowded['503_without_retry_after']} without Retry-After)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="open_clip:tiny-random")
    parser.add_argument("--overload-seconds", type=float, default=20)
    parser.add_argument("--soak-seconds", type=float, default=0)
    parser.add_argument(
        "--crowd-clients", type=int, default=200, help="clients of the second overload run (resets)"
    )
    parser.add_argument(
        "--max-inflight", type=int, default=100, help="the server's COUNTERFEIT_MAX_INFLIGHT_CHECKS"
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
