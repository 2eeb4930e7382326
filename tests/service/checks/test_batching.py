"""Concurrent requests share forward passes, overload is refused cleanly, batch checks keep order."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from index.regions import query_regions
from tests.helpers import ThreadedServer, make_settings, product_photo

SEEDS = list(range(300, 316))


def _metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


async def _concurrent_checks(url: str, key: str, payloads: list[bytes]) -> list[httpx.Response]:
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as client:
        return await asyncio.gather(
            *(client.post("/v1/check", files={"image": ("q.png", p, "image/png")}) for p in payloads)
        )


@pytest.fixture
def batching_server(tmp_path, keys_for):
    # A wait long enough that requests whose CPU preparation (decode, PDQ, regions, keypoints) finishes at
    # different moments still meet: on a loaded 2-core machine those moments spread over more than 50 ms, and
    # with a 50 ms wait every check had its own forward pass (a PostgreSQL-pass failure). The runner waits
    # only while arrivals are that dense, and a full batch goes at once.
    settings = make_settings(tmp_path / "data", batch_max_wait_ms=1000)
    keys = keys_for(settings)
    server = ThreadedServer(settings).start()
    yield server, keys
    server.stop()


def test_concurrent_checks_share_batches_without_mix_ups(batching_server):
    server, keys = batching_server
    with server.client(keys.admin) as admin:
        ids = {
            seed: admin.post(
                "/v1/references",
                files={"image": ("r.png", product_photo(seed), "image/png")},
                data={"brand": "acme", "label": "counterfeit"},
            ).json()["id"]
            for seed in SEEDS
        }
        before = admin.get("/metrics").text
    responses = asyncio.run(
        _concurrent_checks(server.url, keys.platform, [product_photo(seed) for seed in SEEDS])
    )
    for seed, response in zip(SEEDS, responses):
        assert response.status_code == 200, response.text
        top = response.json()["evidence"][0]
        assert top["reference_id"] == ids[seed] and top["similarity"] > 0.999, f"seed {seed} got {top}"
    with server.client(keys.admin) as admin:
        after = admin.get("/metrics").text
    batches = _metric(after, "counterfeit_embed_batch_size_count") - _metric(
        before, "counterfeit_embed_batch_size_count"
    )
    images = _metric(after, "counterfeit_embed_batch_size_sum") - _metric(
        before, "counterfeit_embed_batch_size_sum"
    )
    assert images == len(SEEDS) * len(
        query_regions(server.settings.query_regions)
    )  # and each check's regions
    assert batches < len(SEEDS), "every image had its own forward pass: no batching happened"
    assert 'counterfeit_http_requests_total{endpoint="/v1/check",method="POST",status="200"} 16.0' in after
    assert "counterfeit_index_vectors" in after and "counterfeit_search_seconds_count" in after


def test_full_queue_answers_503_with_retry_after_and_recovers(tmp_path, keys_for):
    settings = make_settings(
        tmp_path / "data", embed_queue_size=1, batch_size=1, batch_max_wait_ms=0, decode_threads=8
    )
    keys = keys_for(settings)
    server = ThreadedServer(settings).start()
    try:
        refused = []
        for _ in range(5):  # overload is a race by nature; a few bursts make it certain in practice
            responses = asyncio.run(
                _concurrent_checks(server.url, keys.platform, [product_photo(s) for s in range(64)])
            )
            refused = [r for r in responses if r.status_code == 503]
            assert all(r.status_code in (200, 503) for r in responses)
            if refused:
                break
        assert refused, "64 concurrent checks never filled a queue of 1"
        assert refused[0].headers["retry-after"] == "1"
        assert refused[0].json()["error"]["code"] == "overloaded"
        with server.client(keys.platform) as platform:
            response = platform.post("/v1/check", files={"image": ("q.png", product_photo(1), "image/png")})
        assert response.status_code == 200
        with server.client(keys.admin) as admin:
            assert _metric(admin.get("/metrics").text, "counterfeit_embed_rejected_total") >= len(refused)
    finally:
        server.stop()


def test_batch_endpoint_keeps_order_and_isolates_bad_images(server, keys, admin):
    ids = {
        seed: admin.post(
            "/v1/references",
            files={"image": ("r.png", product_photo(seed), "image/png")},
            data={"brand": "acme", "label": "counterfeit"},
        ).json()["id"]
        for seed in (1, 4, 7)
    }
    files = [
        ("images", ("a.png", product_photo(7), "image/png")),
        ("images", ("broken.jpg", b"definitely not a jpeg", "image/jpeg")),
        ("images", ("b.png", product_photo(1), "image/png")),
        ("images", ("c.png", product_photo(4), "image/png")),
    ]
    with server.client(keys.platform) as platform:
        response = platform.post("/v1/check/batch", files=files, data={"k": "2"})
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        assert [r["index"] for r in results] == [0, 1, 2, 3]
        assert [r["status"] for r in results] == [200, 422, 200, 200]
        assert results[1]["error"]["code"] == "not_an_image" and results[1]["filename"] == "broken.jpg"
        assert [results[i]["result"]["evidence"][0]["reference_id"] for i in (0, 2, 3)] == [
            ids[7],
            ids[1],
            ids[4],
        ]
        assert all(len(results[i]["result"]["evidence"]) == 2 for i in (0, 2, 3))
        assert results[1]["result"] is None and results[0]["error"] is None
        too_many = [("images", (f"{i}.png", product_photo(1), "image/png")) for i in range(33)]
        assert platform.post("/v1/check/batch", files=too_many).json()["error"]["code"] == "too_many_images"
    with server.client(keys.brand_a) as brand:
        assert brand.post("/v1/check/batch", files=files).status_code == 403


def test_a_lone_request_does_not_wait_for_company():
    """The batch wait applies only while submissions arrive faster than it: one caller is not delayed."""
    import time

    import numpy as np

    from index.models import load_embedder
    from service.serving.embedding import BatchingModelRunner

    embedder = load_embedder("open_clip:tiny-random")
    pixels = np.zeros((embedder.pixel_config.crop, embedder.pixel_config.crop, 3), dtype=np.uint8)
    runner = BatchingModelRunner(embedder, max_batch=32, max_wait_seconds=2.0)
    try:
        runner.embed([pixels])  # warm-up
        time.sleep(2.5)  # a lone client: its next request comes later than the batch wait
        started = time.monotonic()
        runner.embed([pixels])
        assert time.monotonic() - started < 1.5, "a lone request waited for a batch that was never coming"
        # Under load the wait is used: a burst submitted together shares one forward pass.
        futures = [runner.submit(pixels) for _ in range(8)]
        assert all(f.result(timeout=30).shape == (embedder.dimension,) for f in futures)
    finally:
        runner.close()


def test_a_swap_never_strands_a_request_that_holds_the_old_serving():
    """A request that took the serving before a generation swap but queues its image after it is still
    embedded by the old model (it used to wait forever behind the stopped runner's stop signal)."""
    from types import SimpleNamespace

    import numpy as np

    from index.models import load_embedder
    from service.serving.embedding import BatchingModelRunner, RunnerClosed
    from service.serving.runner import ServingSlot

    embedder = load_embedder("open_clip:tiny-random")
    pixels = np.zeros((embedder.pixel_config.crop, embedder.pixel_config.crop, 3), dtype=np.uint8)
    old = SimpleNamespace(runner=BatchingModelRunner(embedder), users=0, retired=False)
    new = SimpleNamespace(runner=BatchingModelRunner(embedder), users=0, retired=False)
    slot = ServingSlot(old)
    try:
        with slot.use() as serving:
            assert slot.replace(new) is old and slot.current is new
            # The swap happened between reading the serving and queueing the image (the CPU workers' time).
            assert serving.runner.submit(pixels).result(timeout=30).shape == (embedder.dimension,)
        with pytest.raises(RunnerClosed):  # the last user let go: the old runner is stopped, and says so
            old.runner.submit(pixels)
        with slot.use() as serving:
            assert serving is new and serving.runner.submit(pixels).result(timeout=30).shape == (
                embedder.dimension,
            )
        slot.replace(old)  # nobody holds ``new``: stopped at once
        with pytest.raises(RunnerClosed):
            new.runner.submit(pixels)
    finally:
        old.runner.close()
        new.runner.close()
