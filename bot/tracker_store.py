"""Rasa's SQL tracker store, made to survive a database restart (loaded by deploy/endpoints.yml).

Rasa wraps every tracker store in a fail-safe that, on any error, quietly starts the conversation
over from an empty in-memory tracker. After a PostgreSQL restart each pooled connection is dead
and would fail once that way, losing the conversation's context. `pool_pre_ping` tests a pooled
connection before use and replaces a dead one, so the first request after a restart reads the real
tracker. (While the database is down the app answers 503 before asking Rasa at all.)
"""

from __future__ import annotations

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore, create_engine_kwargs


class ResilientSQLTrackerStore(SQLTrackerStore):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        url = self.engine.url
        self.engine.dispose()
        self.engine = sa.create_engine(url, pool_pre_ping=True, **create_engine_kwargs(url))
        self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)
