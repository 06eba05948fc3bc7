"""The shared store's database backend: what WeChat de-duplication and rate limits rely on."""

import threading
import time

from assistant.db import upgrade
from assistant.store import DatabaseStore


def _store(tmp_path):
    url = f"sqlite:///{tmp_path / 'kv.db'}"
    upgrade(url)
    return DatabaseStore(url)


def test_a_key_is_claimed_once_even_by_concurrent_claimers(tmp_path):
    store = _store(tmp_path)
    wins = []
    threads = [threading.Thread(target=lambda: wins.append(store.claim("wx:msg:42", 60))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wins.count(True) == 1
    assert store.claim("wx:msg:43", 60)


def test_values_and_claims_expire(tmp_path):
    store = _store(tmp_path)
    store.set("token", "abc", ttl=0.2)
    assert store.claim("once", 0.2)
    assert store.get("token") == "abc" and not store.claim("once", 0.2)
    time.sleep(0.3)
    assert store.get("token") is None and store.claim("once", 0.2)


def test_hits_are_counted_per_window(tmp_path):
    store = _store(tmp_path)
    assert [store.hit("rl:chat:1.2.3.4", 60) for _ in range(3)] == [1, 2, 3]
    assert store.hit("rl:chat:5.6.7.8", 60) == 1
