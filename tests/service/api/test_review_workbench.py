"""A whole analyst session in Chromium, as a person: log in, filter the queue, open an item with the keyboard,
zoom with the keypoint matches drawn, confirm with a key, bulk-reject, on a phone too; axe-core finds no
critical accessibility violation. Screenshots land in test-artifacts/."""

from __future__ import annotations

import os
import re

import httpx
import pytest

from tests.helpers import REPO_ROOT, product_photo, register_conflicting_pair, resized_jpeg_copy
from tests.service.api.conftest import log_in_as

ARTIFACTS = REPO_ROOT / "test-artifacts"
AXE = REPO_ROOT / "tests" / "browser" / "node_modules" / "axe-core" / "axe.min.js"
FAKE, GENUINE = 7, 4


def _listing(platform, listing_id: str, seller: str, seed: int) -> str:
    response = platform.post(
        "/v1/listings/check",
        data={
            "brand": "acme",
            "listing_id": listing_id,
            "seller_id": seller,
            "marketplace": "mkt",
            "title": f"Bag {listing_id}",
            "price": "19.90",
            "currency": "EUR",
        },
        files=[("images", ("p.jpg", resized_jpeg_copy(seed), "image/jpeg"))],
    )
    assert response.status_code == 200, response.text
    return response.json()["photos"][0]["result"]["check_id"]


@pytest.fixture
def queued(server, keys, admin):
    """acme keeps checked photos; a known fake copied in two listings of shop-3, an uncertain one of shop-9."""
    assert (
        admin.put("/v1/brands/acme/policy", json={"auto_add_confirmed_counterfeits": True}).status_code == 200
    )
    for seed, label in ((FAKE, "counterfeit"), (GENUINE, "authentic")):
        registered = admin.post(
            "/v1/references",
            files={"image": ("r.png", product_photo(seed), "image/png")},
            data={"brand": "acme", "label": label, "product": "bag-42"},
        )
        assert registered.status_code == 201, registered.text
    for seed in (2, 5):  # uncertain, with evidence: these photos are in both banks
        register_conflicting_pair(admin, "acme", seed, product="bag-7")
    with server.client(keys.platform) as platform:
        copies = [_listing(platform, "L-1", "shop-3", FAKE), _listing(platform, "L-2", "shop-3", FAKE)]
        others = [_listing(platform, "L-9", "shop-9", 2), _listing(platform, "L-10", "shop-9", 5)]
    with server.client(keys.brand_a) as acme:
        rita = acme.post("/v1/people", json={"username": "rita", "access": "reviewer"}).json()
    return copies, others, rita


def _axe(page) -> list:
    if not AXE.exists():
        if os.environ.get("CI"):
            pytest.fail("axe-core is missing: scripts/install.sh installs it from npm")
        pytest.skip("axe-core is not installed (npm ci --prefix tests/browser)")
    page.add_script_tag(path=str(AXE))
    return page.evaluate(
        "async () => (await axe.run()).violations.map(v => [v.id, v.impact, v.nodes.length])"
    )


def _reviews(admin, check_id: str) -> list[dict]:
    return admin.get(f"/v1/checks/{check_id}").json()["reviews"]


def test_an_analyst_works_the_queue_with_filters_zoom_keyboard_and_bulk(server, admin, browser, queued):
    copies, others, rita = queued
    base = f"http://127.0.0.1:{server.port}"
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)  # axe is injected
    page = context.new_page()
    page.goto(f"{base}/ui/login")
    assert [v for v in _axe(page) if v[1] == "critical"] == []
    log_in_as(page, "rita", rita["password"])
    page.wait_for_url(f"{base}/ui")

    # The same photo from two listings is one row, seen twice; every row has its photo and its reference.
    copy_row = page.locator(f"#row-{copies[1]}")
    assert "seen 2×" in copy_row.inner_text() and "#" in copy_row.inner_text()
    assert page.locator(f"#row-{copies[0]}").count() == 0
    assert page.inner_text("#total") == f"{page.locator('#queue tbody tr[data-href]').count()} waiting"
    assert [v for v in _axe(page) if v[1] == "critical"] == []

    page.fill("input[name=seller]", "shop-3")
    page.click(".filters button[type=submit]")
    page.wait_for_url(re.compile(r".*seller=shop-3.*"))
    assert page.locator("#queue tbody tr[data-href]").count() == 1 and "1 waiting" in page.inner_text(
        "#total"
    )
    assert "Bag L-2" in copy_row.inner_text() and "seller shop-3" in copy_row.inner_text()
    page.screenshot(path=str(ARTIFACTS / "workbench-queue.png"), full_page=True)

    page.keyboard.press("j")
    page.keyboard.press("o")  # open the selected row
    page.wait_for_url(re.compile(rf".*/ui/checks/{copies[1]}\?seller=shop-3"))
    assert "Bag L-2" in page.inner_text("#listing") and "19.90 EUR" in page.inner_text("#listing")
    page.keyboard.press("z")  # zoom: photo and reference side by side, the keypoint matches drawn
    page.wait_for_function(
        "() => { const m = document.getElementById('matches'); return m.complete && m.naturalWidth > 0 }"
    )
    matches = page.request.get(base + page.get_attribute("#matches", "src"))
    evidence = admin.get(f"/v1/checks/{copies[1]}").json()["evidence"]
    assert matches.ok and matches.headers["content-type"] == "image/png", evidence
    # The picture counts what the check counted: the same detector, ratio test and fit.
    assert int(matches.headers["x-inliers"]) == evidence[0]["inliers"] >= 4, evidence
    assert [v for v in _axe(page) if v[1] == "critical"] == []
    page.screenshot(path=str(ARTIFACTS / "workbench-zoom.png"), full_page=True)

    page.keyboard.press("c")  # confirm: the photo and its repeat, under rita's name; then the queue view
    page.wait_for_url(re.compile(r".*/ui\?seller=shop-3&reviewed=.*"))
    for check_id in copies:
        [review] = _reviews(admin, check_id)
        assert review["label"] == "counterfeit", review
    audit = admin.get("/v1/audit", params={"action": "check.review"}).json()["items"]
    assert {e["target"] for e in audit} == set(copies) and {e["actor_person_id"] for e in audit} == {
        rita["id"]
    }

    # Bulk: tick both of shop-9's rows with the keyboard and reject them at once.
    page.goto(f"{base}/ui?seller=shop-9")
    for _ in others:
        page.keyboard.press("j")
        page.keyboard.press("x")
    page.keyboard.press("?")
    assert page.is_visible("#help")
    page.click("#bulk-reject")
    page.wait_for_url(re.compile(r".*reviewed=2(\+|%20)items.*"))
    assert [_reviews(admin, c)[0]["label"] for c in others] == ["authentic", "authentic"]
    assert "0 waiting" in page.inner_text("#total")


def test_the_workbench_fits_a_phone(server, admin, browser, queued):
    copies, _, rita = queued
    base = f"http://127.0.0.1:{server.port}"
    with httpx.Client(base_url=base) as login:
        login.post("/ui/login", data={"username": "rita", "password": rita["password"]})
        cookie = login.cookies["counterfeit_session"]
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone.add_cookies([{"name": "counterfeit_session", "value": cookie, "url": f"{base}/ui"}])
    page = phone.new_page()
    ARTIFACTS.mkdir(exist_ok=True)
    for path, name in (("/ui", "phone-queue.png"), (f"/ui/checks/{copies[1]}", "phone-item.png")):
        page.goto(f"{base}{path}")
        assert page.url.endswith(path)
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{path} is {overflow} px wider than the phone"
        page.screenshot(path=str(ARTIFACTS / name), full_page=True)
