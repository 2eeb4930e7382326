"""The scan service as a domain service (no HTTP): a feed is validated whole before anything is written, a
refused one leaves no job, no row and no blob, and an accepted one commits its rows with its queued job."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from sqlalchemy import func, select

from service.core.auth import Principal
from service.core.blobs import BlobStore
from service.core.errors import Conflict, InvalidInput, TooLarge
from service.db.models import Job, Role, ScanItem
from service.db.session import make_engine, make_session_factory
from service.exchange.identifiers import IdentifierKeying
from service.jobs.scans import ScanLimits, ScanParams, ScanService
from service.jobs.store import JobStore
from service.marketplace.listings import ListingChecker

PLATFORM = Principal("key-1", Role.platform, None, platform="shop-a")
PARAMS = ScanParams(brand=None, k=5)


@pytest.fixture
def scans(settings, tmp_path):
    engine = make_engine(settings.resolved_database_url)
    sessions = make_session_factory(engine)
    keying = IdentifierKeying({"k1": b"0" * 32})
    # Creating a scan reads only the listing checker's identifier keying: the checker itself is not needed.
    listings = ListingChecker(
        sessions=sessions, checker=None, registry=None, sellers=None, thresholds=None, keying=keying
    )
    yield ScanService(
        sessions=sessions,
        jobs=JobStore(sessions),
        listings=listings,
        fetcher=None,
        blobs=BlobStore(tmp_path / "blobs"),
        limits=ScanLimits(max_listings=3, max_images=2, max_image_bytes=1000),
    )
    engine.dispose()


def _feed(*rows: dict) -> bytes:
    return "\n".join(json.dumps(row) for row in rows).encode()


def _archive(**members: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _written(scans: ScanService) -> tuple[int, int, int]:
    with scans.sessions() as session:
        jobs = session.scalar(select(func.count()).select_from(Job))
        items = session.scalar(select(func.count()).select_from(ScanItem))
    blobs = sum(1 for path in scans.blobs.root.rglob("*") if path.is_file())
    return jobs, items, blobs


@pytest.mark.parametrize(
    "bad_row, code",
    [
        ({"listing_id": "2"}, "invalid_feed"),  # no photo
        (
            {
                "listing_id": "2",
                "image_urls": ["https://a.example/1", "https://a.example/2", "https://a.example/3"],
            },
            "invalid_feed",
        ),
        ({"listing_id": "2", "image_files": ["missing.jpg"]}, "invalid_feed"),
        ({"listing_id": "2", "image_urls": ["https://a.example/1"], "colour": "red"}, "invalid_feed"),
        (
            {"listing_id": "2", "image_urls": ["https://a.example/1"], "seller_email": "a@b.example"},
            "invalid_feed",
        ),
    ],
)
def test_a_bad_last_row_refuses_the_whole_feed_and_writes_nothing(scans, bad_row, code):
    feed = _feed({"listing_id": "1", "image_files": ["a.jpg"]}, bad_row)
    with pytest.raises(InvalidInput) as refused:
        scans.create(feed, "jsonl", PARAMS, PLATFORM, None, _archive(**{"a.jpg": b"x" * 10}))
    assert refused.value.code == code and "row 2" in refused.value.message
    assert _written(scans) == (0, 0, 0)


def test_too_many_listings_and_too_large_a_photo_are_refused_before_writing(scans):
    many = _feed(*({"listing_id": str(i), "image_urls": ["https://a.example/1"]} for i in range(4)))
    with pytest.raises(TooLarge):
        scans.create(many, "jsonl", PARAMS, PLATFORM, None)
    large = _feed({"listing_id": "1", "image_files": ["a.jpg"]})
    with pytest.raises(TooLarge):
        scans.create(large, "jsonl", PARAMS, PLATFORM, None, _archive(**{"a.jpg": b"x" * 1001}))
    assert _written(scans) == (0, 0, 0)


def test_an_accepted_feed_commits_its_rows_with_a_queued_job_and_a_second_scan_writes_nothing(scans):
    feed = _feed(
        {
            "listing_id": "1",
            "image_files": ["a.jpg"],
            "seller_id": "s1",
            "marketplace": "shop-a",
            "seller_email": "A@B.example",
        },
        {"listing_id": "2", "image_urls": ["https://a.example/1"]},
    )
    job_id = scans.create(feed, "jsonl", PARAMS, PLATFORM, "catalogue", _archive(**{"a.jpg": b"x" * 10}))
    assert _written(scans) == (1, 2, 1)
    job = scans.jobs.get(job_id)
    assert job.state == "queued" and job.params["platform"] == "shop-a" and job.total == 2
    with scans.sessions() as session:
        first = session.scalars(select(ScanItem).where(ScanItem.row == 1)).one()
    assert "seller_email" not in first.listing and first.listing["keyed_identifiers"][0][:2] == [
        "email",
        "k1",
    ]
    with pytest.raises(Conflict):  # one scan at a time: the second's photo is never stored
        scans.create(feed, "jsonl", PARAMS, PLATFORM, None, _archive(**{"a.jpg": b"y" * 10}))
    assert _written(scans) == (1, 2, 1)
