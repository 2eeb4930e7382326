"""A seller's network: the sellers linked to it through shared keyed identifiers, over several hops.

Sellers hide behind new shop names and numbers; what they cannot change as easily is the e-mail, phone,
payout account or shop URL behind them. Each such identifier is stored only as a keyed digest
(service/exchange/identifiers.py), so two sellers with one equal digest share the raw value. Starting
from one seller, a breadth-first walk follows equal digests to other sellers (across the tenant's
marketplaces) up to ``hops`` steps, and attaches what trusted peers' feeds reported about any digest in
the network (``peer`` nodes: the issuer, brand and status, never a peer's seller ids, which it never sent).
Edges name the identifier *kinds* that link two sellers; neither raw values nor digests leave this module.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.core.timestamps import aware, utcnow
from service.db.models import Listing, SellerIdentifier, SharedSellerSignal
from service.marketplace.sellers import of_platform

MAX_HOPS = 4
MAX_SELLERS = 500  # a network this large is a data problem (a shared courier's phone), not one ring


def seller_node_id(marketplace: str, seller_id: str) -> str:
    return f"seller:{marketplace}/{seller_id}"


def _identifiers(
    session: Session, platform: str | None, sellers: set[tuple[str, str]] | None = None, digests=None
):
    """(marketplace, seller, kind, key id, digest) of the tenant's listings, for these sellers or digests."""
    query = select(
        SellerIdentifier.marketplace,
        SellerIdentifier.seller_id,
        SellerIdentifier.kind,
        SellerIdentifier.key_id,
        SellerIdentifier.digest,
    ).where(SellerIdentifier.listing_ref.in_(select(Listing.id).where(of_platform(platform))))
    if digests is not None:
        query = query.where(SellerIdentifier.digest.in_(digests))
    rows = session.execute(query).all()
    return [r for r in rows if sellers is None or (r[0], r[1]) in sellers]


def seller_network(
    session: Session,
    marketplace: str,
    seller_id: str,
    platform: str | None,
    hops: int = 2,
    shared_weights: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The graph as ``{"root", "nodes", "edges", "truncated"}``; nodes carry their hop from the root."""
    root = (marketplace, seller_id)
    hop_of = {root: 0}
    digests_of: dict[tuple[str, str], set[tuple[str, str]]] = {}
    edges: dict[tuple[tuple[str, str], tuple[str, str]], set[str]] = {}
    frontier = deque([root])
    truncated = False
    while frontier:
        seller = frontier.popleft()
        if hop_of[seller] >= hops:
            continue
        own = {(k, d): kind for m, s, kind, k, d in _identifiers(session, platform, {seller})}
        digests_of[seller] = set(own)
        for m, s, kind, key_id, digest in _identifiers(session, platform, digests={d for _, d in own}):
            other = (m, s)
            if other == seller or (key_id, digest) not in own:
                continue
            edges.setdefault(tuple(sorted((seller, other))), set()).add(kind)
            if other not in hop_of:
                if len(hop_of) >= MAX_SELLERS:
                    truncated = True
                    continue
                hop_of[other] = hop_of[seller] + 1
                frontier.append(other)
    for seller in hop_of.keys() - digests_of.keys():  # the last hop's own identifiers, for peers' reports
        digests_of[seller] = {(k, d) for _, _, _, k, d in _identifiers(session, platform, {seller})}
    nodes = [
        {"id": seller_node_id(m, s), "type": "seller", "marketplace": m, "seller_id": s, "hop": hop}
        for (m, s), hop in sorted(hop_of.items(), key=lambda item: (item[1], item[0]))
    ]
    links = [
        {"source": seller_node_id(*a), "target": seller_node_id(*b), "via": sorted(kinds)}
        for (a, b), kinds in sorted(edges.items())
    ]
    peer_nodes, peer_links = _peer_reports(session, digests_of, shared_weights or {})
    return {
        "root": seller_node_id(*root),
        "hops": hops,
        "nodes": nodes + peer_nodes,
        "edges": links + peer_links,
        "truncated": truncated,
    }


def _peer_reports(session, digests_of, weights) -> tuple[list[dict], list[dict]]:
    """What trusted peers (still) report about the network's identifiers: one node per issuer × brand."""
    owners: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for seller, digests in digests_of.items():
        for pair in digests:
            owners.setdefault(pair, []).append(seller)
    if not owners or not weights:
        return [], []
    now = utcnow()
    rows = session.scalars(
        select(SharedSellerSignal).where(
            SharedSellerSignal.digest.in_({d for _, d in owners}),
            SharedSellerSignal.issuer.in_(list(weights)),
        )
    ).all()
    nodes: dict[str, dict] = {}
    links: dict[tuple[str, str], set[str]] = {}
    for row in rows:
        if (row.key_id, row.digest) not in owners or (row.expires_at and aware(row.expires_at) <= now):
            continue
        node_id = f"peer:{row.issuer}/{row.brand}"
        node = nodes.setdefault(
            node_id,
            {"id": node_id, "type": "peer", "issuer": row.issuer, "brand": row.brand, "status": "likely"},
        )
        if row.status == "confirmed":
            node["status"] = "confirmed"
        for seller in owners[(row.key_id, row.digest)]:
            links.setdefault((seller_node_id(*seller), node_id), set()).add(row.kind)
    return list(nodes.values()), [
        {"source": s, "target": t, "via": sorted(kinds)} for (s, t), kinds in sorted(links.items())
    ]
