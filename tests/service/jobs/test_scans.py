"""Catalogue scans over HTTP: a feed of listings with image URLs on a local server, checked as a job."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import time
import zipfile
from http.server import BaseHTTPRequestHandler

import httpx
import pytest

from service.db.models import Role
from tests.helpers import (
    background_http,
    create_api_key,
    free_port,
    make_settings,
    product_photo,
    reply,
    resized_jpeg_copy,
    running,
    sql,
)
from tests.service.cli.test_cli import run_cli
from tests.system.test_durability import _start_process

FAKE, GENUINE = 1, 4


class ImageHost:
    """Listing photos on loopback: /img/<seed>.jpg is a resized re-upload of product photo <seed>."""

    def __init__(self, delay: float = 0.0):
        self.served = 0
        host = self
        cache: dict[int, bytes] = {}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                seed = int(self.path.rsplit("/", 1)[-1].split(".")[0])
                body = cache.setdefault(seed, resized_jpeg_copy(seed))
                time.sleep(delay)
                host.served += 1
                reply(self, 200, body, "image/jpeg")

            def log_message(self, *args):
                pass

        self.server, self.url = background_http(Handler)


def _feed(host: ImageHost, listings: int) -> tuple[list[dict], set[str]]:
    """Every 10th listing shows the registered fake (sold by bad-seller); the rest genuine or unrelated photos."""
    rows, fakes = [], set()
    for i in range(listings):
        if i % 10 == 0:
            photos, seller = [FAKE], "bad-seller"
            fakes.add(f"L{i}")
        else:
            photos, seller = [GENUINE if i % 3 else 100 + i % 7], f"shop-{i % 5}"
        rows.append(
            {
                "listing_id": f"L{i}",
                "seller_id": seller,
                "marketplace": "mkt",
                "price": 10.0 + i,
                "image_urls": [f"{host.url}/img/{seed}.jpg" for seed in photos],
            }
        )
    return rows, fakes


def _jsonl(rows: list[dict]) -> bytes:
    return "\n".join(json.dumps(r) for r in rows).encode()


def _register(client, seed: int, label: str) -> None:
    response = client.post(
        "/v1/references",
        files={"image": (f"{seed}.png", product_photo(seed), "image/png")},
        data={"brand": "acme", "label": label},
    )
    assert response.status_code == 201, response.text


def _wait(client, scan_id: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        scan = client.get(f"/v1/scans/{scan_id}").json()
        if scan["state"] in ("succeeded", "failed", "cancelled"):
            return scan
        assert time.monotonic() < deadline, scan
        time.sleep(0.3)


def test_a_scan_of_200_listings_finds_the_registered_fakes(tmp_path, keys_for):
    settings = make_settings(tmp_path / "data", unsafe_fetch_allow_loopback_for_tests=True)
    keys = keys_for(settings)
    host = ImageHost()
    rows, fakes = _feed(host, 200)
    rows.append(
        {"listing_id": "private", "image_urls": ["http://10.0.0.1/a.jpg"]}
    )  # refused by the fetcher: failed
    with (
        running(settings) as server,
        server.client(keys.admin) as admin,
        server.client(keys.platform) as platform,
    ):
        _register(admin, FAKE, "counterfeit")
        _register(admin, GENUINE, "authentic")
        started = platform.post(
            "/v1/scans", files={"feed": ("feed.jsonl", _jsonl(rows), "application/x-ndjson")}
        )
        assert started.status_code == 202, started.text
        assert started.json()["listings"] == 201
        scan_id = started.json()["scan_id"]
        scan = _wait(platform, scan_id)
        assert scan["state"] == "succeeded" and scan["done"] == scan["total"] == 201, scan
        assert scan["summary"]["verdicts"]["likely_counterfeit"] == len(fakes) == 20
        assert scan["summary"]["states"] == {"done": 200, "failed": 1}
        [failure] = scan["failures"]  # the status names the failed listing, not "failures": []
        assert failure["listing_id"] == "private" and "forbidden_address" in failure["error"]

        found = []
        after = 0
        while after is not None:  # paged in feed order
            page = platform.get(
                f"/v1/scans/{scan_id}/results",
                params={"verdict": "likely_counterfeit", "after": after, "limit": 7},
            ).json()
            found += [item["listing_id"] for item in page["items"]]
            after = page["next_after"]
        assert set(found) == fakes
        [failed] = platform.get(f"/v1/scans/{scan_id}/results", params={"state": "failed"}).json()["items"]
        assert failed["listing_id"] == "private" and "forbidden_address" in failed["error"]

        sellers = platform.get(f"/v1/scans/{scan_id}/sellers").json()["items"]
        assert sellers[0]["seller_id"] == "bad-seller" and sellers[0]["likely_counterfeit"] == 20
        assert all(s["likely_counterfeit"] == 0 for s in sellers[1:])
        exported = platform.get(f"/v1/scans/{scan_id}/export", params={"format": "csv"})
        table = list(csv.DictReader(io.StringIO(exported.text)))
        assert (
            len(table) == 201
            and {r["listing_id"] for r in table if r["verdict"] == "likely_counterfeit"} == fakes
        )
        fake_row = next(r for r in table if r["verdict"] == "likely_counterfeit")
        assert fake_row["matched_label"] == "counterfeit" and fake_row["matched_reference_id"]
        assert (
            fake_row["reason"].startswith(("clip", "pdq", "local"))
            and "counterfeit reference" in fake_row["reason"]
        )
        assert (
            next(r for r in table if r["listing_id"] == "private")["reason"] == ""
        )  # failed: nothing judged
        import pyarrow.parquet as pq

        parquet = pq.read_table(
            io.BytesIO(platform.get(f"/v1/scans/{scan_id}/export", params={"format": "parquet"}).content)
        )
        assert parquet.num_rows == 201 and "counterfeit_probability" in parquet.column_names
        # Each listing was checked as a listing: seller records follow the scan.
        assert platform.get("/v1/sellers/mkt/bad-seller").json()["likely_counterfeit"] == 20
        # Brand keys do not run or read scans; their reviewers see its hits in the review queue, marked as such.
        with server.client(keys.brand_a) as brand:
            assert brand.get(f"/v1/scans/{scan_id}").status_code == 403
        with httpx.Client(base_url=str(server.client().base_url)) as browser:
            assert browser.post("/ui/login", data={"api_key": keys.brand_a}).status_code == 303
            queue = browser.get("/ui", params={"source": "scan", "verdict": "likely_counterfeit"}).text
            rows, repeats = queue.count("data-href="), [int(n) for n in re.findall(r"seen (\d+)×", queue)]
            # one row per photo (the fakes are copies of one photo), marked as the scan's; 20 checks in all
            assert sum(repeats) + rows - len(repeats) == 20 and queue.count(f"scan {scan_id}") == rows
        assert host.served == 200


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_photos_uploaded_in_an_archive_instead_of_urls(server, keys, admin, settings):
    _register(admin, FAKE, "counterfeit")
    archive = _zip({"fake.jpg": resized_jpeg_copy(FAKE), "other.jpg": resized_jpeg_copy(9)})
    rows = [
        {"listing_id": "A", "image_files": ["fake.jpg"]},
        {"listing_id": "B", "image_files": ["other.jpg", "fake.jpg"]},
        {"listing_id": "C", "image_files": ["other.jpg"]},
    ]
    with server.client(keys.platform) as platform:
        missing = platform.post(
            "/v1/scans",
            files={
                "feed": ("f.jsonl", _jsonl([{"listing_id": "X", "image_files": ["no.jpg"]}]), "x"),
                "images": ("p.zip", archive, "application/zip"),
            },
        )
        assert missing.status_code == 422 and "not in the images archive" in missing.text
        not_zip = platform.post(
            "/v1/scans", files={"feed": ("f.jsonl", _jsonl(rows), "x"), "images": ("p.zip", b"PK no", "x")}
        )
        assert not_zip.status_code == 422 and not_zip.json()["error"]["code"] == "invalid_archive"
        assert sql(settings, "SELECT count(*) FROM scan_items") == [(0,)]
        started = platform.post(
            "/v1/scans",
            files={"feed": ("f.jsonl", _jsonl(rows), "x"), "images": ("p.zip", archive, "application/zip")},
        )
        assert started.status_code == 202, started.text
        scan = _wait(platform, started.json()["scan_id"])
        results = platform.get(f"/v1/scans/{scan['id']}/results").json()["items"]
    assert [(r["listing_id"], r["verdict"]) for r in results] == [
        ("A", "likely_counterfeit"),
        ("B", "likely_counterfeit"),
        ("C", "no_match"),
    ]


def test_a_cancelled_scan_stops_and_keeps_what_it_finished(tmp_path, keys_for):
    settings = make_settings(tmp_path / "data", unsafe_fetch_allow_loopback_for_tests=True)
    keys = keys_for(settings)
    host = ImageHost(delay=0.3)
    rows, _ = _feed(host, 300)
    with running(settings) as server, server.client(keys.platform) as platform:
        scan_id = platform.post("/v1/scans", files={"feed": ("f.jsonl", _jsonl(rows), "x")}).json()["scan_id"]
        assert (
            platform.post("/v1/scans", files={"feed": ("f.jsonl", _jsonl(rows[:1]), "x")}).status_code == 409
        )  # one at a time
        time.sleep(1.0)
        cancelling = platform.post(f"/v1/scans/{scan_id}/cancel")
        assert cancelling.status_code == 200 and cancelling.json()["cancel_requested"]
        scan = _wait(platform, scan_id, timeout=60)
        assert scan["state"] == "cancelled" and 0 < scan["done"] < 300, scan
        assert scan["summary"]["states"]["pending"] == 300 - scan["done"]
        assert platform.get(f"/v1/scans/{scan_id}/results", params={"state": "done"}).json()["items"]


def test_bad_feeds_are_refused_and_write_nothing(server, keys, settings):
    good = {"listing_id": "L1", "image_urls": ["http://example.com/a.jpg"]}
    cases = [
        ("feed.jsonl", _jsonl([good, {**good, "colour": "red"}]), "row 2: colour"),  # unknown column
        ("feed.jsonl", _jsonl([good, {"listing_id": "L2"}]), "row 2: 1 to 10 photos"),
        (
            "feed.jsonl",
            _jsonl([{"listing_id": "L1", "image_files": ["a.jpg"]}]),
            "row 1: image_files needs an images archive",
        ),
        ("feed.jsonl", b'{"listing_id": "L1", "image_urls": ["x"]}\nnot json', "row 2: not JSON"),
        (
            "feed.jsonl",
            _jsonl([{**good, "seller_id": "s1"}]),
            "marketplace",
        ),  # a seller id is per marketplace
        (
            "feed.jsonl",
            _jsonl([{**good, "marketplace": "mkt", "seller_id": "s", "seller_email": "x@y.z"}]),
            "CONSORTIUM_KEYS",
        ),
        ("feed.csv", b"listing_id,image_urls\nL1,http://a/b.jpg,extra\n", "more cells"),
        ("feed.parquet", b"PAR1 broken", "not a Parquet file"),
        ("feed.txt", _jsonl([good]), "Feed format"),
        ("feed.jsonl", b"", "no listings"),
        # issue 25: each of these answered 500, or was stored (Infinity on SQLite)
        (
            "feed.jsonl",
            _jsonl([good]) + b'\n{"listing_id": "L2", "image_urls": ["x"], "price": Infinity}',
            "row 2: not JSON",
        ),
        (
            "feed.jsonl",
            _jsonl([{**good, "price": 1e308}]).replace(b"1e+308", b"1e999"),
            "row 1: numbers must be finite",
        ),
        ("feed.jsonl", _jsonl([good]) + b'\n{"listing_id": "L\xff"}', "row 2: not UTF-8"),
        (
            "feed.jsonl",
            b'{"listing_id": "L1", "title": "\\ud800", "image_urls": ["x"]}',
            "row 1: text must not contain",
        ),
        ("feed.csv", b"listing_id,image_urls,price\nL1,http://a/b.jpg,inf\n", "row 1: price"),
        ("feed.csv", b"listing_id,image_urls,price\nL1,http://a/b.jpg,1e999\n", "row 1: price"),
        (
            "feed.csv",
            b"listing_id,image_urls,listing_id\nL1,http://a/b.jpg,L2\n",
            "'listing_id' more than once",
        ),
        (
            "feed.csv",
            b"listing_id,image_urls\nL1,http://a/b.jpg\nL\xe9,http://a/c.jpg\n",
            "line 3: not UTF-8",
        ),
        (
            "feed.csv",
            b"listing_id,image_urls,title\nL1,http://a/b.jpg," + b"t" * 140_000 + b"\n",
            "row 1: not CSV",
        ),
    ]
    with server.client(keys.platform) as platform:
        for name, body, message in cases:
            response = platform.post("/v1/scans", files={"feed": (name, body, "application/octet-stream")})
            assert response.status_code == 422, (name, response.text)
            assert message in response.json()["error"]["message"], (message, response.text)
        unknown_field = platform.post(
            "/v1/scans", files={"feed": ("f.jsonl", _jsonl([good]), "x")}, data={"colour": "red"}
        )
        assert unknown_field.status_code == 422
        assert platform.get("/v1/scans/job_nope").status_code == 404
    assert sql(settings, "SELECT count(*) FROM scan_items") == [(0,)]
    assert sql(settings, "SELECT count(*) FROM jobs WHERE kind = 'scan'") == [(0,)]


def _blob_files(settings) -> set:
    return {p.relative_to(settings.data_dir) for p in settings.blob_dir.rglob("*") if p.is_file()}


def test_a_refused_scan_leaves_no_archive_photo_behind(tmp_path, keys_for):
    """Archive members were written while the feed was still being validated: a 422 on the last row or a 409
    (a scan running) left them on disk for good."""
    settings = make_settings(tmp_path / "data", unsafe_fetch_allow_loopback_for_tests=True)
    keys = keys_for(settings)
    archive = _zip({f"p{i}.jpg": resized_jpeg_copy(100 + i) for i in range(20)})
    rows = [{"listing_id": f"L{i}", "image_files": [f"p{i}.jpg"]} for i in range(20)]
    with running(settings) as server, server.client(keys.platform) as platform:
        before = _blob_files(settings)
        bad_last_row = _jsonl(rows[:-1] + [{"listing_id": "L19", "image_files": ["p19.jpg"], "price": -1}])
        refused = platform.post(
            "/v1/scans", files={"feed": ("f.jsonl", bad_last_row, "x"), "images": ("p.zip", archive, "x")}
        )
        assert refused.status_code == 422 and "row 20" in refused.text, refused.text
        assert _blob_files(settings) == before
        held = ImageHost(delay=0.5)
        running_rows, _ = _feed(held, 30)
        assert (
            platform.post("/v1/scans", files={"feed": ("f.jsonl", _jsonl(running_rows), "x")}).status_code
            == 202
        )
        busy = platform.post(
            "/v1/scans", files={"feed": ("f.jsonl", _jsonl(rows), "x"), "images": ("p.zip", archive, "x")}
        )
        assert busy.status_code == 409, busy.text
        assert _blob_files(settings) == before
    assert sql(settings, "SELECT count(*) FROM jobs WHERE kind = 'scan'") == [(1,)]


def test_a_feed_of_millions_of_rows_is_refused_before_it_is_decoded(server, keys, settings):
    """A 2,000,000-row zstd Parquet of a few KB decoded to +1.42 GB before the listing cap answered: its row
    count is read from the footer, and JSONL stops at the first row past the cap."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from service.jobs.scan_feed import read_feed

    rows = 2_000_000
    table = pa.table(
        {"listing_id": pa.array(["L1"] * rows), "image_urls": pa.array(["http://example.com/a.jpg"] * rows)}
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    del table
    feed = buffer.getvalue()
    assert len(feed) < 200_000
    pool = pa.default_memory_pool()
    peak_before = pool.max_memory()
    with pytest.raises(Exception, match="At most 1000 listings"):
        next(read_feed(feed, "parquet", 1000))
    assert pool.max_memory() - peak_before < 16 << 20  # nothing was decoded
    jsonl = b'{"listing_id": "L1", "image_urls": ["http://example.com/a.jpg"]}\n' * 5000
    decoded = 0
    with pytest.raises(Exception, match="At most 1000 listings"):
        for _ in read_feed(jsonl, "jsonl", 1000):
            decoded += 1
    assert decoded == 1000
    with server.client(keys.platform) as platform:
        response = platform.post("/v1/scans", files={"feed": ("f.parquet", feed, "x")})
    assert response.status_code == 413 and response.json()["error"]["code"] == "feed_too_large", response.text
    assert sql(settings, "SELECT count(*) FROM jobs WHERE kind = 'scan'") == [(0,)]


def test_csv_feed_through_the_cli(tmp_path, keys_for):
    settings = make_settings(tmp_path / "data", unsafe_fetch_allow_loopback_for_tests=True)
    keys = keys_for(settings)
    host = ImageHost()
    with running(settings) as server, server.client(keys.admin) as admin:
        _register(admin, FAKE, "counterfeit")
    feed = tmp_path / "feed.csv"
    feed.write_text(
        "listing_id,seller_id,marketplace,image_urls\n"
        f"A,s1,mkt,{host.url}/img/{FAKE}.jpg|{host.url}/img/{GENUINE}.jpg\nB,s2,mkt,{host.url}/img/9.jpg\n"
    )
    result = run_cli(settings, "scan", str(feed))
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["state"] == "succeeded" and outcome["verdicts"].get("likely_counterfeit") == 1, outcome
    assert sorted(sql(settings, "SELECT listing_id FROM listings")) == [("A",), ("B",)]


@pytest.mark.slow  # kills and restarts a server process
def test_a_killed_scan_resumes_without_redoing_finished_listings(tmp_path):
    """kill -9 twice mid-scan: every listing is recorded once, and so is every photo's check row (a review queue
    item) and its webhook delivery; a listing whose checks had committed but not the listing is redone under the
    same check ids (issue 25: 214 check rows for 200 photos)."""
    from tests.service.exchange.test_webhooks import Receiver

    settings = make_settings(tmp_path / "data", unsafe_fetch_allow_loopback_for_tests=True, lease_seconds=2.0)
    admin_key, platform_key = create_api_key(settings, Role.admin), create_api_key(settings, Role.platform)
    host = ImageHost(delay=0.05)
    rows, fakes = _feed(host, 240)
    port = free_port()
    process = _start_process(settings, port)
    receiver = Receiver()
    try:
        with (
            httpx.Client(
                base_url=f"http://127.0.0.1:{port}",
                timeout=60,
                headers={"Authorization": f"Bearer {admin_key}"},
            ) as admin,
            httpx.Client(
                base_url=f"http://127.0.0.1:{port}",
                timeout=60,
                headers={"Authorization": f"Bearer {platform_key}"},
            ) as platform,
        ):
            _register(admin, FAKE, "counterfeit")
            assert (
                platform.post(
                    "/v1/webhooks", json={"url": receiver.url, "events": ["check.likely_counterfeit"]}
                ).status_code
                == 201
            )
            scan_id = platform.post("/v1/scans", files={"feed": ("f.jsonl", _jsonl(rows), "x")}).json()[
                "scan_id"
            ]
            deadline = time.monotonic() + 120
            while platform.get(f"/v1/scans/{scan_id}").json()["done"] < 40:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        done_before = sql(settings, "SELECT count(*) FROM scan_items WHERE state != 'pending'")[0][0]
        assert 40 <= done_before < 240
        process = _start_process(settings, port)  # its lease holder adopts the orphaned scan
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            timeout=60,
            headers={"Authorization": f"Bearer {platform_key}"},
        ) as platform:
            deadline = time.monotonic() + 120
            while platform.get(f"/v1/scans/{scan_id}").json()["done"] < done_before + 40:
                assert time.monotonic() < deadline
                time.sleep(0.2)
            os.kill(process.pid, signal.SIGKILL)  # the second kill, in the resumed run
            process.wait()
        process = _start_process(settings, port)
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            timeout=60,
            headers={"Authorization": f"Bearer {platform_key}"},
        ) as platform:
            scan = _wait(platform, scan_id)
        assert scan["state"] == "succeeded" and scan["done"] == 240, scan
        assert scan["summary"]["verdicts"]["likely_counterfeit"] == len(fakes)
        # Exactly one listing record per feed row: nothing finished before the kill was checked again.
        counts = sql(settings, "SELECT listing_id, count(*) FROM listings GROUP BY listing_id")
        assert len(counts) == 240 and {c for _, c in counts} == {1}
        # One check row per photo (each listing has one), and at most one delivery per likely counterfeit photo.
        assert sql(settings, "SELECT count(*) FROM checks") == [(240,)]
        assert sql(settings, "SELECT count(DISTINCT id) FROM checks") == [(240,)]
        deliveries = sql(
            settings, "SELECT count(*) FROM webhook_deliveries WHERE event = 'check.likely_counterfeit'"
        )[0][0]
        assert deliveries == len(fakes), deliveries
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.slow  # starts a local Ray instance
def test_the_ray_engine_gives_the_local_engines_results(tmp_path, keys_for):
    settings = make_settings(tmp_path / "data", unsafe_fetch_allow_loopback_for_tests=True)
    keys = keys_for(settings)
    host = ImageHost()
    with running(settings) as server, server.client(keys.admin) as admin:
        _register(admin, FAKE, "counterfeit")
        _register(admin, GENUINE, "authentic")
    rows, fakes = _feed(host, 40)
    rows = [
        {k: v for k, v in row.items() if k not in ("seller_id", "marketplace")} for row in rows
    ]  # no seller history
    rows.append({"listing_id": "zipped", "image_files": ["fake.jpg"]})  # from the uploaded archive
    rows.append({"listing_id": "private", "image_urls": ["http://10.0.0.1/a.jpg"]})
    feed, archive = tmp_path / "feed.jsonl", tmp_path / "photos.zip"
    feed.write_bytes(_jsonl(rows))
    archive.write_bytes(_zip({"fake.jpg": resized_jpeg_copy(FAKE)}))
    outcomes = {}
    for engine in ("local", "ray"):
        result = run_cli(settings, "scan", str(feed), "--engine", engine, "--images", str(archive))
        assert result.returncode == 0, result.stderr[-3000:]
        scan_id = json.loads(result.stdout)["scan_id"]
        outcomes[engine] = sorted(
            sql(
                settings,
                'SELECT "row", state, verdict, round(probability * 1000) FROM scan_items WHERE job_id = :job',
                job=scan_id,
            )
        )
    assert outcomes["ray"] == outcomes["local"]
    assert {row for row, _, verdict, _ in outcomes["ray"] if verdict == "likely_counterfeit"} == {
        int(i[1:]) + 1 for i in fakes
    } | {len(rows) - 1}
    assert outcomes["ray"][-1][1] == "failed"


def test_a_platform_sees_only_its_own_scans_and_hears_only_of_their_completion(tmp_path, keys_for):
    """Scans, their results, sellers, exports and cancel were open to every platform key, and scan.completed
    went to every platform's webhooks."""
    from service.db.models import Role
    from tests.helpers import create_api_key
    from tests.service.exchange.test_webhooks import Receiver, _wait

    settings = make_settings(tmp_path / "data", unsafe_fetch_allow_loopback_for_tests=True)
    keys = keys_for(settings)
    other_platform = create_api_key(settings, Role.platform, platform="marketplace-b")
    mine, theirs = Receiver(), Receiver()
    archive = _zip({"a.jpg": resized_jpeg_copy(FAKE)})
    with (
        running(settings) as server,
        server.client(keys.platform) as a,
        server.client(other_platform) as b,
        server.client(keys.admin) as admin,
    ):
        assert a.post("/v1/webhooks", json={"url": mine.url, "events": ["scan.completed"]}).status_code == 201
        assert (
            b.post("/v1/webhooks", json={"url": theirs.url, "events": ["scan.completed"]}).status_code == 201
        )
        started = a.post(
            "/v1/scans",
            files={
                "feed": ("f.jsonl", _jsonl([{"listing_id": "A", "image_files": ["a.jpg"]}]), "x"),
                "images": ("p.zip", archive, "application/zip"),
            },
        )
        scan_id = started.json()["scan_id"]
        _wait(lambda: mine.accepted(), timeout=60)
        time.sleep(1.0)
        assert theirs.requests == [] and json.loads(mine.accepted()[0][1])["data"]["scan_id"] == scan_id
        for path in ("", "/results", "/sellers", "/export"):
            assert b.get(f"/v1/scans/{scan_id}{path}").status_code == 404, path
            assert a.get(f"/v1/scans/{scan_id}{path}").status_code == 200, path
            assert admin.get(f"/v1/scans/{scan_id}{path}").status_code == 200, path
        assert b.post(f"/v1/scans/{scan_id}/cancel").status_code == 404
