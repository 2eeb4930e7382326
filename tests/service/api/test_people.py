"""People's own workbench accounts over real HTTP: tenancy, passwords, access levels, lockout, the audit log."""

from __future__ import annotations

import json
import re
from contextlib import closing

import httpx

from tests.helpers import register_conflicting_pair, resized_jpeg_copy
from tests.service.api.conftest import log_in_as
from tests.service.cli.test_cli import run_cli

CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


def _add(client, expect: int = 201, **body) -> dict:
    response = client.post("/v1/people", json=body)
    assert response.status_code == expect, response.text
    return response.json()


def _usernames(client) -> set[str]:
    return {p["username"] for p in client.get("/v1/people").json()["items"]}


def test_keys_add_people_to_their_own_tenant_only(server, keys):
    with (
        server.client(keys.brand_a) as acme,
        server.client(keys.brand_b) as globex,
        server.client(keys.platform) as platform,
        server.client(keys.admin) as admin,
    ):
        ana = _add(acme, username="ana", access="reviewer")
        assert (ana["role"], ana["brand"], ana["platform"]) == ("brand", "acme", None)
        assert len(ana["password"]) >= 20 and ana["created_by"] and not ana["disabled"]
        mo = _add(platform, username="moe", access="manager", password="correct horse battery")
        assert (mo["role"], mo["platform"], mo["password"]) == (
            "platform",
            "default",
            "correct horse battery",
        )
        staff = _add(admin, username="ops", access="viewer", role="admin")
        assert staff["role"] == "admin"

        # Refused, and nothing written: another brand, another tenant kind, no role from an admin key,
        # a taken name, a short password, a bad username, an unknown field.
        assert (
            _add(globex, 403, username="eve", access="manager", brand="acme")["error"]["code"]
            == "other_tenant"
        )
        assert (
            _add(acme, 403, username="eve", access="manager", role="platform")["error"]["code"]
            == "other_tenant"
        )
        assert _add(admin, 422, username="eve", access="viewer")["error"]["code"] == "role_required"
        assert _add(globex, 409, username="ana", access="viewer")["error"]["code"] == "username_taken"
        _add(acme, 422, username="eve", access="viewer", password="short")
        _add(acme, 422, username="Eve!", access="viewer")
        _add(acme, 422, username="eve", access="viewer", is_admin=True)
        for field in ("display_name", "password"):  # text no database stores nor argon2 encodes
            raw = '{"username": "sur", "access": "viewer", "%s": "passw\\ud800rd-long-enough"}' % field
            sent = acme.post("/v1/people", content=raw, headers={"Content-Type": "application/json"})
            assert sent.status_code == 422 and "surrogate" in sent.text, sent.text
        assert _usernames(admin) == {"ana", "moe", "ops"}

        # Each tenant sees its own people; another tenant's person is a missing one.
        assert (_usernames(acme), _usernames(globex), _usernames(platform)) == ({"ana"}, set(), {"moe"})
        for other in (globex, platform):
            assert other.post(f"/v1/people/{ana['id']}/disable").status_code == 404
            assert other.post(f"/v1/people/{ana['id']}/password").status_code == 404
        audit = admin.get("/v1/audit", params={"action": "person.create"}).json()["items"]
        assert {e["target"] for e in audit} == {ana["id"], mo["id"], staff["id"]}


def _login(base: str, username: str, password: str, expect: int = 303) -> httpx.Client:
    client = httpx.Client(base_url=base, follow_redirects=False, timeout=60)
    response = client.post("/ui/login", data={"username": username, "password": password})
    assert response.status_code == expect, response.text
    return client


def _review(client: httpx.Client, check_id: str, label: str) -> httpx.Response:
    page = client.get(f"/ui/checks/{check_id}")
    assert page.status_code == 200, page.text
    csrf = CSRF.search(page.text).group(1)
    return client.post(f"/ui/checks/{check_id}/review", data={"csrf": csrf, "label": label})


def _queued_check(server, keys, admin) -> str:
    register_conflicting_pair(admin, "acme", 2)
    with server.client(keys.platform) as platform:
        check = platform.post(
            "/v1/check",
            files={"image": ("q.jpg", resized_jpeg_copy(2), "image/jpeg")},
            data={"brand": "acme"},
        ).json()
    assert check["verdict"] == "inconclusive" and check["evidence"], check
    return check["check_id"]


def test_a_viewer_reads_a_reviewer_decides_and_the_audit_names_the_person(server, keys, admin):
    check_id = _queued_check(server, keys, admin)
    base = f"http://127.0.0.1:{server.port}"
    with server.client(keys.brand_a) as acme:
        vic = _add(acme, username="vic", access="viewer", password="viewer password 1")
        rita = _add(acme, username="rita", access="reviewer", password="reviewer password 1")
        _login(base, "rita", "wrong password!!", expect=401).close()
        _login(base, "nobody", "whatever password", expect=401).close()

        with closing(_login(base, "vic", "viewer password 1")) as viewer:
            page = viewer.get(f"/ui/checks/{check_id}").text
            assert 'id="read-only"' in page and "Confirm counterfeit" not in page and "vic (viewer)" in page
            refused = _review(viewer, check_id, "counterfeit")
            assert refused.status_code == 403 and "not decide" in refused.text
            assert viewer.get("/ui/people").status_code == 403  # only managers manage people
        assert admin.get("/v1/audit", params={"action": "check.review"}).json()["items"] == []

        with closing(_login(base, "rita", "reviewer password 1")) as reviewer:
            assert _review(reviewer, check_id, "counterfeit").status_code == 303
            assert "by rita" in reviewer.get(f"/ui/checks/{check_id}").text
            [event] = admin.get("/v1/audit", params={"action": "check.review"}).json()["items"]
            assert (event["actor_person_id"], event["actor_key_id"], event["target"]) == (
                rita["id"],
                None,
                check_id,
            )

            assert acme.post(f"/v1/people/{rita['id']}/disable").json()["disabled"] is True
            assert reviewer.get("/ui").status_code == 303  # the open session ended with the account
        _login(base, "rita", "reviewer password 1", expect=401).close()

        # Five wrong passwords lock the account (even the right one is refused), until a manager resets it.
        for _ in range(5):
            _login(base, "vic", "not the password", expect=401).close()
        locked = httpx.post(f"{base}/ui/login", data={"username": "vic", "password": "viewer password 1"})
        assert locked.status_code == 429 and "Too many wrong passwords" in locked.text
        fresh = acme.post(f"/v1/people/{vic['id']}/password").json()["password"]
        _login(base, "vic", fresh).close()


def test_a_manager_adds_an_analyst_in_the_browser_who_then_logs_in(server, settings, keys, browser):
    added = run_cli(settings, "people", "add", "maria", "--brand", "acme", "--access", "manager")
    assert added.returncode == 0, added.stderr
    password = added.stdout.strip()
    listed = json.loads(run_cli(settings, "people", "list").stdout)
    assert [(p["username"], p["brand"], p["access"]) for p in listed] == [("maria", "acme", "manager")]
    base = f"http://127.0.0.1:{server.port}"

    page = browser.new_page()
    page.goto(f"{base}/ui/login")
    log_in_as(page, "maria", password)
    page.wait_for_url(f"{base}/ui")
    page.click("text=People")
    page.fill("input[name=username]", "sam")
    page.select_option("select[name=access]", "reviewer")
    page.click("form.inline button[type=submit]")
    new_password = page.inner_text("#new-password").strip()
    assert "sam" in page.inner_text("#people") and len(new_password) >= 20
    # The manager keeps checked photos for review (the brand's own flag; thresholds stay the operator's).
    page.goto(f"{base}/ui/people")
    page.check("#keep-photos")
    with page.expect_navigation():
        page.click("#save-settings")
    assert page.is_checked("#keep-photos")
    with server.client(keys.admin) as admin:
        policy = admin.get("/v1/brands/acme/policy").json()
    assert policy["auto_add_confirmed_counterfeits"] is True

    other = browser.new_context().new_page()
    other.goto(f"{base}/ui/login")
    log_in_as(other, "sam", new_password)
    other.wait_for_url(f"{base}/ui")
    assert "sam (reviewer) · acme" in other.inner_text("header")

    [sam] = [p for p in json.loads(run_cli(settings, "people", "list").stdout) if p["username"] == "sam"]
    assert run_cli(settings, "people", "password", sam["id"]).returncode == 0
    assert other.goto(f"{base}/ui").url.endswith("/ui/login")  # a reset ends the person's sessions
    assert run_cli(settings, "people", "disable", sam["id"]).returncode == 0
    refused = run_cli(settings, "people", "add", "x1", "--brand", "acme", "--platform", "p")
    assert refused.returncode != 0 and "exactly one" in refused.stderr
