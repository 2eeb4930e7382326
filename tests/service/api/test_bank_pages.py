"""The reference banks in the workbench over real HTTP: browse and filter, add as a reviewer, remove as a
manager only; viewers read; another brand's references are missing ones."""

from __future__ import annotations

import re
from contextlib import closing

from tests.helpers import product_photo
from tests.service.api.test_people import CSRF, _login
from tests.service.api.test_review_workbench import queued  # noqa: F401 (the fixture)


def test_a_brand_browses_adds_to_and_prunes_its_banks(server, keys, admin, queued):  # noqa: F811
    _, _, rita = queued
    base = f"http://127.0.0.1:{server.port}"
    with server.client(keys.brand_a) as acme, server.client(keys.brand_b) as globex:
        maria = acme.post("/v1/people", json={"username": "maria", "access": "manager"}).json()
        vic = acme.post("/v1/people", json={"username": "vic", "access": "viewer"}).json()
        gina = globex.post("/v1/people", json={"username": "gina", "access": "manager"}).json()
        acme_ids = {r["id"] for r in acme.get("/v1/references").json()["items"]}
    with closing(_login(base, "rita", rita["password"])) as reviewer:
        bank = reviewer.get("/ui/references").text
        assert {int(i) for i in re.findall(r'id="ref-(\d+)"', bank)} == acme_ids
        fakes = reviewer.get("/ui/references", params={"label": "counterfeit"}).text
        assert re.findall(r"pill likely_(\w+)\">", fakes) and "pill likely_authentic" not in fakes
        token = CSRF.search(bank).group(1)
        added = reviewer.post(
            "/ui/references",
            data={"csrf": token, "label": "counterfeit", "product": "bag-99"},
            files={"image": ("n.png", product_photo(77), "image/png")},
        )
        assert added.status_code == 303, added.text
        new_id = int(added.headers["location"].rsplit("=", 1)[1])
        reference = admin.get(f"/v1/references/{new_id}").json()
        assert (reference["brand"], reference["label"], reference["product"]) == (
            "acme",
            "counterfeit",
            "bag-99",
        )
        assert reference["source"] == "workbench:rita"
        refused = reviewer.post(f"/ui/references/{new_id}/delete", data={"csrf": token})
        assert refused.status_code == 403  # reviewers add; only managers remove
    with closing(_login(base, "vic", vic["password"])) as viewer:
        assert viewer.get("/ui/references").status_code == 200
        token = CSRF.search(viewer.get("/ui/references").text).group(1)
        files = {"image": ("n.png", product_photo(78), "image/png")}
        assert (
            viewer.post("/ui/references", data={"csrf": token, "label": "authentic"}, files=files).status_code
            == 403
        )
    with closing(_login(base, "gina", gina["password"])) as other:
        assert 'id="ref-' not in other.get("/ui/references").text
        token = CSRF.search(other.get("/ui/references").text).group(1)
        assert other.post(f"/ui/references/{new_id}/delete", data={"csrf": token}).status_code == 404
    with closing(_login(base, "maria", maria["password"])) as manager:
        token = CSRF.search(manager.get("/ui/references").text).group(1)
        assert manager.post(f"/ui/references/{new_id}/delete", data={"csrf": token}).status_code == 303
        assert f'id="ref-{new_id}"' not in manager.get("/ui/references").text
    assert admin.get(f"/v1/references/{new_id}").status_code == 404
    audit = admin.get("/v1/audit", params={"action": "reference.delete"}).json()["items"]
    assert [(e["target"], e["actor_person_id"]) for e in audit] == [(str(new_id), maria["id"])]
