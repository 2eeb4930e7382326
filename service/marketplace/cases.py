"""Enforcement case packages: a seller's network and everything known about it, signed, for enforcement.

``GET /v1/sellers/{marketplace}/{seller_id}/case`` (a platform key, for its own tenant; an admin) gives a
ZIP:

* ``network.json`` / ``network.png``: the seller network (service/marketplace/seller_network.py) — which
  sellers are linked, over how many hops, by which *kinds* of keyed identifier, and what trusted peers
  reported;
* ``sellers/<n>.json`` per seller: its record (risk, counts, brands), its listings with their checks
  (verdict, probability, the evidence as answered, PDQ hash, image sha256) and reviews, the complaints
  and test purchases about it;
* ``photos/<sha256>``: the checked photos still kept and the complaints' and test purchases' photos;
* ``timeline.json``: every dated event, oldest first;
* ``manifest.json``: the sha256 and size of every other file, who issued it and when, signed with the
  platform's Ed25519 key (``COUNTERFEIT_SIGNAL_PRIVATE_KEY``, the key its exchange feed is signed with).

``counterfeit case verify PACKAGE --public-key KEY`` checks the signature and every file. Raw identifiers
are never in a package: they are never stored; not even their keyed digests are included.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import zipfile
from typing import Any, Mapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.core.blobs import BlobStore
from service.core.errors import Conflict, not_found
from service.core.timestamps import iso_utc, utcnow
from service.db.models import Check, Complaint, EvidencePhoto, Listing, Review, TestPurchase
from service.exchange.signals import sign, signature_valid
from service.marketplace.complaints import complaint_to_dict
from service.marketplace.purchases import purchase_to_dict
from service.marketplace.seller_network import MAX_HOPS, seller_network
from service.marketplace.sellers import SellerRecords, of_platform

CASE_FORMAT = "counterfeit-case/1"
MAX_PHOTOS = 500


def public_key_of(private_key_b64: str) -> str:
    key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(private_key_b64))
    return base64.b64encode(key.public_key().public_bytes_raw()).decode()


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:120]


class CaseBuilder:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        blobs: BlobStore,
        sellers: SellerRecords,
        issuer: str,
        private_key: str | None,
        shared_weights: Mapping[str, float] | None = None,
    ):
        self.sessions = sessions
        self.blobs = blobs
        self.sellers = sellers
        self.issuer = issuer
        self.private_key = private_key
        self.shared_weights = dict(shared_weights or {})

    def network(self, marketplace: str, seller_id: str, platform: str | None, hops: int) -> dict[str, Any]:
        hops = max(1, min(hops, MAX_HOPS))
        with self.sessions() as session:
            known = session.scalar(
                select(Listing.id)
                .where(
                    Listing.marketplace == marketplace, Listing.seller_id == seller_id, of_platform(platform)
                )
                .limit(1)
            )
            if known is None:
                raise not_found("seller")
            return seller_network(session, marketplace, seller_id, platform, hops, self.shared_weights)

    def package(self, marketplace: str, seller_id: str, platform: str | None, hops: int) -> bytes:
        graph = self.network(marketplace, seller_id, platform, hops)  # another tenant's seller: 404 first
        if not self.private_key:
            raise Conflict(
                "no_signing_key",
                "Case packages are signed with this platform's key: set COUNTERFEIT_SIGNAL_PRIVATE_KEY "
                "(counterfeit signals keygen).",
            )
        sellers = [(n["marketplace"], n["seller_id"]) for n in graph["nodes"] if n["type"] == "seller"]
        files: dict[str, bytes] = {"network.json": _json(graph), "network.png": network_picture(graph)}
        timeline: list[dict[str, Any]] = []
        photos: set[str] = set()
        with self.sessions() as session:
            for index, (m, s) in enumerate(sellers):
                dossier = self._dossier(session, m, s, platform, timeline, photos)
                files[f"sellers/{index:03d}-{_safe(m)}-{_safe(s)}.json"] = _json(dossier)
        for digest in sorted(photos)[:MAX_PHOTOS]:
            if self.blobs.exists(digest):
                files[f"photos/{digest}"] = self.blobs.get(digest)
        files["timeline.json"] = _json(sorted(timeline, key=lambda e: (e["at"], e["event"])))
        manifest = {
            "format": CASE_FORMAT,
            "issuer": self.issuer,
            "public_key": public_key_of(self.private_key),
            "created_at": iso_utc(utcnow()),
            "platform": platform,
            "root": graph["root"],
            "hops": graph["hops"],
            "sellers": len(sellers),
            "linked_by": sorted({kind for edge in graph["edges"] for kind in edge["via"]}),
            "photos_left_out": max(0, len(photos) - MAX_PHOTOS),
            "files": {
                path: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
                for path, data in files.items()
            },
        }
        return _zip({**files, "manifest.json": _json(sign(manifest, self.private_key))})

    def _dossier(self, session, marketplace, seller_id, platform, timeline, photos) -> dict[str, Any]:
        """One seller's record, listings with checks and reviews, complaints and test purchases."""
        listings = session.scalars(
            select(Listing)
            .where(Listing.marketplace == marketplace, Listing.seller_id == seller_id, of_platform(platform))
            .order_by(Listing.created_at)
        ).all()
        check_ids = [c for listing in listings for c in listing.check_ids]
        checks = {c.id: c for c in session.scalars(select(Check).where(Check.id.in_(check_ids)))}
        reviews: dict[str, list[Review]] = {}
        for review in session.scalars(
            select(Review).where(Review.check_id.in_(check_ids)).order_by(Review.id)
        ):
            reviews.setdefault(review.check_id, []).append(review)
        who = {"marketplace": marketplace, "seller_id": seller_id}
        out_listings = []
        for listing in listings:
            timeline.append(
                {
                    "at": iso_utc(listing.created_at),
                    "event": "listing.checked",
                    **who,
                    "verdict": listing.verdict,
                }
            )
            listing_checks = [checks[c] for c in listing.check_ids if c in checks]
            photos.update(c.image_sha256 for c in listing_checks)
            for check in listing_checks:
                for review in reviews.get(check.id, []):
                    timeline.append(
                        {
                            "at": iso_utc(review.created_at),
                            "event": "check.reviewed",
                            **who,
                            "label": review.label.value,
                        }
                    )
            out_listings.append(_listing_dict(listing, listing_checks, reviews))
        complaints, purchases = self._workflows(session, marketplace, seller_id, platform, photos)
        for complaint in complaints:
            timeline.extend({**h, "event": f"complaint.{h['event']}", **who} for h in complaint["history"])
        for purchase in purchases:
            timeline.append(
                {
                    "at": purchase["created_at"],
                    "event": "test_purchase.recorded",
                    **who,
                    "outcome": purchase["outcome"],
                }
            )
        record = self.sellers.get(marketplace, seller_id, platform=platform)
        return {
            **who,
            "record": record,
            "listings": out_listings,
            "complaints": complaints,
            "test_purchases": purchases,
        }

    @staticmethod
    def _workflows(session, marketplace, seller_id, platform, photos) -> tuple[list[dict], list[dict]]:
        def about(model):
            return [
                row
                for row in session.scalars(
                    select(model).where(model.platform == platform) if platform else select(model)
                )
                if row.listing.get("marketplace") == marketplace and row.listing.get("seller_id") == seller_id
            ]

        complaints, purchases = about(Complaint), about(TestPurchase)
        evidence = session.scalars(
            select(EvidencePhoto).where(EvidencePhoto.owner_id.in_([r.id for r in complaints + purchases]))
        ).all()
        by_owner: dict[str, list[EvidencePhoto]] = {}
        for photo in evidence:
            by_owner.setdefault(photo.owner_id, []).append(photo)
            photos.add(photo.sha256)
        return (
            [complaint_to_dict(c, by_owner.get(c.id, [])) for c in complaints],
            [purchase_to_dict(p, by_owner.get(p.id, [])) for p in purchases],
        )


def _listing_dict(listing: Listing, checks: list[Check], reviews: dict[str, list[Review]]) -> dict[str, Any]:
    return {
        "listing_check_id": listing.id,
        "listing_id": listing.listing_id,
        "title": listing.title,
        "url": listing.url,
        "price": listing.price,
        "currency": listing.currency,
        "brand": listing.brand,
        "verdict": listing.verdict,
        "probability": listing.probability,
        "created_at": iso_utc(listing.created_at),
        "checks": [
            {
                "check_id": c.id,
                "created_at": iso_utc(c.created_at),
                "verdict": c.verdict,
                "probability": c.probability,
                "image_sha256": c.image_sha256,
                "pdq_hash": c.pdq_hash,
                "evidence": c.evidence,
                "reviews": [
                    {"label": r.label.value, "note": r.note, "created_at": iso_utc(r.created_at)}
                    for r in reviews.get(c.id, [])
                ],
            }
            for c in checks
        ],
    }


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False).encode()


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in sorted(files.items()):
            archive.writestr(zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0)), data)
    return buffer.getvalue()


def network_picture(graph: dict[str, Any]) -> bytes:
    """The network as a PNG: sellers by hop (the root darkest), peers' reports as squares, edges labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import networkx as nx
    from matplotlib.figure import Figure

    g = nx.Graph()
    for node in graph["nodes"]:
        g.add_node(node["id"])
    for edge in graph["edges"]:
        g.add_edge(edge["source"], edge["target"], via=", ".join(edge["via"]))
    layout = nx.spring_layout(g, seed=7) if len(g) > 1 else {n: (0.0, 0.0) for n in g}
    figure = Figure(figsize=(8, 6), dpi=120)
    axes = figure.subplots()
    axes.set_axis_off()
    axes.set_title(f"Seller network of {graph['root'].removeprefix('seller:')} ({graph['hops']} hops)")
    sellers = [n for n in graph["nodes"] if n["type"] == "seller"]
    peers = [n for n in graph["nodes"] if n["type"] == "peer"]
    nx.draw_networkx_edges(g, layout, ax=axes, edge_color="#888888")
    nx.draw_networkx_edge_labels(g, layout, nx.get_edge_attributes(g, "via"), ax=axes, font_size=7)
    colours = ["#b30000" if n["hop"] == 0 else "#e34a33" if n["hop"] == 1 else "#fc8d59" for n in sellers]
    nx.draw_networkx_nodes(g, layout, [n["id"] for n in sellers], node_color=colours, node_size=500, ax=axes)
    nx.draw_networkx_nodes(
        g, layout, [n["id"] for n in peers], node_color="#3182bd", node_shape="s", node_size=400, ax=axes
    )
    labels = {n["id"]: n["id"].split(":", 1)[1] for n in graph["nodes"]}
    nx.draw_networkx_labels(g, layout, labels, font_size=8, ax=axes)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def verify_package(data: bytes, public_key: str | None = None) -> dict[str, Any]:
    """Whether a case package is intact and signed: every file listed with its digest, nothing unlisted, the
    manifest's signature valid under ``public_key`` (None: under the key the package names, which proves
    only integrity — trust needs the issuer's key from elsewhere)."""
    problems: list[str] = []
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        manifest = json.loads(archive.read("manifest.json"))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        return {"valid": False, "problems": [f"not a case package: {exc}"]}
    key = public_key or manifest.get("public_key", "")
    if manifest.get("format") != CASE_FORMAT:
        problems.append(f"unknown format {manifest.get('format')!r}")
    if not signature_valid(manifest, key):
        problems.append("the manifest's signature does not verify under the issuer's key")
    listed = manifest.get("files", {})
    present = set(archive.namelist()) - {"manifest.json"}
    problems += [f"unlisted file {p}" for p in sorted(present - set(listed))]
    problems += [f"missing file {p}" for p in sorted(set(listed) - present)]
    for path in sorted(present & set(listed)):
        if hashlib.sha256(archive.read(path)).hexdigest() != listed[path]["sha256"]:
            problems.append(f"{path} was changed")
    return {
        "valid": not problems,
        "trusted_key": public_key is not None,
        "issuer": manifest.get("issuer"),
        "root": manifest.get("root"),
        "files": len(listed),
        "problems": problems,
    }
