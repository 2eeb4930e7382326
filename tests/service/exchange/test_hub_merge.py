"""The hub's intake and merged feed in process: provenance, anonymity, policy, withdrawals, statistics."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from service.core.timestamps import utcnow
from service.exchange.feed import signed_page
from service.exchange.feed_pull import PageRefused
from service.exchange.hub.runtime import HubSettings, open_hub
from service.exchange.signals import generate_keypair, signature_valid

DIGEST = "ab" * 32


def _seller(seq: int, status: str, op: str = "add", brand: str = "acme", kind: str = "seller"):
    data = {
        "kind": "email",
        "key_id": "k1",
        "digest": DIGEST,
        "status": status,
        "reason": "2 listings",
        "expires_at": None,
    }
    return SimpleNamespace(
        seq=seq,
        entry_key=f"seller:{brand}:k1:{DIGEST}",
        type=kind,
        brand=brand,
        op=op,
        data=data if op == "add" else None,
        published_at=utcnow(),
    )


@pytest.fixture
def hub(tmp_path):
    private, public = generate_keypair()
    the_hub = open_hub(HubSettings(data_dir=tmp_path, private_key=private, name="hub"))
    the_hub.public = public
    return the_hub


def test_two_members_reporting_one_seller_make_one_entry_naming_one_and_counting_the_other(hub):
    keys = {name: generate_keypair() for name in ("named", "quiet")}
    hub.members.add("named", keys["named"][1], ["seller"], ["acme"])
    hub.members.add("quiet", keys["quiet"][1], ["seller"], ["*"], anonymous=True)

    def publish(member, rows, since=0):
        return hub.intake.accept(member, signed_page(rows, since, False, member, keys[member][0]))

    assert publish("named", [_seller(1, "likely"), _seller(2, "likely", brand="globex")]).refused == [
        "entry 2: named may not publish seller entries about globex"
    ]
    publish("quiet", [_seller(5, "confirmed")])
    page = hub.merged.page(0)
    assert signature_valid({k: v for k, v in page.items() if k != "entries"}, hub.public)
    latest = page["entries"][-1]["data"]
    assert (
        latest["status"] == "confirmed"
        and latest["reported_by"] == ["named"]
        and latest["anonymous_reports"] == 1
    )
    assert "quiet" not in str(page)  # an anonymous member is only counted
    stats = {s["member"]: s for s in hub.members.stats()}
    assert (
        stats["named"]["published"],
        stats["named"]["matched_by_others"],
        stats["named"]["entries_refused"],
    ) == (1, 1, 1)

    publish(
        "quiet", [_seller(6, "confirmed", op="withdraw")], since=5
    )  # the entry stays: "named" still reports it
    data = hub.merged.page(page["next_cursor"])["entries"][-1]["data"]
    assert data["status"] == "likely" and data["anonymous_reports"] == 0
    with pytest.raises(PageRefused, match="replayed"):
        publish("quiet", [_seller(6, "confirmed", op="withdraw")], since=5)
    hub.members.revoke("named")
    hub.merged.refresh()
    assert hub.merged.page(0)["entries"][-1]["op"] == "withdraw"  # nobody reports it any more
    with pytest.raises(PageRefused, match="revoked"):
        publish("named", [_seller(3, "likely")], since=2)
