"""Hardening (issue 22): one message length limit at every channel's edge, rate limits that hold
under concurrency, bodies capped however they are sent, no cross-site state changes, no open
redirect, no formula in a CSV cell, no secret without the token, and the other holes a probe found.

In-process (no Rasa: /api/chat answers directly) except where a test names the `stack`.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import hashlib
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

import server
from assistant import bookings as bk
from assistant import texts
from assistant.bookings import BookingBook
from assistant.db import ChatTurn, sessions, utcnow
from settings import get_settings
from tests.conftest import create_staff, reply_text

ROOT = Path(__file__).resolve().parent.parent
WX_TOKEN = "hardening-wx-token"
SECURITY = ("x-content-type-options", "x-frame-options", "referrer-policy", "content-security-policy")


@pytest.fixture(scope="module")
def app_db(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    db = f"sqlite:///{tmp_path_factory.mktemp('hardening') / 'app.db'}"
    mp.setenv("BST_DATABASE_URL", db)
    mp.setenv("BST_RASA_URL", "http://127.0.0.1:9")  # no dialogue server: /api/chat answers directly
    mp.setenv("BST_WECHAT_TOKEN", WX_TOKEN)
    server.get_settings.cache_clear()
    with TestClient(server.app):  # the lifespan once: migrations, the engine
        yield db
    mp.undo()
    server.get_settings.cache_clear()


def client(ip: str | None = None, **kw) -> TestClient:
    return TestClient(server.app, client=(ip or f"10.22.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}", 1), **kw)


def staff(db: str, role: str, ip: str | None = None) -> TestClient:
    user, password = create_staff(db, role)
    c = client(ip)
    assert c.post("/api/auth/login", json={"username": user, "password": password}).status_code == 200
    return c


def wx_params(timestamp: str | None = None, nonce: str = "n0nce") -> dict:
    timestamp = timestamp or str(int(time.time()))
    sig = hashlib.sha1("".join(sorted([WX_TOKEN, timestamp, nonce])).encode()).hexdigest()
    return {"signature": sig, "timestamp": timestamp, "nonce": nonce}


def wx_text(content: str, openid: str | None = None) -> bytes:
    openid = openid or f"oH{uuid.uuid4().hex[:20]}"
    return (f"<xml><ToUserName><![CDATA[gh_test]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{content}]]></Content><MsgId>{uuid.uuid4().int % 10**18}</MsgId></xml>").encode()


# ---------------------------------------------------------------- one message length limit, every channel

def test_one_length_limit_from_settings_is_enforced_at_every_channel(app_db, monkeypatch):
    monkeypatch.setattr(get_settings(), "max_message_chars", 40)
    refusal = texts.TOO_LONG.format(limit=40)
    long_text = "护照" * 25  # 50 characters
    citizen, agent = client(), staff(app_db, "agent")

    r = citizen.post("/api/chat", json={"sender": "long", "message": long_text})
    assert r.status_code == 422 and refusal in r.json()["detail"]
    assert citizen.post("/api/chat", json={"sender": "long", "message": long_text[:40]}).status_code == 200

    r = agent.post("/api/answer", json={"question": long_text})
    assert r.status_code == 422 and refusal in r.json()["detail"]
    r = agent.get("/api/search", params={"q": long_text})
    assert r.status_code == 422 and refusal in r.json()["detail"]
    r = agent.post("/api/handoffs/1/messages", json={"text": long_text})
    assert r.status_code == 422 and refusal in r.json()["detail"]

    r = client().post("/wechat", params=wx_params(), content=wx_text(long_text))
    assert r.status_code == 200 and refusal in r.text  # WeChat retries anything else: a reply, not a 4xx


def test_the_default_limit_is_the_documented_5000_characters(app_db):
    assert get_settings().max_message_chars == 5000
    r = client().post("/api/chat", json={"sender": "long", "message": "请问" * 2501})
    assert r.status_code == 422 and "最多 5000 字" in r.json()["detail"]


# ---------------------------------------------------------------- limits that hold under concurrency

def _away_from_a_minute_boundary(margin: float = 8.0) -> None:
    """Fixed one-minute windows: a burst that straddles two would rightly get twice the limit."""
    left = 60 - time.time() % 60
    if left < margin:
        time.sleep(left + 0.5)


def test_parallel_requests_above_the_limit_get_429(app_db, monkeypatch):
    monkeypatch.setattr(get_settings(), "chat_per_minute", 10)
    _away_from_a_minute_boundary()

    async def burst() -> list[int]:
        transport = httpx.ASGITransport(app=server.app, client=("10.22.99.1", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=120) as c:
            rs = await asyncio.gather(*(c.post("/api/chat", json={"sender": f"p{i}", "message": "你好"})
                                        for i in range(40)))
            return [r.status_code for r in rs]

    codes = asyncio.run(burst())
    assert codes.count(200) == 10 and codes.count(429) == 30, codes


def test_the_database_counter_loses_no_hit_across_threads(app_db):
    from assistant.store import DatabaseStore

    store, key = DatabaseStore(app_db), f"rl:test:{uuid.uuid4().hex}"
    _away_from_a_minute_boundary()
    seen: list[int] = []

    def worker():
        for _ in range(25):
            seen.append(store.hit(key, 60))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == list(range(1, 201))  # every hit counted once, each count handed out once


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed (scripts/setup_system.sh installs it)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([exe, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    import redis

    deadline = time.monotonic() + 20
    while True:
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(10)


def test_the_redis_counter_loses_no_hit_and_expires(redis_url):
    from assistant.store import RedisStore

    store, key = RedisStore(redis_url), f"rl:test:{uuid.uuid4().hex}"
    _away_from_a_minute_boundary()
    seen: list[int] = []

    def worker():
        for _ in range(50):
            seen.append(store.hit(key, 60))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == list(range(1, 401))
    bucket = f"{key}:{int(utcnow().timestamp() // 60)}"
    assert 0 < store.redis.ttl(bucket) <= 120  # the counter goes away by itself


# ---------------------------------------------------------------- bodies, headers, cross-site requests

def test_a_chunked_body_is_capped_like_any_other(app_db):
    def chunks():
        for _ in range(32):
            yield b"a" * 65536  # 2 MiB in all, no Content-Length

    r = client().post("/api/chat", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "过大" in r.json()["detail"]
    assert all(h in r.headers for h in SECURITY)


def test_a_500_is_a_chinese_json_with_the_security_headers(app_db):
    @server.app.get("/probe-500", include_in_schema=False)
    def boom():
        raise RuntimeError("probe")

    try:
        r = client(raise_server_exceptions=False).get("/probe-500")
        assert r.status_code == 500 and "服务器内部错误" in r.json()["detail"]
        assert all(h in r.headers for h in SECURITY)
    finally:
        server.app.router.routes[:] = [x for x in server.app.router.routes if getattr(x, "path", "") != "/probe-500"]


def test_cross_site_posts_to_logout_and_new_session_are_refused(app_db):
    agent = staff(app_db, "agent")
    for headers in ({"sec-fetch-site": "cross-site"}, {"origin": "https://evil.example"}, {"origin": "null"}):
        r = agent.post("/api/auth/logout", headers=headers)
        assert r.status_code == 403 and "跨站" in r.json()["detail"]
        assert "set-cookie" not in r.headers
    assert agent.get("/api/auth/me").status_code == 200  # still logged in, cookie and session

    citizen = client()
    citizen.get("/")
    cookie = citizen.cookies.get("bst_citizen")
    r = citizen.post("/api/session/new", headers={"sec-fetch-site": "cross-site"})
    assert r.status_code == 403 and "set-cookie" not in r.headers and citizen.cookies.get("bst_citizen") == cookie
    # The page itself (same origin) and clients that are no browser page still work.
    assert citizen.post("/api/session/new", headers={"sec-fetch-site": "same-origin"}).status_code == 200
    assert citizen.post("/api/session/new", headers={"origin": "http://testserver"}).status_code == 200
    assert agent.post("/api/auth/logout").status_code == 204


# ---------------------------------------------------------------- admins: CSV, parameters, uploads, docs

def test_a_citizen_formula_never_reaches_a_csv_cell_as_a_formula(app_db):
    with sessions(app_db)() as s:
        for q in ('+cmd|" /C calc"!A0', "=HYPERLINK(\"http://evil.example\")", "-2+3", "@SUM(A1)"):
            s.add(ChatTurn(sender="api-csv", channel="api", question=q, answer="抱歉", kind="refused"))
        s.commit()
    r = staff(app_db, "admin").get("/admin/feedback.csv")
    assert r.status_code == 200
    rows = list(csv.reader(io.StringIO(r.text.lstrip("\ufeff"))))
    cells = [c for row in rows[1:] for c in row[3:]]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@")], cells
    assert "'+cmd|\" /C calc\"!A0" in cells


@pytest.mark.parametrize("value", ["30000", "²", "0", "-1"])
def test_admin_query_parameters_never_cause_a_500(app_db, value):
    admin = staff(app_db, "admin")
    r = admin.get("/api/admin/guides", params={"older_than": value})
    assert r.status_code == 422 and "older_than" in r.json()["detail"]
    assert admin.get("/admin/guides", params={"older_than": value}).status_code == 200


def test_a_90_kb_document_upload_gets_the_admin_page_and_a_huge_one_a_chinese_413(app_db):
    admin = staff(app_db, "admin")
    text = ("一、总体要求\n" + "（一）加强政务服务。责任单位：市政务服务中心管理委员会。\n" * 1500).encode()
    assert len(text) > 90_000
    meta = {"title": "上传测试", "short_title": "上传测试", "issuer": "厦门市人民政府", "date": "2020-01-01",
            "region": "厦门市", "layout": "clauses"}
    r = admin.post("/admin/documents/preview", data=meta, files={"file": ("big.txt", text, "text/plain")})
    assert r.status_code == 200 and "预览" in r.text and "text/html" in r.headers["content-type"]
    huge = b"a" * (6 * 1024 * 1024)
    r = admin.post("/admin/documents/preview", data=meta, files={"file": ("huge.txt", huge, "text/plain")})
    assert r.status_code == 413 and "文件过大" in r.text and "text/html" in r.headers["content-type"]


def test_a_docx_with_a_long_vertically_merged_column_reads_in_one_pass(monkeypatch):
    import docx
    from docx.oxml.table import CT_Tc

    from assistant import knowledge_base as kb

    d = docx.Document()
    t = d.add_table(rows=60, cols=3)
    for i, row in enumerate(t.rows):
        row.cells[0].text = f"（{i + 1}）任务"
    t.cell(0, 1).merge(t.cell(59, 1)).text = "市政务服务中心"
    t.cell(0, 2).merge(t.cell(59, 2)).text = "2020年底前"
    buf = io.BytesIO()
    d.save(buf)
    expected = [c.text for row in docx.Document(io.BytesIO(buf.getvalue())).tables[0].rows for c in row.cells]
    # python-docx's row.cells walks a merged cell up row by row (an XPath search each): quadratic,
    # seconds for a real responsibility table. Count those walks while the upload is read.
    walks = []
    original = CT_Tc._tc_above
    monkeypatch.setattr(CT_Tc, "_tc_above", property(lambda tc: walks.append(1) or original.fget(tc)))
    text = kb.extract_text("分工.docx", buf.getvalue())
    assert text.splitlines()[-len(expected):] == expected
    assert text.count("市政务服务中心") == 60
    assert walks == []


def test_docs_are_served_from_local_files_under_the_strict_csp(app_db):
    r = client().get("/docs")
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "http" not in csp
    assert not re.search(r"(src|href)=\"(https?:)?//", r.text)
    for asset in re.findall(r"(?:src|href)=\"(/static/[^\"]+)\"", r.text):
        assert client().get(asset).status_code == 200, asset
    assert client().get("/redoc").status_code == 404


def test_the_docs_page_renders_in_a_browser_without_any_other_site(app_db, browser):
    c, outside = client(), []

    def handle(route):
        req = route.request
        if not req.url.startswith("http://bst.test/"):
            outside.append(req.url)
            return route.abort()
        r = c.request(req.method, req.url.removeprefix("http://bst.test"), headers={"accept": "*/*"})
        route.fulfill(status=r.status_code, headers=dict(r.headers), body=r.content)

    ctx = browser.new_context()
    try:
        page = ctx.new_page()
        errors = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.route("**/*", handle)
        page.goto("http://bst.test/docs")
        page.get_by_text("/api/chat", exact=True).first.wait_for(timeout=30_000)
        assert outside == [] and not [e for e in errors if "Content Security Policy" in e], errors
    finally:
        ctx.close()


# ---------------------------------------------------------------- staff: login redirect, passwords, lock-out

@pytest.mark.parametrize("target", ["/%09/evil.example/", "//evil.example/", "/%5Cevil.example", "https://evil.example/",
                                    "/%0a/evil.example", "/\\evil.example"])
def test_login_never_redirects_to_another_site(app_db, browser, target):
    user, password = create_staff(app_db, "agent")
    c, visited = client(), []

    def handle(route):
        req = route.request
        visited.append(req.url)
        if not req.url.startswith("http://bst.test/"):
            return route.fulfill(status=200, body="elsewhere")
        if req.url.startswith("http://bst.test/agent"):  # landed (the console itself would open a stream)
            return route.fulfill(status=200, content_type="text/html", body="<title>agent</title>")
        r = c.request(req.method, req.url.removeprefix("http://bst.test"), content=req.post_data_buffer,
                      headers={k: v for k, v in req.headers.items() if k in ("content-type", "cookie")},
                      follow_redirects=False)
        route.fulfill(status=r.status_code, headers=dict(r.headers), body=r.content)

    ctx = browser.new_context()
    try:
        page = ctx.new_page()
        page.route("**/*", handle)
        page.goto(f"http://bst.test/login?next={target}")
        page.get_by_label("用户名").fill(user)
        page.get_by_label("密码", exact=True).fill(password)
        page.get_by_role("button", name="登录").click()
        page.wait_for_url(re.compile(r"/agent$"), timeout=30_000)
        assert not [u for u in visited if "evil.example" in u.split("?")[0].removeprefix("http://bst.test")], visited
    finally:
        ctx.close()


def test_a_local_next_still_lands_where_it_was_asked(app_db):
    r = client().get("/login", params={"next": "/admin/guides?older_than=12"})
    assert 'data-next="/admin/guides?older_than=12"' in r.text
    assert 'data-next=""' in client().get("/login", params={"next": "/\t/evil.example/"}).text


def test_a_too_short_new_password_says_how_long_it_must_be(app_db):
    user, password = create_staff(app_db, "agent")
    c = client()
    assert c.post("/api/auth/login", json={"username": user, "password": password}).status_code == 200
    r = c.post("/api/auth/password", json={"old_password": password, "new_password": "short"})
    assert r.status_code in (400, 422) and "至少需要10个字符" in r.json()["detail"], r.text


def test_lock_out_messages_do_not_tell_which_usernames_exist(app_db):
    real, _ = create_staff(app_db, "agent")
    ghost = f"ghost{uuid.uuid4().hex[:6]}"
    answers = {}
    for name in (real, ghost):
        c = client()
        answers[name] = [c.post("/api/auth/login", json={"username": name, "password": "wrong-password"}).json()["detail"]
                         for _ in range(get_settings().login_max_failures + 2)]
    assert answers[real] == answers[ghost], answers
    assert any("锁定" in a for a in answers[ghost])


# ---------------------------------------------------------------- addresses: X-Forwarded-For

def test_x_forwarded_for_counts_only_from_a_configured_proxy(app_db, monkeypatch):
    monkeypatch.setattr(get_settings(), "login_per_minute", 3)
    _away_from_a_minute_boundary()
    c = client("127.0.0.1")
    codes = [c.post("/api/auth/login", json={"username": "x", "password": "y"},
                    headers={"x-forwarded-for": f"203.0.113.{i}"}).status_code for i in range(6)]
    assert codes.count(429) >= 2, codes  # a rotated header is no new client
    monkeypatch.setattr(get_settings(), "trusted_proxies", "127.0.0.2")
    proxy = client("127.0.0.2")
    codes = [proxy.post("/api/auth/login", json={"username": "x", "password": "y"},
                        headers={"x-forwarded-for": f"198.51.100.{i}"}).status_code for i in range(6)]
    assert 429 not in codes, codes  # behind the configured proxy each address is its own client


def test_the_served_app_does_not_believe_x_forwarded_for_from_loopback(tmp_path):
    """The Procfile's own command line (uvicorn believes loopback proxies unless told otherwise)."""
    line = next(x for x in (ROOT / "Procfile").read_text().splitlines() if x.startswith("app:"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("BST_")}
    env.update({"PYTHONPATH": str(ROOT), "BST_APP_PORT": str(port), "BST_APP_WORKERS": "1",
                "BST_DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}", "BST_INDEX_DIR": str(tmp_path / "no-index"),
                "BST_LOGIN_PER_MINUTE": "2", "BST_RASA_TOKEN": "t" * 32})
    proc = subprocess.Popen(["bash", "-c", line.split(":", 1)[1]], cwd=ROOT, env=env, start_new_session=True,
                            stdout=open(tmp_path / "app.log", "wb"), stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while True:
            try:
                httpx.get(f"{url}/health", timeout=2)
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "app.log").read_text()[-2000:]
                time.sleep(0.5)
        _away_from_a_minute_boundary()
        codes = [httpx.post(f"{url}/api/auth/login", json={"username": "x", "password": "y"},
                            headers={"x-forwarded-for": f"203.0.113.{i}"}, timeout=30).status_code for i in range(5)]
        assert 429 in codes, codes
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(30)


# ---------------------------------------------------------------- WeChat: replayed timestamps

def test_wechat_refuses_a_correctly_signed_but_old_message(app_db):
    old = str(int(time.time()) - 3600)
    r = client().post("/wechat", params=wx_params(timestamp=old), content=wx_text("护照要多少钱"))
    assert r.status_code == 403 and "时间戳" in r.json()["detail"]
    r = client().get("/wechat", params={**wx_params(timestamp=old), "echostr": "e"})
    assert r.status_code == 403
    r = client().post("/wechat", params=wx_params(), content=wx_text("你好"))
    assert r.status_code == 200


# ---------------------------------------------------------------- chat identities and bookings

def test_senders_longer_than_60_characters_are_refused_not_cut(app_db):
    c = client()
    base = "s" * 60
    assert c.post("/api/chat", json={"sender": base, "message": "你好"}).status_code == 200
    for extra in ("1", "1234"):
        r = c.post("/api/chat", json={"sender": base + extra, "message": "你好"})
        assert r.status_code == 422 and "发送者(sender)" in r.json()["detail"]


def test_a_chat_reply_never_shows_the_web_identity(app_db):
    c = client()
    c.get("/")
    r = c.post("/api/chat", json={"sender": "page", "message": "你好"})
    ids = {m["recipient_id"] for m in r.json()}
    assert not any(i.startswith("web-") for i in ids)
    assert ids == {re.search(r'data-session="([0-9a-f]+)"', c.get("/").text).group(1)}  # the page's own key
    # An integration is told the `api-` name it chats under.
    assert client().post("/api/chat", json={"sender": "x1", "message": "你好"}).json()[0]["recipient_id"] == "api-x1"


def test_chat_look_ups_by_code_count_against_the_look_up_limit(app_db, monkeypatch):
    monkeypatch.setattr(get_settings(), "booking_lookup_per_minute", 2)
    monkeypatch.setattr(get_settings(), "chat_per_minute", 30)
    _away_from_a_minute_boundary()
    c = client()
    codes = [c.post("/api/chat", json={"sender": "guess", "message": f"查预约 K7M3QX2P {n:04d}"}).status_code
             for n in range(5)]
    assert codes[:2] == [200, 200] and codes[2:] == [429, 429, 429], codes
    assert c.post("/api/chat", json={"sender": "guess", "message": "护照要多少钱"}).status_code == 200
    # The HTTP look-up shares the same count.
    assert c.get("/api/bookings/K7M3QX2P", params={"phone_last4": "0000"}).status_code == 429


def test_the_domain_masks_the_name_and_never_swaps_the_booking_to_cancel(app_db):
    assert bk.mask_name("张三") == "张*" and bk.mask_name("欧阳娜娜") == "欧***"
    book = BookingBook(app_db)
    day = dt.date.today() + dt.timedelta(days=5)
    mine = book.create(sender="api-mine", matter=None, centre="湖里区", day=day, slot="09:00-10:00", name="王五",
                       phone="13700137000")
    other = book.create(sender="api-other", matter=None, centre="湖里区", day=day, slot="10:00-11:00", name="赵六",
                        phone="13600136000")
    items = book.active_for("api-mine")
    assert bk.booking_to_cancel(items, f"取消预约 {other.code}") is None
    assert bk.booking_to_cancel(items, f"取消预约 {mine.code.lower()}") is items[0]
    assert bk.booking_to_cancel(items, "取消预约") is items[0]


# ---------------------------------------------------------------- Rasa: nothing without the token

def test_rasa_does_not_start_without_a_token():
    env = {k: v for k, v in os.environ.items() if k != "BST_RASA_TOKEN"}
    env["PYTHONPATH"] = str(ROOT)
    r = subprocess.run([str(ROOT / ".venv/rasa/bin/python"), "-m", "bot.serve", "run", "--enable-api"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "BST_RASA_TOKEN" in r.stderr


def test_rasa_api_and_channel_need_the_token(stack):
    rasa, token = stack.env["BST_RASA_URL"], stack.env["BST_RASA_TOKEN"]
    sender = f"api-tok{uuid.uuid4().hex[:8]}"
    assert stack.chat(sender.removeprefix("api-"), "你好")  # the app itself gets through
    assert httpx.get(f"{rasa}/conversations/{sender}/tracker", timeout=30).status_code == 401
    assert httpx.get(f"{rasa}/conversations/{sender}/tracker", params={"token": token}, timeout=30).status_code == 200
    for url in (f"{rasa}/webhooks/banshitong/webhook", f"{rasa}/webhooks/rest/webhook"):
        r = httpx.post(url, json={"sender": sender, "message": "查询我的预约"}, timeout=60)
        assert r.status_code in (401, 404), (url, r.status_code, r.text[:200])
    r = httpx.post(f"{rasa}/webhooks/banshitong/webhook", json={"sender": sender, "message": "你好"},
                   headers={"Authorization": "Bearer wrong"}, timeout=60)
    assert r.status_code == 401


def test_the_action_server_runs_actions_only_for_rasa(stack):
    """A forged tracker posted to the action server would make it read out or cancel anyone's booking:
    without Rasa's token it is refused; the health check stays open; it listens on loopback only."""
    from tests.conftest import PORTS

    url = f"http://127.0.0.1:{PORTS['actions']}"
    forged = {"next_action": "action_query_booking", "sender_id": "someone-else",
              "tracker": {"sender_id": "someone-else", "slots": {}, "latest_message": {"text": "查询我的预约"},
                          "events": [], "paused": False, "active_loop": {}, "latest_action_name": None},
              "domain": {"responses": {}}}
    for params in ({}, {"token": "wrong"}):
        r = httpx.post(f"{url}/webhook", json=forged, params=params, timeout=30)
        assert r.status_code == 401 and "令牌" in r.json()["error"]
    assert httpx.get(f"{url}/health", timeout=30).status_code == 200
    assert stack.chat(f"act-tok{uuid.uuid4().hex[:8]}", "护照要多少钱")  # Rasa, with the token, gets through
    port = f"{PORTS['actions']:04X}"
    rows = [line.split() for f in ("/proc/net/tcp", "/proc/net/tcp6") if os.path.exists(f)
            for line in open(f).read().splitlines()[1:]]
    listening = [r[1] for r in rows if r[1].endswith(":" + port) and r[3] == "0A"]  # 0A: LISTEN
    assert listening and all(a.startswith("0100007F:") for a in listening), listening  # 127.0.0.1 only


def test_the_action_server_does_not_start_without_its_token():
    env = {k: v for k, v in os.environ.items() if k != "BST_ACTION_TOKEN"}
    env["PYTHONPATH"] = str(ROOT)
    r = subprocess.run([str(ROOT / ".venv/app/bin/python"), "-m", "actions.serve", "--port", "15998"], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "BST_ACTION_TOKEN" in r.stderr
