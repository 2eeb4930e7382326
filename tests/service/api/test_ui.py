"""The review page in a real browser (Debian's Chromium driven by Playwright) over real HTTP."""

from __future__ import annotations

import re

import httpx

from tests.helpers import REPO_ROOT, register_conflicting_pair, resized_jpeg_copy
from tests.service.api.conftest import log_in_with_key

ARTIFACTS = REPO_ROOT / "test-artifacts"
SUSPECT, GENUINE, ANOTHER = 2, 4, 5


def _check(client, seed: int, **data) -> dict:
    response = client.post(
        "/v1/check", files={"image": ("q.jpg", resized_jpeg_copy(seed), "image/jpeg")}, data=data
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_a_reviewer_confirms_a_flagged_check_in_the_browser(server, keys, admin, browser):
    # acme keeps checked photos (confirmed counterfeits join its bank); each brand holds a photo in both banks,
    # so a copy of it is uncertain with evidence (a photo that matches nothing is no_match, and not queued).
    assert (
        admin.put("/v1/brands/acme/policy", json={"auto_add_confirmed_counterfeits": True}).status_code == 200
    )
    register_conflicting_pair(admin, "acme", SUSPECT)
    register_conflicting_pair(admin, "globex", ANOTHER)
    register_conflicting_pair(admin, "acme", 3)  # the listing's photo
    nothing = admin.post(
        "/v1/check",
        files={"image": ("n.jpg", resized_jpeg_copy(GENUINE + 10), "image/jpeg")},
        data={"brand": "acme"},
    ).json()
    assert nothing["verdict"] == "no_match", nothing
    with server.client(keys.platform) as platform:
        suspect = _check(platform, SUSPECT, brand="acme")
        assert suspect["verdict"] == "inconclusive" and suspect["brand"] == "acme" and suspect["evidence"], (
            suspect
        )
        listed = platform.post(
            "/v1/listings/check",
            data={"brand": "acme", "listing_id": "L-7", "seller_id": "shop-3", "marketplace": "mkt"},
            files=[("images", ("p.jpg", resized_jpeg_copy(3), "image/jpeg"))],
        ).json()
        listed_check = listed["photos"][0]["result"]["check_id"]
        other_brand = _check(platform, ANOTHER, brand="globex")
        assert other_brand["verdict"] == "inconclusive" and other_brand["evidence"], other_brand
    base = str(server.client(keys.platform).base_url).rstrip("/")

    page = browser.new_page()
    page.goto(f"{base}/ui")
    assert page.url.endswith("/ui/login")  # no session: the login form
    log_in_with_key(page, keys.platform)  # a platform key works complaints, not the brands' review queue
    page.wait_for_url(f"{base}/ui/complaints")
    assert page.request.get(f"{base}/ui/checks/{suspect['check_id']}").status == 403
    page.click("header button[type=submit]")  # log out
    page.wait_for_url(f"{base}/ui/login")
    log_in_with_key(page, keys.brand_a)
    page.wait_for_url(f"{base}/ui")
    [cookie] = page.context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and keys.brand_a not in cookie["value"]
    queue = page.inner_text("#queue")
    assert suspect["check_id"] in queue and other_brand["check_id"] not in page.content()
    row = page.locator("tr", has_text=listed_check).inner_text()
    assert "listing L-7 · seller shop-3" in row, (
        row
    )  # where each item came from (an API check, a listing, a scan)

    page.click(f"#row-{suspect['check_id']} a")
    page.wait_for_url(re.compile(r".*/ui/checks/chk_.*"))
    evidence = page.inner_text("#evidence")
    assert "authentic" in evidence and f"#{suspect['evidence'][0]['reference_id']}" in evidence
    shown = page.evaluate(
        "() => [...document.images].filter(i => i.checkVisibility()).map(i => [i.src, i.complete, i.naturalWidth])"
    )
    assert shown and all(complete and width > 0 for _, complete, width in shown), shown  # the photos load
    assert page.locator("img").count() >= 2  # the checked photo beside its evidence
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review-item.png"), full_page=True)

    page.click("button.confirm")
    page.wait_for_url(re.compile(r".*reviewed=chk_.*"))  # on to the next item (or the queue when none)
    page.goto(f"{base}/ui")
    assert suspect["check_id"] not in page.inner_text("#queue")
    with server.client(
        keys.platform
    ) as platform:  # confirmed (and added to the bank): the next check knows it
        again = _check(platform, SUSPECT, brand="acme")
    # the exact photo is now in the fake bank (PDQ distance 0); it is still in both banks, so still uncertain
    assert any(e["label"] == "counterfeit" and e["pdq_distance"] == 0 for e in again["evidence"]), again

    # Another brand's reviewer never sees acme's items, and its forms need its own CSRF token.
    other = browser.new_page()
    other.goto(f"{base}/ui/login")
    log_in_with_key(other, keys.brand_b)
    other.wait_for_url(f"{base}/ui")
    assert suspect["check_id"] not in other.content() and other_brand["check_id"] in other.content()
    assert other.goto(f"{base}/ui/checks/{suspect['check_id']}").status == 404
    session = {c["name"]: c["value"] for c in other.context.cookies()}
    with httpx.Client(base_url=base, cookies=session) as forged:
        response = forged.post(
            f"/ui/checks/{other_brand['check_id']}/review", data={"label": "counterfeit", "csrf": "x"}
        )
        assert response.status_code == 403
        cross_site = forged.post(
            f"/ui/checks/{other_brand['check_id']}/review",
            headers={"Origin": "https://evil.example"},
            data={"label": "counterfeit", "csrf": "x"},
        )
        assert cross_site.status_code == 403
    assert (
        admin.get("/v1/audit", params={"action": "check.review"}).json()["items"][0]["target"]
        == suspect["check_id"]
    )

    # Logging out ends the session server-side.
    other.goto(f"{base}/ui")
    other.click("header button")
    other.wait_for_url(f"{base}/ui/login")
    with httpx.Client(base_url=base, cookies=session, follow_redirects=False) as stale:
        assert stale.get("/ui").status_code == 303


def test_login_from_another_site_or_an_opaque_origin_is_refused(server, keys):
    """Login CSRF: a page elsewhere (or a sandboxed frame / data: page, whose Origin is "null") must not log
    a victim's browser into the attacker's account."""
    base = f"http://127.0.0.1:{server.port}"
    with httpx.Client(base_url=base, follow_redirects=False) as browser:
        for headers in (
            {"Origin": "null"},
            {"Origin": "https://evil.example"},
            {"Sec-Fetch-Site": "cross-site"},
        ):
            response = browser.post("/ui/login", data={"api_key": keys.brand_a}, headers=headers)
            assert response.status_code == 403 and "set-cookie" not in response.headers, (
                headers,
                response.text,
            )
        same_site = browser.post(
            "/ui/login",
            data={"api_key": keys.brand_a},
            headers={"Origin": base, "Sec-Fetch-Site": "same-origin"},
        )
        assert same_site.status_code == 303 and "set-cookie" in same_site.headers
