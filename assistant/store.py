"""A small shared store for state every replica must see: WeChat message de-duplication, rate-limit
counters, the WeChat access token. Redis when `settings.redis_url` is set; otherwise the `kv` table
of the application database (which all replicas already share).

    store = shared_store(settings)
    store.claim("wx:msg:123", ttl=300)   # True the first time only (atomic across replicas)
    store.hit("rl:chat:1.2.3.4", 60)     # count of hits in the current window
    store.set("wx:token", "...", 7000); store.get("wx:token")

Both backends raise StoreUnavailable when their server cannot be reached, so callers can answer
a clear 503 instead of a 500 or a wrong answer.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from sqlalchemy import Integer, String, cast, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError

from assistant.db import KeyValue, sessions, utcnow


class StoreUnavailable(RuntimeError):
    """The shared store (Redis or the database) cannot be reached right now."""


class DatabaseStore:
    def __init__(self, database_url: str):
        self.Session = sessions(database_url)

    @staticmethod
    def _expiry(ttl: float | None) -> dt.datetime | None:
        return utcnow() + dt.timedelta(seconds=ttl) if ttl else None

    def _live(self, s, key: str) -> KeyValue | None:
        row = s.get(KeyValue, key)
        if row is not None and row.expires_at is not None and row.expires_at <= utcnow():
            s.delete(row)
            s.flush()
            return None
        return row

    def claim(self, key: str, ttl: float) -> bool:
        try:
            with self.Session() as s:
                if self._live(s, key) is not None:
                    s.commit()
                    return False
                s.add(KeyValue(key=key, value="1", expires_at=self._expiry(ttl)))
                try:
                    s.commit()  # the primary key makes the claim atomic across replicas
                except IntegrityError:
                    return False
                return True
        except OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc

    def get(self, key: str) -> str | None:
        try:
            with self.Session() as s:
                row = self._live(s, key)
                s.commit()
                return row.value if row else None
        except OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc

    def set(self, key: str, value: str, ttl: float | None = None) -> None:
        try:
            with self.Session() as s:
                s.merge(KeyValue(key=key, value=value, expires_at=self._expiry(ttl)))
                s.commit()
        except OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc

    def hit(self, key: str, window: float) -> int:
        """Counts a hit in a fixed window of `window` seconds; returns the count so far. One
        statement (INSERT … ON CONFLICT DO UPDATE … RETURNING, SQLite ≥ 3.35 and PostgreSQL), so
        parallel requests, in threads or in replicas, never lose a count: a read-then-write would
        (SQLite has no SELECT … FOR UPDATE)."""
        bucket = f"{key}:{int(utcnow().timestamp() // window)}"
        table = KeyValue.__table__
        dialect = self.Session.kw["bind"].dialect.name
        insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
        stmt = insert(table).values(key=bucket, value="1", expires_at=self._expiry(window * 2))
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={"value": cast(cast(table.c.value, Integer) + 1, String)},
        ).returning(table.c.value)
        try:
            with self.Session() as s:
                count = int(s.execute(stmt).scalar_one())
                s.commit()
                return count
        except OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc

    def purge(self) -> int:
        with self.Session() as s:
            n = s.execute(delete(KeyValue).where(KeyValue.expires_at <= utcnow())).rowcount
            s.commit()
            return n or 0


class RedisStore:
    def __init__(self, url: str):
        import redis

        self.redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2, decode_responses=True)
        self._errors = (redis.ConnectionError, redis.TimeoutError)

    def _call(self, fn, *args, **kw):
        try:
            return fn(*args, **kw)
        except self._errors as exc:
            raise StoreUnavailable(str(exc)) from exc

    def claim(self, key: str, ttl: float) -> bool:
        return bool(self._call(self.redis.set, key, "1", nx=True, px=int(ttl * 1000)))

    def get(self, key: str) -> str | None:
        return self._call(self.redis.get, key)

    def set(self, key: str, value: str, ttl: float | None = None) -> None:
        self._call(self.redis.set, key, value, px=int(ttl * 1000) if ttl else None)

    def hit(self, key: str, window: float) -> int:
        bucket = f"{key}:{int(utcnow().timestamp() // window)}"
        pipe = self.redis.pipeline()  # MULTI/EXEC: INCR is atomic, the expiry set with it
        pipe.incr(bucket)
        pipe.expire(bucket, int(window * 2))
        return int(self._call(pipe.execute)[0])

    def purge(self) -> int:
        return 0  # Redis expires keys itself


@lru_cache
def _store(redis_url: str, database_url: str):
    return RedisStore(redis_url) if redis_url else DatabaseStore(database_url)


def shared_store(settings) -> DatabaseStore | RedisStore:
    return _store(settings.redis_url, settings.database_url)
