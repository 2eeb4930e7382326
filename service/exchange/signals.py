"""Sharing known-fake signals across platforms without sharing images.

A platform exports, per brand, the PDQ hashes (and sha256) of the counterfeit references whose
owners allowed sharing (``share_signals``), as a bundle signed with its Ed25519 key. Another
platform imports a bundle only from an issuer whose public key it trusts
(``COUNTERFEIT_TRUSTED_SIGNAL_ISSUERS``), verifies the signature, and from then on matches checked
images against those hashes: evidence ``shared_by: <issuer>``. A bundle is a full snapshot of that
issuer's signals for the brand, so re-importing replaces the previous one (and withdraws
signals the issuer no longer shares).
"""

from __future__ import annotations

import base64
import json
import threading
from datetime import datetime, timezone
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from index.pdq import MIN_QUALITY, PdqHash, PdqIndex
from service.core.audit import audit_event
from service.core.auth import Principal
from service.core.errors import Conflict, Forbidden, InvalidInput
from service.db.models import Label, Reference, SharedSignal

FORMAT = "counterfeit-signals/1"


def generate_keypair() -> tuple[str, str]:
    """(private key, public key), raw Ed25519 keys in base64."""
    private = Ed25519PrivateKey.generate()
    return (
        base64.b64encode(private.private_bytes_raw()).decode(),
        base64.b64encode(private.public_key().public_bytes_raw()).decode(),
    )


def _canonical(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(payload: dict[str, Any], private_key_b64: str) -> dict[str, Any]:
    key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(private_key_b64))
    return {**payload, "signature": base64.b64encode(key.sign(_canonical(payload))).decode()}


def signature_valid(signed: dict[str, Any], public_key_b64: str) -> bool:
    """Whether ``signed["signature"]`` is the key's signature of the rest of ``signed``."""
    payload = {k: v for k, v in signed.items() if k != "signature"}
    try:
        Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64)).verify(
            base64.b64decode(str(signed.get("signature", ""))), _canonical(payload)
        )
        return True
    except (InvalidSignature, ValueError, TypeError):
        return False


def verify(bundle: dict[str, Any], trusted: dict[str, str]) -> dict[str, Any]:
    """The payload of a bundle from a trusted issuer with a valid signature; else a 4xx."""
    if not isinstance(bundle, dict) or bundle.get("format") != FORMAT or "signature" not in bundle:
        raise InvalidInput("invalid_bundle", f"Not a {FORMAT} bundle.")
    issuer = bundle.get("issuer")
    if issuer not in trusted:
        raise Forbidden(
            "untrusted_issuer", f"Issuer {issuer!r} is not in COUNTERFEIT_TRUSTED_SIGNAL_ISSUERS."
        )
    if not signature_valid(bundle, trusted[issuer]):
        raise InvalidInput(
            "invalid_signature", f"The bundle's signature does not verify with {issuer}'s key."
        )
    return {k: v for k, v in bundle.items() if k != "signature"}


class SharedSignalIndex:
    """Imported hashes, searchable like references' PDQ hashes; metadata kept beside."""

    def __init__(self) -> None:
        self.hashes = PdqIndex()
        self.meta: dict[int, SharedSignal] = {}
        self._lock = threading.Lock()
        self._stamp: tuple | None = None

    def load(self, sessions: sessionmaker[Session]) -> None:
        with sessions() as session:
            rows = list(session.scalars(select(SharedSignal)))
        fresh = PdqIndex()
        fresh.add([r.id for r in rows], [PdqHash.from_hex(r.pdq_hash, r.pdq_quality) for r in rows])
        with self._lock:
            self.hashes, self.meta = fresh, {r.id: r for r in rows}
            self._stamp = self._stamp_of(rows)

    def refresh_if_changed(self, sessions: sessionmaker[Session]) -> bool:
        """Reload when another process (a feed pull, another replica's import) changed the rows: a delete moves
        the count, an insert the newest import time."""
        with sessions() as session:
            stamp = tuple(
                session.execute(select(func.count(SharedSignal.id), func.max(SharedSignal.imported_at))).one()
            )
        if stamp == self._stamp:
            return False
        self.load(sessions)
        return True

    @staticmethod
    def _stamp_of(rows: list[SharedSignal]) -> tuple:
        return (len(rows), max((r.imported_at for r in rows), default=None))

    def brands(self) -> set[str]:
        with self._lock:
            return {row.brand for row in self.meta.values()}

    def search(
        self, pdq: PdqHash, brand: str | None, max_distance: int, k: int = 10
    ) -> list[tuple[SharedSignal, int]]:
        with self._lock:
            hits = self.hashes.search(pdq, k=k, max_distance=max_distance)
            return [(self.meta[i], d) for i, d in hits if brand is None or self.meta[i].brand == brand]


class SignalSharing:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        issuer: str,
        private_key: str | None,
        trusted: dict[str, str],
        index: SharedSignalIndex,
    ):
        self.sessions = sessions
        self.issuer = issuer
        self.private_key = private_key
        self.trusted = trusted
        self.index = index

    def export(self, brand: str) -> dict[str, Any]:
        if not self.private_key:
            raise Conflict(
                "signing_not_configured",
                "Set COUNTERFEIT_SIGNAL_PRIVATE_KEY (`counterfeit signals-keygen`) to export.",
            )
        with self.sessions() as session:
            references = session.scalars(
                select(Reference)
                .where(
                    Reference.brand == brand,
                    Reference.label == Label.counterfeit,
                    Reference.share_signals.is_(True),
                    Reference.deleted_at.is_(None),
                    Reference.pdq_quality >= MIN_QUALITY,
                )
                .order_by(Reference.id)
            ).all()
        payload = {
            "format": FORMAT,
            "issuer": self.issuer,
            "brand": brand,
            "created_at": datetime.now(timezone.utc).isoformat(),
            "signals": [
                {"sha256": r.sha256, "pdq": r.pdq_hash, "quality": r.pdq_quality, "product": r.product}
                for r in references
            ],
        }
        return sign(payload, self.private_key)

    def import_bundle(self, bundle: dict[str, Any], actor: Principal) -> dict[str, Any]:
        payload = verify(bundle, self.trusted)
        try:
            rows = [
                SharedSignal(
                    issuer=payload["issuer"],
                    brand=payload["brand"],
                    sha256=s["sha256"],
                    pdq_hash=PdqHash.from_hex(s["pdq"], int(s["quality"])).hex,
                    pdq_quality=int(s["quality"]),
                    product=s.get("product"),
                )
                for s in payload["signals"]
            ]
        except (KeyError, TypeError, ValueError):
            raise InvalidInput("invalid_bundle", "A signal in the bundle is malformed.") from None
        with self.sessions() as session:  # a bundle replaces the issuer's previous snapshot for the brand
            session.execute(
                delete(SharedSignal).where(
                    SharedSignal.issuer == payload["issuer"],  # a pulled feed's stay
                    SharedSignal.brand == payload["brand"],
                    SharedSignal.entry_key.is_(None),
                )
            )
            session.add_all(rows)
            session.add(
                audit_event(actor, "signals.import", payload["brand"], payload["issuer"], signals=len(rows))
            )
            session.commit()
        self.index.load(self.sessions)
        return {"issuer": payload["issuer"], "brand": payload["brand"], "imported": len(rows)}
