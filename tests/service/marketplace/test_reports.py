"""Transparency reports over HTTP: the figures of one brand on one platform, as JSON, CSV and a PDF rendered to PNG."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from tests.helpers import product_photo, resized_jpeg_copy
from tests.service.marketplace.test_complaints import FAKE, UNRELATED, _file, _register

ITEM = 11


def _check(client, seed: int):
    response = client.post(
        "/v1/check", files={"image": ("q.jpg", resized_jpeg_copy(seed), "image/jpeg")}, data={"brand": "acme"}
    )
    assert response.status_code == 200, response.text
    return response.json()


def _purchase(client, order: str, outcome: str):
    response = client.post(
        "/v1/test-purchases",
        data={
            "platform": "default",
            "listing_id": f"L-{order}",
            "marketplace": "mkt",
            "seller_id": "shop-z",
            "order_reference": order,
            "ordered_on": "2026-11-20",
            "received_on": "2026-11-27",
            "outcome": outcome,
            "examiner_note": "examined",
        },
        files=[("images", ("i.png", product_photo(ITEM + len(order)), "image/png"))],
    )
    assert response.status_code == 201, response.text


@pytest.fixture
def reported(tenants):
    """Platform A's year so far with acme: checks, two complaints, three test purchases; platform B's one check."""
    t = tenants
    _register(t.admin, FAKE)
    listing = t.platform_a.post(
        "/v1/listings/check",
        data={"listing_id": "L-1", "marketplace": "mkt", "seller_id": "shop-y"},
        files=[("images", ("p.jpg", resized_jpeg_copy(FAKE), "image/jpeg"))],
    ).json()
    assert listing["verdict"] == "likely_counterfeit"
    assert [_check(t.platform_a, FAKE)["verdict"] for _ in range(2)] == ["likely_counterfeit"] * 2
    _check(t.platform_b, FAKE)
    upheld = _file(t.acme, seeds=(), listing_id="L-1", seller_id="shop-y").json()
    assert upheld["lane"] == "fast"
    t.platform_a.post(
        f"/v1/complaints/{upheld['id']}/decision", json={"outcome": "upheld", "action": "removed"}
    )
    rejected = _file(t.acme, seeds=(UNRELATED,), listing_id="L-2").json()
    t.platform_a.post(
        f"/v1/complaints/{rejected['id']}/decision", json={"outcome": "rejected", "reason": "no"}
    )
    for order, outcome in (
        ("O-1", "counterfeit_confirmed"),
        ("O-22", "counterfeit_confirmed"),
        ("O-333", "genuine"),
    ):
        _purchase(t.acme, order, outcome)
    return t


def test_a_report_counts_what_one_platform_did_for_one_brand(reported):
    t = reported
    report = t.acme.get("/v1/reports/brands/acme", params={"platform": "default"})
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["checks"] == {
        "run": 3,
        "flagged": 3,
        "confirmed": 1,
    }  # B's check is B's; the complaint's review
    complaints = body["complaints"]
    assert {
        k: complaints[k] for k in ("filed", "fast_tracked", "upheld", "rejected", "open", "sla_breaches")
    } == {
        "filed": 2,
        "fast_tracked": 1,
        "upheld": 1,
        "rejected": 1,
        "open": 0,
        "sla_breaches": 0,
    }
    assert complaints["median_hours_to_decision"] is not None and complaints["median_hours_to_decision"] < 1
    assert body["listings_actioned"] == 3  # one upheld complaint, two confirmed test purchases
    assert body["sellers"] == {"actioned": 2, "repeat_infringers": 1}  # shop-z twice
    assert body["test_purchases"] == {"counterfeit_confirmed": 2, "genuine": 1, "not_delivered": 0}
    assert len(body["weekly"]) in (4, 5) and sum(w["checks"] for w in body["weekly"]) == 3
    assert sum(w["complaints_filed"] for w in body["weekly"]) == 2

    own = t.platform_b.get("/v1/reports/brands/acme").json()  # platform B's own view of acme
    assert own["platform"] == "market-b" and own["checks"]["run"] == 1 and own["complaints"]["filed"] == 0
    assert t.platform_b.get("/v1/reports/brands/acme", params={"platform": "default"}).status_code == 404
    assert t.globex.get("/v1/reports/brands/acme", params={"platform": "default"}).status_code == 404
    everywhere = t.acme.get("/v1/reports/brands/acme").json()  # a brand's view over every platform
    assert everywhere["platform"] is None and everywhere["checks"]["run"] == 4
    for params in (
        {"start": "2026-12-05", "end": "2026-12-01"},
        {"start": "2024-01-01", "end": "2026-01-01"},
        {"format": "xml"},
        {"brand": "acme"},
    ):
        assert t.platform_a.get("/v1/reports/brands/acme", params=params).status_code == 422, params

    table = t.platform_a.get("/v1/reports/brands/acme", params={"format": "csv"})
    assert table.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(table.text)))
    assert ["checks", "run", "3"] in rows and ["listings", "actioned", "3"] in rows
    assert ["sellers", "repeat_infringers", "1"] in rows and ["week", "checks", "flagged"] == rows[
        rows.index([]) + 1
    ][:3]


def test_the_report_pdf_renders_to_pages_with_its_figures_and_charts(reported, tmp_path):
    if shutil.which("pdftoppm") is None:
        if os.environ.get("CI"):
            pytest.fail("pdftoppm is missing: .ci/run installs Debian's poppler-utils")
        pytest.skip("pdftoppm is not installed here (apt-get install poppler-utils)")
    pdf = reported.platform_a.get("/v1/reports/brands/acme", params={"format": "pdf"})
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    (tmp_path / "report.pdf").write_bytes(pdf.content)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "50", str(tmp_path / "report.pdf"), str(tmp_path / "page")], check=True
    )
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) == 2
    for page in pages:
        pixels = np.asarray(Image.open(page).convert("L"), dtype=np.float32)
        assert pixels.shape[0] > pixels.shape[1] > 300  # A4, portrait
        assert (pixels < 128).mean() > 0.005  # text and charts drawn, not a blank page
    text = subprocess.run(
        ["pdftotext", str(tmp_path / "report.pdf"), "-"], capture_output=True, text=True, check=True
    )
    assert "Transparency report: acme" in text.stdout and "repeat infringers" in text.stdout
    chart = np.asarray(Image.open(pages[1]).convert("RGB"), dtype=np.int16)
    colourful = np.abs(chart[..., 0] - chart[..., 2]) > 60  # matplotlib's blue and orange bars and lines
    assert colourful.mean() > 0.002
