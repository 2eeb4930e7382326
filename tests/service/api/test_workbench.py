"""The workbench in Chromium: a platform works its complaints queue, reads a brand's report, opens a case.

Screenshots of the three pages are taken on the way (set COUNTERFEIT_SCREENSHOTS_DIR to keep them: the
ones in docs/screenshots/ come from here).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from service.db.models import Role
from service.exchange.signals import generate_keypair
from service.marketplace.cases import verify_package
from tests.helpers import create_api_key, make_settings, resized_jpeg_copy, running
from tests.service.api.conftest import log_in_with_key
from tests.service.marketplace.test_complaints import FAKE, UNRELATED, _file, _register


def _screenshot(page, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    image = Image.open(path)
    assert image.width >= 1000 and path.stat().st_size > 20_000, name  # a rendered page, not a blank one
    keep = os.environ.get("COUNTERFEIT_SCREENSHOTS_DIR")
    if keep:
        shutil.copy(path, Path(keep) / path.name)


def _loaded(page, selector: str) -> bool:
    return page.eval_on_selector(selector, "img => img.complete && img.naturalWidth > 0")


@pytest.fixture
def world(tmp_path):
    settings = make_settings(
        tmp_path / "data", signal_private_key=generate_keypair()[0], consortium_keys={"k1": "k" * 40}
    )
    tokens = {
        "admin": create_api_key(settings, Role.admin),
        "platform": create_api_key(settings, Role.platform),
        "acme": create_api_key(settings, Role.brand, "acme"),
    }
    with running(settings) as server:
        clients = {name: server.client(token) for name, token in tokens.items()}
        _register(clients["admin"], FAKE)
        for seller, seed in (("shop-1", FAKE), ("shop-2", UNRELATED)):
            listed = clients["platform"].post(
                "/v1/listings/check",
                data={
                    "listing_id": f"L-{seller}",
                    "marketplace": "mkt",
                    "seller_id": seller,
                    "seller_email": "x@y.com",
                },
                files=[("images", ("p.jpg", resized_jpeg_copy(seed), "image/jpeg"))],
            )
            assert listed.status_code == 200, listed.text
        fast = _file(clients["acme"], seeds=(FAKE,), listing_id="L-shop-1", seller_id="shop-1").json()
        normal = _file(clients["acme"], seeds=(UNRELATED,), listing_id="L-9").json()
        assert (fast["lane"], normal["lane"]) == ("fast", "normal")
        yield str(clients["admin"].base_url).rstrip("/"), tokens, fast
        for client in clients.values():
            client.close()


def _login(browser, base: str, token: str):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{base}/ui/login")
    log_in_with_key(page, token)
    return page


def test_a_platform_decides_a_complaint_reads_a_report_and_opens_a_case_in_the_browser(
    world, browser, tmp_path
):  # noqa: F811
    base, tokens, fast = world
    page = _login(browser, base, tokens["platform"])
    page.wait_for_url(f"{base}/ui/complaints")
    first_row = page.locator("#complaints tbody tr").first.inner_text()
    assert "fast" in first_row and "acme" in first_row  # the fast lane first

    page.click(f"a[href='/ui/complaints/{fast['id']}']")
    assert "model" in page.inner_text("#triage") and _loaded(page, "img.evidence")
    _screenshot(page, tmp_path, "complaint")
    page.select_option("#action", "removed")
    page.click("#uphold")
    page.wait_for_url(f"{base}/ui/complaints?decided={fast['id']}")
    assert "upheld" in page.locator("#complaints tbody tr", has_text=fast["id"][:16]).inner_text()

    page.goto(f"{base}/ui/reports?brand=acme")
    figures = page.inner_text("#figures")
    assert "upheld\t1" in figures and "filed\t2" in figures, figures
    assert _loaded(page, "#chart")
    _screenshot(page, tmp_path, "report")
    pdf = page.request.get(base + page.get_attribute("#pdf", "href"))
    assert pdf.status == 200 and pdf.body().startswith(b"%PDF-")
    assert "complaints,upheld,1" in page.request.get(base + page.get_attribute("#csv", "href")).text()

    page.goto(f"{base}/ui/cases?marketplace=mkt&seller_id=shop-1&hops=2")
    sellers = page.inner_text("#sellers")
    assert "mkt/shop-2" in sellers and "email" in sellers and _loaded(page, "#network")
    _screenshot(page, tmp_path, "case")
    package = page.request.get(base + page.get_attribute("#package", "href"))
    assert package.status == 200 and verify_package(package.body())["valid"]

    # The brand's analyst sees its complaint decided, cannot decide it, and has no cases.
    analyst = _login(browser, base, tokens["acme"])
    analyst.goto(f"{base}/ui/complaints/{fast['id']}")
    assert "removed" in analyst.inner_text("#decision") and analyst.locator("#uphold").count() == 0
    assert analyst.request.get(f"{base}/ui/cases?marketplace=mkt&seller_id=shop-1").status == 403
    analyst.goto(f"{base}/ui/reports?platform=default")  # its own brand's report; the brand field is fixed
    assert analyst.get_attribute("input[name=brand]", "readonly") is not None
    assert "upheld\t1" in analyst.inner_text("#figures")
