"""The fleet's store of derived model artefacts: the service's database (table ``model_artefacts``).

The first process that needs a model's artefacts (index.models.artefacts) or similarity profile
(scoring.profile) derives and writes them; a concurrent writer's insert fails on the primary key and
it reads the winner's instead, so every replica, on any host, uses the same bytes."""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import ModelArtefact


class DatabaseArtefacts:
    def __init__(self, sessions: sessionmaker[Session]):
        self.sessions = sessions

    def get(self, key: str) -> bytes | None:
        with self.sessions() as session:
            return session.scalar(select(ModelArtefact.data).where(ModelArtefact.key == key))

    def put_if_absent(self, key: str, data: bytes) -> bytes:
        try:
            with self.sessions.begin() as session:
                session.add(ModelArtefact(key=key, data=data, sha256=hashlib.sha256(data).hexdigest()))
        except IntegrityError:
            pass  # another process stored it first: theirs is the one everybody uses
        stored = self.get(key)
        assert stored is not None
        return stored
