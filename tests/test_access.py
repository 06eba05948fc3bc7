"""Who may see and do what (issue 9).

* The access matrix: every route of the OpenAPI spec × (anonymous, citizen A, citizen B, agent,
  admin) with the status each one gets — in-process, so it is quick. A route missing from the
  table fails `test_every_route_is_in_the_matrix`: new routes must be classified here.
* Citizen B never sees or cancels citizen A's booking, by any route — through the real stack
  (Rasa + action server + app), A booking in the chat with A's own session cookie.
* Lock-out, expiring sessions, rate limits, security headers, /wechat without a token.
* (The schemathesis run over the OpenAPI spec, as every role, is tests/test_fuzz.py.)
"""

from __future__ import annotations

import datetime as dt
import re
import uuid

import httpx
import pytest
from fastapi.testclient import TestClient

import server
from assistant import accounts
from assistant.bookings import BookingBook
from assistant.db import Handoff, StaffSession, StaffUser, sessions
from settings import get_settings
from tests.conftest import create_staff, login, reply_text

ROOT_TEMPLATES = server.Path(server.__file__).resolve().parent / "web/templates"


# ---------------------------------------------------------------- in-process app and identities

@pytest.fixture(scope="module")
def app_db(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    db = f"sqlite:///{tmp_path_factory.mktemp('access') / 'app.db'}"
    mp.setenv("BST_DATABASE_URL", db)
    mp.setenv("BST_RASA_URL", "http://127.0.0.1:9")  # no dialogue server: /api/chat answers directly
    mp.setenv("BST_WECHAT_TOKEN", "matrix-wechat-token")
    server.get_settings.cache_clear()
    with TestClient(server.app):  # runs the lifespan once: migrations, the engine
        yield db
    mp.undo()
    server.get_settings.cache_clear()


def citizen_client(ip: str = "10.0.0.1") -> TestClient:
    c = TestClient(server.app, client=(ip, 50000))
    assert c.post("/api/session").status_code == 200 and c.cookies.get("bst_citizen")
    return c


def staff_client(db: str, role: str, ip: str = "10.0.0.9") -> TestClient:
    user, password = create_staff(db, role)
    c = TestClient(server.app, client=(ip, 50000))
    assert c.post("/api/auth/login", json={"username": user, "password": password}).status_code == 200
    return c


def sender_of(db: str, client: TestClient) -> str:
    with sessions(db)() as s:
        return accounts.citizen_for_token(s, client.cookies.get("bst_citizen")).sender


@pytest.fixture(scope="module")
def who(app_db):
    return {"anonymous": TestClient(server.app, client=("10.0.0.5", 50000)),
            "citizen_a": citizen_client("10.0.0.1"), "citizen_b": citizen_client("10.0.0.2"),
            "agent": staff_client(app_db, "agent", "10.0.0.3"), "admin": staff_client(app_db, "admin", "10.0.0.4")}


@pytest.fixture(scope="module")
def data(app_db, who):
    """Things the routes act on: a hand-over, and two bookings of citizen A."""
    book = BookingBook(app_db)
    day = dt.date.today() + dt.timedelta(days=3)
    a = sender_of(app_db, who["citizen_a"])
    b1 = book.create(sender=a, matter="passport", centre="湖里区", day=day, slot="09:00-10:00", name="张三",
                     phone="13800138000")
    b2 = book.create(sender=a, matter="passport", centre="湖里区", day=day, slot="10:00-11:00", name="张三",
                     phone="13800138000")
    with sessions(app_db)() as s:
        h = Handoff(sender="api-matrix", reason="user_request", matter="passport", summary='{"turns": []}')
        s.add(h)
        s.commit()
        handoff = h.id
    return {"code": b1.code, "code2": b2.code, "last4": "8000", "wrong4": "1234", "handoff": handoff,
            "gid": "passport", "build_id": 999999, "key": "residence-permit-regulation", "article": "第二十一条"}


# The order matters for state-changing rows: citizen A comes last (its own cancel succeeds last).
ORDER = ("anonymous", "citizen_b", "agent", "admin", "citizen_a")
ALL = {w: 200 for w in ORDER}
STAFF = {"anonymous": 401, "citizen_a": 401, "citizen_b": 401, "agent": 200, "admin": 200}
ADMIN = {**STAFF, "agent": 403}
OWNER = {"anonymous": 404, "citizen_b": 404, "agent": 404, "admin": 404, "citizen_a": 200}
XML = b"<xml><FromUserName><![CDATA[oX]]></FromUserName><MsgType><![CDATA[text]]></MsgType></xml>"
BAD_SIG = {"signature": "0" * 40, "timestamp": "1", "nonce": "n", "echostr": "e"}

MATRIX = [  # (method, path, request keywords, expected status per identity)
    ("GET", "/health", {}, ALL),
    ("GET", "/login", {}, ALL),
    ("POST", "/api/session", {"fresh": True}, ALL),  # fresh: it would give the staff a citizen cookie
    ("POST", "/api/chat", {"json": {"sender": "matrix", "message": "护照要多少钱"}}, ALL),
    ("GET", "/wechat", {"params": BAD_SIG}, {w: 403 for w in ORDER}),  # only WeChat can sign
    ("POST", "/wechat", {"params": BAD_SIG, "content": XML}, {w: 403 for w in ORDER}),
    ("GET", "/api/search", {"params": {"q": "护照"}}, STAFF),
    # The laws' texts are public (著作权法 第五条): anyone may read the clause an answer rests on.
    ("GET", "/api/sources/{key}", {}, ALL),
    ("GET", "/api/sources/{key}/{article}", {}, ALL),
    ("POST", "/api/answer", {"json": {"question": "护照要多少钱"}}, STAFF),
    ("GET", "/api/handoffs", {}, STAFF),
    ("GET", "/api/handoffs/{handoff}", {}, STAFF),
    # The agent takes the hand-over first; after that it is theirs alone.
    ("POST", "/api/handoffs/{handoff}/take", {}, {**STAFF, "admin": 409}),
    # An admin may write into a conversation an agent holds (supervision); nobody else may.
    ("POST", "/api/handoffs/{handoff}/messages", {"json": {"text": "您好，我是坐席"}}, STAFF),
    ("POST", "/api/handoffs/{handoff}/close", {"json": {"outcome": "已解答"}}, {**STAFF, "admin": 409}),
    ("GET", "/api/agent/recent", {}, STAFF),
    ("POST", "/api/agent/recent", {"json": {"q": "护照"}}, STAFF),
    ("GET", "/api/chat/updates", {}, {"anonymous": 401, "citizen_b": 200, "agent": 401, "admin": 401, "citizen_a": 200}),
    ("POST", "/api/session/new", {"fresh": True}, ALL),
    ("POST", "/api/feedback", {"json": {"turn_id": 999999, "vote": -1, "reason": "不对"}},
     {"anonymous": 403, "citizen_b": 404, "agent": 403, "admin": 403, "citizen_a": 404}),
    ("GET", "/api/admin/guides", {}, ADMIN),
    ("GET", "/api/admin/guides/{gid}/revisions", {}, ADMIN),
    ("GET", "/api/admin/guides/{gid}/diff", {"params": {"a": 999998, "b": 999999}}, {**ADMIN, "admin": 404}),
    ("POST", "/api/admin/guides/{gid}/restore", {"json": {"number": 999999, "reason": "矩阵"}}, {**ADMIN, "admin": 404}),
    ("GET", "/api/admin/index/builds/{build_id}", {}, {**ADMIN, "admin": 404}),
    ("POST", "/api/admin/index/builds/{build_id}/cancel", {}, {**ADMIN, "admin": 404}),
    ("GET", "/api/admin/index/builds/{build_id}/report", {}, {**ADMIN, "admin": 404}),
    ("POST", "/api/admin/index/builds/{build_id}/publish", {"json": {}}, {**ADMIN, "admin": 404}),
    ("POST", "/api/admin/index/rollback", {"json": {"version": "v-missing"}}, {**ADMIN, "admin": 404}),
    ("GET", "/api/admin/index/versions", {}, ADMIN),
    ("GET", "/api/admin/versions", {}, ADMIN),
    ("POST", "/api/admin/activate", {"json": {"version": "v-missing"}}, {**ADMIN, "admin": 404}),
    ("POST", "/api/admin/reload", {}, ADMIN),
    ("GET", "/api/admin/users", {}, ADMIN),
    ("POST", "/api/admin/users", {"json": {"username": "u{uniq}", "role": "agent"}}, {**ADMIN, "admin": 201}),
    ("GET", "/api/admin/audit", {}, ADMIN),
    ("POST", "/api/auth/login", {"json": {"username": "nobody", "password": "wrong"}}, {w: 401 for w in ORDER}),
    ("POST", "/api/auth/logout", {"fresh": True}, {w: 204 for w in ORDER}),
    ("GET", "/api/auth/me", {}, STAFF),
    ("POST", "/api/auth/password", {"json": {"old_password": "not-my-password", "new_password": "a-new-password"}},
     {**STAFF, "agent": 400, "admin": 400}),
    ("GET", "/api/bookings", {}, {"anonymous": 401, "citizen_a": 200, "citizen_b": 200, "agent": 401, "admin": 401}),
    ("GET", "/api/bookings/{code}", {}, OWNER),
    ("GET", "/api/bookings/{code}", {"params": {"phone_last4": "{wrong4}"}}, OWNER),
    ("GET", "/api/bookings/{code}", {"params": {"phone_last4": "{last4}"}}, ALL),  # from another channel
    ("POST", "/api/bookings/{code2}/cancel", {"json": {}}, OWNER),
    ("POST", "/api/bookings/{code2}/cancel", {"json": {"phone_last4": "{wrong4}"}}, {w: 404 for w in ORDER}),
]


def _fill(value, data):
    if isinstance(value, str):
        return value.format(uniq=uuid.uuid4().hex[:8], **data)
    if isinstance(value, dict):
        return {k: _fill(v, data) for k, v in value.items()}
    return value


@pytest.mark.parametrize("method,path,kw,expected", MATRIX, ids=[f"{m} {p} {i}" for i, (m, p, _, _) in enumerate(MATRIX)])
def test_access_matrix(app_db, who, data, method, path, kw, expected):
    kw = dict(kw)
    fresh = kw.pop("fresh", False)
    got = {}
    for name in ORDER:
        client = who[name]
        if fresh:  # a throw-away session of the same kind (logout must not end the shared one)
            client = (TestClient(server.app, client=("10.0.1.1", 1)) if name == "anonymous" else
                      citizen_client("10.0.1.2") if name.startswith("citizen") else staff_client(app_db, name, "10.0.1.3"))
        got[name] = client.request(method, _fill(path, data), **_fill(kw, data)).status_code
    assert got == expected


def test_every_route_is_in_the_matrix(app_db):
    spec = server.app.openapi()["paths"]
    routes = {(m.upper(), p) for p, ops in spec.items() for m in ops}
    covered = {(m, p.replace("{code2}", "{code}").replace("{handoff}", "{handoff_id}")) for m, p, _, _ in MATRIX}
    covered |= STREAMS | UNBOUNDED
    assert routes - covered == set(), "classify every new route in MATRIX (who gets what)"


# Server-sent events never end for the people allowed to read them: only the refusals are in the matrix.
STREAMS = {("GET", "/api/handoffs/stream")}
# Starting a real index build for every identity would be a test of its own (tests/test_admin.py).
UNBOUNDED = {("POST", "/api/admin/index/builds")}


def test_streams_and_builds_refuse_everyone_else(who):
    for name in ("anonymous", "citizen_a", "citizen_b"):
        assert who[name].get("/api/handoffs/stream").status_code == 401
        assert who[name].post("/api/admin/index/builds", json={}).status_code == 401
    assert who["agent"].post("/api/admin/index/builds", json={}).status_code == 403


def test_refusals_say_in_chinese_what_to_do(who):
    assert who["anonymous"].get("/api/handoffs").json()["detail"] == "请先登录"
    assert who["agent"].get("/api/admin/audit").json()["detail"] == "需要管理员权限"


def test_a_citizen_lists_only_its_own_bookings_and_never_sees_the_full_name_or_phone(who, data):
    mine = who["citizen_a"].get("/api/bookings").json()
    assert data["code"] in {b["code"] for b in mine}
    assert who["citizen_b"].get("/api/bookings").json() == []
    b = who["citizen_b"].get(f"/api/bookings/{data['code'].lower()}", params={"phone_last4": "8000"}).json()
    assert b["phone"] == "138****8000" and b["name"] == "张*"
    r = who["citizen_b"].get(f"/api/bookings/{data['code']}", params={"phone_last4": "8001"})
    assert r.status_code == 404 and "手机号后四位" in r.json()["detail"]


def test_a_booking_is_cancelled_from_another_channel_with_code_and_last_four(app_db, data):
    day = dt.date.today() + dt.timedelta(days=4)
    b = BookingBook(app_db).create(sender="wx-oOther", matter=None, centre="思明区", day=day, slot="14:00-15:00",
                                   name="李四", phone="13900139123")
    stranger = citizen_client("10.0.2.1")
    assert stranger.post(f"/api/bookings/{b.code}/cancel", json={"phone_last4": "9124"}).status_code == 404
    r = stranger.post(f"/api/bookings/{b.code}/cancel", json={"phone_last4": "9123"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert stranger.post(f"/api/bookings/{b.code}/cancel", json={"phone_last4": "9123"}).status_code == 404


def test_chat_senders_cannot_reach_another_namespace(who):
    # A plain integration call is api-<sender>, whatever it claims to be.
    r = who["anonymous"].post("/api/chat", json={"sender": "wx-oUser123", "message": "你好"})
    assert r.json()[0]["recipient_id"] == "api-wx-oUser123"
    # With a session cookie the cookie decides; the body's sender is ignored.
    # (The reply names the page's session key, never the web- identity behind it.)
    r = who["citizen_b"].post("/api/chat", json={"sender": "wx-oUser123", "message": "你好"})
    assert re.fullmatch(r"[0-9a-f]{16}", r.json()[0]["recipient_id"])


def test_an_unknown_session_cookie_gets_a_new_identity_not_the_one_it_names(app_db):
    c = TestClient(server.app, client=("10.0.3.1", 1), cookies={"bst_citizen": "web-0123"})
    r = c.post("/api/chat", json={"sender": "x", "message": "你好"})
    new = re.search(r"bst_citizen=([^;]+)", r.headers["set-cookie"]).group(1)
    assert r.status_code == 200 and new != "web-0123"
    fresh = TestClient(server.app, cookies={"bst_citizen": new})
    from web.citizens import session_key

    assert sender_of(app_db, fresh) != "web-0123"
    assert r.json()[0]["recipient_id"] == session_key(sender_of(app_db, fresh))


def test_session_cookies_are_httponly_and_samesite(app_db):
    c = TestClient(server.app, client=("10.0.3.2", 1))
    cookie = c.post("/api/session").headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    user, password = create_staff(app_db, "agent")
    cookie = c.post("/api/auth/login", json={"username": user, "password": password}).headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "max-age=28800" in cookie


# ---------------------------------------------------------------- accounts: lock-out, expiry, one-time password

def test_login_locks_the_account_after_repeated_failures(app_db):
    user, password = create_staff(app_db, "agent")
    c = TestClient(server.app, client=("10.0.4.1", 1))
    limit = get_settings().login_max_failures
    for _ in range(limit - 1):
        r = c.post("/api/auth/login", json={"username": user, "password": "wrong-password"})
        assert r.status_code == 401 and r.json()["detail"] == "用户名或密码错误"
    r = c.post("/api/auth/login", json={"username": user, "password": "wrong-password"})
    assert r.status_code == 401 and "锁定" in r.json()["detail"]
    # Locked: even the right password is refused until the lock expires.
    r = c.post("/api/auth/login", json={"username": user, "password": password})
    assert r.status_code == 401 and "锁定" in r.json()["detail"]
    with sessions(app_db)() as s:  # the lock runs out (as if 15 minutes passed)
        u = s.query(StaffUser).filter_by(username=user).one()
        u.locked_until = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(seconds=1)
        s.commit()
    assert c.post("/api/auth/login", json={"username": user, "password": password}).status_code == 200


def test_login_attempts_are_rate_limited_per_address(app_db, monkeypatch):
    monkeypatch.setattr(get_settings(), "login_per_minute", 3)
    c = TestClient(server.app, client=("10.0.4.2", 1))
    codes = [c.post("/api/auth/login", json={"username": f"guess{i}", "password": "x"}).status_code
             for i in range(8)]  # a window may turn over once during the loop: still limited twice
    assert 429 in codes and codes.index(429) >= 3
    r = c.post("/api/auth/login", json={"username": "guess", "password": "x"})
    assert r.status_code == 429 and r.json()["detail"] == "请求过于频繁，请稍后再试"


def test_sessions_expire_and_logout_ends_them(app_db):
    c = staff_client(app_db, "agent", "10.0.4.3")
    assert c.get("/api/auth/me").status_code == 200
    with sessions(app_db)() as s:
        token = c.cookies.get("bst_staff")
        row = s.query(StaffSession).filter_by(token_hash=accounts.token_hash(token)).one()
        row.expires_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(seconds=1)
        s.commit()
    assert c.get("/api/auth/me").status_code == 401
    c = staff_client(app_db, "agent", "10.0.4.3")
    stolen = c.cookies.get("bst_staff")
    assert c.post("/api/auth/logout").status_code == 204
    replay = TestClient(server.app, cookies={"bst_staff": stolen})
    assert replay.get("/api/auth/me").status_code == 401  # the token itself is dead, not just the cookie


def test_a_one_time_password_must_be_changed_before_anything_else(app_db, capsys):
    name = f"first{uuid.uuid4().hex[:6]}"
    assert accounts._cli(["create-admin", name]) == 0
    password = re.search(r"one-time password: (\S+)", capsys.readouterr().out).group(1)
    c = TestClient(server.app, client=("10.0.4.4", 1))
    r = c.post("/api/auth/login", json={"username": name, "password": password})
    assert r.status_code == 200 and r.json()["must_change_password"] is True
    r = c.get("/api/admin/audit")
    assert r.status_code == 403 and r.json()["detail"] == "请先修改初始密码"
    r = c.post("/api/auth/password", json={"old_password": password, "new_password": "my-own-password-1"})
    assert r.status_code == 200 and r.json()["must_change_password"] is False
    audit = c.get("/api/admin/audit", params={"actor": name}).json()
    assert [e["action"] for e in audit["items"]] == ["user.password"]
    # The one-time password is gone for good.
    assert TestClient(server.app, client=("10.0.4.5", 1)).post(
        "/api/auth/login", json={"username": name, "password": password}).status_code == 401


def test_the_cli_never_hands_out_the_same_password(app_db, capsys):
    out = []
    for _ in range(2):
        assert accounts._cli(["create-user", f"cli{uuid.uuid4().hex[:6]}", "--role", "agent"]) == 0
        out.append(re.search(r"one-time password: (\S+)", capsys.readouterr().out).group(1))
    assert out[0] != out[1] and all(len(p) >= 12 for p in out)
    assert accounts._cli(["first-admin"]) == 0  # an admin exists: nothing created, how to log in
    assert "one-time password" not in capsys.readouterr().out


def test_staff_pages_redirect_to_the_login_page(app_db):
    from fastapi import Depends

    from web.deps import staff_page

    @server.app.get("/probe-admin-page", include_in_schema=False)
    def probe(user=Depends(staff_page("admin"))):
        return {"user": user.username}

    try:
        anon = TestClient(server.app, follow_redirects=False)
        r = anon.get("/probe-admin-page?tab=1")
        assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fprobe-admin-page%3Ftab%3D1"
        r = staff_client(app_db, "agent").get("/probe-admin-page", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].endswith("why=role")  # an agent is no admin
        assert staff_client(app_db, "admin").get("/probe-admin-page").status_code == 200
    finally:
        server.app.router.routes[:] = [r for r in server.app.router.routes if getattr(r, "path", "") != "/probe-admin-page"]


# ---------------------------------------------------------------- audit log

def test_staff_actions_are_in_the_audit_log_newest_first(app_db, who, data):
    with sessions(app_db)() as s:
        h = Handoff(sender="api-audit", reason="user_request", matter="passport", summary='{"turns": []}')
        s.add(h)
        s.commit()
        handoff = h.id
    assert who["agent"].post(f"/api/handoffs/{handoff}/take").status_code == 200
    assert who["agent"].post(f"/api/handoffs/{handoff}/close", json={"outcome": "已解答"}).status_code == 200
    name = f"aud{uuid.uuid4().hex[:6]}"
    assert who["admin"].post("/api/admin/users", json={"username": name, "role": "agent"}).status_code == 201
    version = who["admin"].get("/api/admin/versions").json()["current"]
    assert who["admin"].post("/api/admin/activate", json={"version": version}).status_code == 200
    page = who["admin"].get("/api/admin/audit", params={"per_page": 3}).json()
    assert page["total"] >= 3 and len(page["items"]) == 3
    actions = [(e["action"], e["target"]) for e in page["items"]]
    assert actions == [("index.activate", f"index:{version}"), ("user.create", f"user:{name}"),
                       ("handoff.close", f"handoff:{handoff}")]
    me = who["agent"].get("/api/auth/me").json()["username"]
    assert page["items"][2]["actor"] == me and page["items"][2]["at"].endswith("Z")
    assert who["admin"].get("/api/admin/audit", params={"page": 2, "per_page": 3}).json()["items"][0]["id"] < \
        page["items"][2]["id"]


# ---------------------------------------------------------------- limits, headers, WeChat

def test_chat_and_search_are_rate_limited_per_client_with_a_chinese_429(app_db, monkeypatch):
    monkeypatch.setattr(get_settings(), "chat_per_minute", 3)
    monkeypatch.setattr(get_settings(), "search_per_minute", 3)
    c = TestClient(server.app, client=("10.0.5.1", 1))
    codes = [c.post("/api/chat", json={"sender": "rl", "message": "你好"}).status_code for _ in range(8)]
    assert 429 in codes and codes.index(429) >= 3
    r = c.post("/api/chat", json={"sender": "rl", "message": "你好"})
    assert r.status_code == 429 and r.json()["detail"] == "请求过于频繁，请稍后再试" and r.headers["retry-after"]
    # Another client is not affected.
    other = TestClient(server.app, client=("10.0.5.2", 1))
    assert other.post("/api/chat", json={"sender": "rl", "message": "你好"}).status_code == 200
    agent = staff_client(app_db, "agent", "10.0.5.3")
    codes = [agent.get("/api/search", params={"q": "护照"}).status_code for _ in range(8)]
    assert 429 in codes and codes.index(429) >= 3
    admin = staff_client(app_db, "admin", "10.0.5.3")  # admins (the evaluation) are not limited
    assert all(admin.get("/api/search", params={"q": "护照"}).status_code == 200 for _ in range(5))


def test_over_limit_counts_a_given_key_for_the_wechat_endpoint(app_db):
    from starlette.requests import Request

    from web.deps import over_limit

    req = Request({"type": "http", "method": "POST", "path": "/wechat", "headers": [], "client": ("1.1.1.1", 1)})
    key = f"wx:o{uuid.uuid4().hex}"
    hits = [over_limit(req, "wechat", 2, key=key) for _ in range(6)]
    assert hits.count(False) >= 2 and True in hits
    assert over_limit(req, "wechat", 2, key=f"wx:o{uuid.uuid4().hex}") is False  # another WeChat user
    assert over_limit(req, "wechat", 0, key=key) is False  # 0 = no limit


def test_every_response_carries_security_headers(who):
    for client, url in ((who["anonymous"], "/login"), (who["anonymous"], "/api/handoffs"), (who["agent"], "/api/handoffs"),
                        (who["anonymous"], "/static/common.css"), (who["anonymous"], "/nope")):
        h = client.get(url).headers
        assert h["x-content-type-options"] == "nosniff" and h["x-frame-options"] == "DENY"
        assert h["referrer-policy"] == "same-origin"
        csp = h["content-security-policy"]
        assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert who["agent"].get("/api/handoffs").headers["cache-control"] == "no-store"


def test_templates_have_no_inline_script_or_style_the_csp_would_block():
    for page in ROOT_TEMPLATES.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), f"{page}: inline <script>"
        assert not re.search(r"\son[a-z]+\s*=", html), f"{page}: inline event handler"
        assert not re.search(r"<style|\sstyle\s*=", html), f"{page}: inline style"
        assert not re.search(r"(src|href)=\"(https?:)?//", html), f"{page}: asset from another site"


def test_wechat_answers_503_until_a_token_is_configured(app_db, monkeypatch):
    monkeypatch.setattr(get_settings(), "wechat_token", "")
    c = TestClient(server.app)
    import hashlib

    sig = hashlib.sha1("".join(sorted(["banshitong", "1", "n"])).encode()).hexdigest()  # the old default word
    for r in (c.get("/wechat", params={"signature": sig, "timestamp": "1", "nonce": "n", "echostr": "e"}),
              c.post("/wechat", params={"signature": sig, "timestamp": "1", "nonce": "n"}, content=XML)):
        assert r.status_code == 503 and "未配置" in r.json()["detail"]


# ---------------------------------------------------------------- the real stack: A's booking is A's

class CookieChat:
    """What tests.test_dialogue._book needs (`.chat(sender, message)`), as a browser with its cookie."""

    def __init__(self, url: str):
        self.http = httpx.Client(base_url=url, timeout=60)
        assert self.http.post("/api/session").status_code == 200

    def chat(self, _sender: str, message: str) -> list[dict]:
        r = self.http.post("/api/chat", json={"sender": "page", "message": message})
        r.raise_for_status()
        return r.json()


def test_citizen_b_never_sees_or_cancels_citizen_a_booking(stack):
    from tests.test_dialogue import _book

    a, b = CookieChat(stack.url), CookieChat(stack.url)
    code = _book(a, "unused")
    a.chat("", "你好")
    a_sender = sender_of(stack.env["BST_DATABASE_URL"], a.http)
    assert a_sender.startswith("web-")

    # B in the chat: no bookings to show or cancel, even naming A's code.
    t = reply_text(b.chat("", "查询我的预约"))
    assert code not in t and "没有" in t
    for msg in ("取消预约", f"取消预约 {code}"):
        t = reply_text(b.chat("", msg))
        assert code not in t and "没有" in t
    # B claiming A's identity in the body: the cookie decides.
    assert code not in reply_text(b.http.post("/api/chat", json={"sender": a_sender, "message": "查询我的预约"}).json())
    # Nor as a plain integration call using A's sender id.
    plain = httpx.post(f"{stack.url}/api/chat", json={"sender": a_sender, "message": "查询我的预约"}, timeout=60).json()
    assert plain[0]["recipient_id"] == f"api-{a_sender}" and code not in reply_text(plain)
    # B over HTTP: not without the phone's last four digits, not with wrong ones.
    for params in ({}, {"phone_last4": "0000"}, {"phone_last4": "8001"}):
        assert b.http.get(f"/api/bookings/{code}", params=params).status_code == 404
        assert b.http.post(f"/api/bookings/{code}/cancel", json=params).status_code == 404
    assert b.http.get("/api/bookings").json() == []
    assert httpx.get(f"{stack.url}/api/bookings/{code}").status_code == 404
    # B with a booking of its own: naming A's code never offers B's booking instead (issue 22).
    b.chat("", "你好")
    mine = BookingBook(stack.env["BST_DATABASE_URL"]).create(
        sender=sender_of(stack.env["BST_DATABASE_URL"], b.http), matter=None, centre="思明区",
        day=dt.date.today() + dt.timedelta(days=6), slot="14:00-15:00", name="李四", phone="13900139000")
    t = reply_text(b.chat("", f"取消预约 {code}"))
    assert code not in t and mine.code not in t and "没有找到" in t, t
    # The look-up by code + last four digits from another chat: found, the name masked.
    t = reply_text(b.chat("", f"查预约 {code} 8000"))
    assert code in t and "张*" in t and "张三" not in t, t

    # A still has it, and sees it in the chat and over HTTP.
    assert code in reply_text(a.chat("", "查询我的预约"))
    mine = a.http.get("/api/bookings").json()
    assert [x["code"] for x in mine] == [code] and mine[0]["phone"] == "138****8000"
    t = reply_text(a.chat("", "取消预约"))
    assert code in t and "确定" in t
    assert "已取消" in reply_text(a.chat("", "确认"))


def test_a_fresh_stack_has_no_open_door(stack):
    assert httpx.get(f"{stack.url}/api/handoffs").status_code == 401
    r = httpx.get(f"{stack.url}/wechat", params={"signature": "x", "timestamp": "1", "nonce": "n", "echostr": "e"})
    assert r.status_code == 503 and "未配置" in r.json()["detail"], r.text
    assert httpx.get(f"{stack.url}/api/admin/versions").status_code == 401


def test_handoffs_need_an_agent_login_on_the_stack(stack, staff_user):
    agent = login(stack.url, *staff_user("agent"))
    assert agent.get("/api/handoffs").status_code == 200
    assert agent.get("/api/admin/audit").status_code == 403

