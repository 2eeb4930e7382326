"""Review cases over real HTTP: opened from an item, one per seller or listing, moved through their statuses,
assigned, noted; viewers read them and another brand never sees them."""

from __future__ import annotations

import re
from contextlib import closing

from tests.service.api.test_people import CSRF, _login
from tests.service.api.test_review_workbench import queued  # noqa: F401 (the fixture)


def _csrf(client, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    return CSRF.search(page.text).group(1)


def test_analysts_work_a_sellers_checks_as_a_case(server, keys, admin, queued):  # noqa: F811
    copies, _, rita = queued
    base = f"http://127.0.0.1:{server.port}"
    with server.client(keys.brand_a) as acme, server.client(keys.brand_b) as globex:
        vic = acme.post("/v1/people", json={"username": "vic", "access": "viewer"}).json()
        gina = globex.post("/v1/people", json={"username": "gina", "access": "reviewer"}).json()
    with closing(_login(base, "rita", rita["password"])) as reviewer:
        item = f"/ui/checks/{copies[1]}"
        assert "Case for this seller" in reviewer.get(item).text
        token = _csrf(reviewer, item)
        form = {"csrf": token, "brand": "acme", "kind": "seller", "subject": "shop-3", "marketplace": "mkt"}
        opened = reviewer.post("/ui/review-cases", data=form)
        assert opened.status_code == 303 and opened.headers["location"].startswith("/ui/review-cases/rcs_")
        case_path = opened.headers["location"]
        assert reviewer.post("/ui/review-cases", data=form).headers["location"] == case_path  # one per seller
        assert reviewer.post("/ui/review-cases", data={**form, "brand": "globex"}).status_code == 404

        page = reviewer.get(case_path).text
        assert copies[1] in page and "seen 2×" in page and ">new<" in page

        def move(status: str) -> int:
            return reviewer.post(f"{case_path}/status", data={"csrf": token, "status": status}).status_code

        assert move("action_taken") == 409  # new → reviewing first
        assert move("reviewing") == 303 and move("action_taken") == 303
        assert (
            reviewer.post(f"{case_path}/assignee", data={"csrf": token, "person_id": gina["id"]}).status_code
            == 422
        )
        assert (
            reviewer.post(f"{case_path}/assignee", data={"csrf": token, "person_id": rita["id"]}).status_code
            == 303
        )
        assert (
            reviewer.post(
                f"{case_path}/notes", data={"csrf": token, "text": "test purchase ordered"}
            ).status_code
            == 303
        )
        page = reviewer.get(case_path).text
        assert re.search(r'id="assignee">rita<', page) and "rita: test purchase ordered" in page
        assert "rita · reviewing" in page and "rita · action taken" in page and ">action taken<" in page
        assert "seller shop-3 on mkt" in reviewer.get("/ui/review-cases?status=action_taken").text
        assert "shop-3" not in reviewer.get("/ui/review-cases?status=new").text

        # The seller page: its record, its listings (history) and a way back to its photos.
        assert 'href="/ui/sellers/mkt/shop-3"' in reviewer.get(item).text
        seller = reviewer.get("/ui/sellers/mkt/shop-3").text
        assert "Bag L-1" in seller and "Bag L-2" in seller and f"/ui/checks/{copies[0]}" in seller
        assert re.search(r"Likely counterfeit</td><td>2<", seller), seller

    with closing(_login(base, "vic", vic["password"])) as viewer:
        assert viewer.get(case_path).status_code == 200
        refused = viewer.post(
            f"{case_path}/status", data={"csrf": _csrf(viewer, case_path), "status": "closed"}
        )
        assert refused.status_code == 403
    with closing(_login(base, "gina", gina["password"])) as other:
        assert other.get(case_path).status_code == 404  # another brand's case is a missing one
        assert other.get("/ui/sellers/mkt/shop-3").status_code == 404  # globex has no listing of shop-3
    audit = admin.get("/v1/audit", params={"action": "review_case.status"}).json()["items"]
    assert [e["details"]["status"] for e in audit] == ["action_taken", "reviewing"]
    assert {e["actor_person_id"] for e in audit} == {rita["id"]}
