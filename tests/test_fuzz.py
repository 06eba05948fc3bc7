"""Fuzzing, bounded so it fits in `make test` (issue 22): a schemathesis run over the OpenAPI spec as
each role (anonymous, citizen, agent, admin), and WeChat XML from hypothesis, signed as WeChat signs.

Whatever the input: never a 5xx; every 4xx a JSON body or a page with a Chinese message; every
response with the security headers. Derandomized (the same examples every run) and in-process.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import server
from tests.conftest import create_staff

WX_TOKEN = "fuzz-wx-token"
SECURITY = ("x-content-type-options", "x-frame-options", "referrer-policy", "content-security-policy")
CHINESE = re.compile(r"[\u4e00-\u9fff]")
ROLES = ("anonymous", "citizen", "agent", "admin")
# Calls that would end the session the run uses (it stays valid for the other operations), and the
# server-sent event stream, which never ends for those allowed to read it (tests/test_access.py).
SKIP = {"anonymous": {"/api/handoffs/stream"}, "citizen": {"/api/handoffs/stream"},
        "agent": {"/api/auth/logout", "/api/handoffs/stream"}, "admin": {"/api/auth/logout", "/api/handoffs/stream"}}


@pytest.fixture(scope="module")
def app_db(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    db = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'app.db'}"
    mp.setenv("BST_DATABASE_URL", db)
    mp.setenv("BST_RASA_URL", "http://127.0.0.1:9")  # no dialogue server: /api/chat answers directly
    mp.setenv("BST_WECHAT_TOKEN", WX_TOKEN)
    for limit in ("CHAT", "SEARCH", "LOGIN", "BOOKING_LOOKUP", "WECHAT"):
        mp.setenv(f"BST_{limit}_PER_MINUTE", "0")  # the fuzz is one fast client: limits are tested elsewhere
    server.get_settings.cache_clear()
    with TestClient(server.app):
        yield db
    mp.undo()
    server.get_settings.cache_clear()


def cookie_for(db: str, role: str) -> str:
    c = TestClient(server.app)
    if role == "anonymous":
        return ""
    if role == "citizen":
        c.post("/api/session")
        return f"bst_citizen={c.cookies.get('bst_citizen')}"
    user, password = create_staff(db, role)
    assert c.post("/api/auth/login", json={"username": user, "password": password}).status_code == 200
    return f"bst_staff={c.cookies.get('bst_staff')}"


def problems_of(method: str, path: str, status: int, headers, body: str) -> list[str]:
    """What is wrong with one response (empty: nothing)."""
    out = []
    if status >= 500:
        out.append(f"{status}: {body[:200]}")
    missing = [h for h in SECURITY if h not in headers]
    if missing:
        out.append(f"{status} without {missing}")
    if 400 <= status < 500:
        kind = headers.get("content-type", "")
        if not ("application/json" in kind or "text/html" in kind):
            out.append(f"{status} as {kind!r}")
        elif "application/json" in kind:
            try:
                json.loads(body)
            except ValueError:
                out.append(f"{status}: not JSON: {body[:100]}")
        if not CHINESE.search(body):
            out.append(f"{status} without a Chinese message: {body[:200]}")
    return [f"{method} {path} -> {p}" for p in out]


@pytest.mark.parametrize("role", ROLES)
def test_no_request_the_spec_allows_gets_a_5xx_or_an_unexplained_4xx(app_db, role):
    import schemathesis

    cookie = cookie_for(app_db, role)
    schema = schemathesis.openapi.from_asgi("/openapi.json", server.app)
    failures, calls = [], 0
    for result in schema.get_all_operations():
        op = result.ok()
        if op.path in SKIP[role]:
            continue

        @given(case=op.as_strategy())
        @settings(max_examples=4, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def run(case):
            nonlocal calls
            calls += 1
            r = case.call(headers={"Cookie": cookie} if cookie else {}, timeout=120)
            failures.extend(problems_of(case.method, case.formatted_path, r.status_code, r.headers, r.text))

        run()
    assert calls > 40 and failures == [], "\n".join(sorted(set(failures))[:30])


# ---------------------------------------------------------------- WeChat XML

def _signed(timestamp: str | None = None, nonce: str = "fuzz") -> dict:
    timestamp = timestamp or str(int(time.time()))
    sig = hashlib.sha1("".join(sorted([WX_TOKEN, timestamp, nonce])).encode()).hexdigest()
    return {"signature": sig, "timestamp": timestamp, "nonce": nonce}


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300)
_field = st.one_of(_text, st.sampled_from(["", "text", "event", "subscribe", "click", "BOOK", "MY_BOOKING", "1"]))


@st.composite
def wechat_bodies(draw) -> bytes:
    """Mostly well-formed WeChat messages with odd values, some missing fields, some broken XML."""
    shape = draw(st.sampled_from(["message", "message", "message", "raw"]))
    if shape == "raw":
        return draw(st.one_of(st.binary(max_size=400), _text.map(str.encode),
                              st.just(b"<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><xml>&e;</xml>")))
    fields = {
        "ToUserName": draw(_field), "FromUserName": draw(st.one_of(st.just(f"oF{uuid.uuid4().hex[:16]}"), _field)),
        "CreateTime": draw(st.one_of(st.just(str(int(time.time()))), _field)),
        "MsgType": draw(st.sampled_from(["text", "event", "image", "voice", "location", "link", "video", "", "?"])),
        "Content": draw(_text), "Event": draw(_field), "EventKey": draw(_field),
        "MsgId": draw(st.one_of(st.integers(0, 2**63).map(str), _field)),
    }
    keep = draw(st.sets(st.sampled_from(sorted(fields)), min_size=0, max_size=len(fields)))
    cdata = draw(st.booleans())
    parts = []
    for name in sorted(keep):
        value = fields[name]
        value = f"<![CDATA[{value}]]>" if cdata else value.replace("&", "&amp;").replace("<", "&lt;")
        parts.append(f"<{name}>{value}</{name}>")
    return ("<xml>" + "".join(parts) + "</xml>").encode("utf-8", "surrogatepass")


def test_wechat_xml_fuzz_never_gets_a_5xx_or_an_unexplained_4xx(app_db):
    failures = []

    @given(body=wechat_bodies())
    @settings(max_examples=60, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def run(body):
        r = client.post("/wechat", params=_signed(), content=body)
        failures.extend(problems_of("POST", "/wechat", r.status_code, r.headers, r.text))
        if r.status_code == 200:
            assert r.text == "success" or r.text.startswith("<xml>"), r.text[:200]

    # Its own lifespan: schemathesis's ASGI calls ran (and ended) the app's, closing its HTTP client.
    with TestClient(server.app) as client:
        run()
    assert failures == [], "\n".join(sorted(set(failures))[:30])
