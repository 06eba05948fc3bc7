"""The WeChat Official Account protocol as WeChat speaks it: signed GET verification, XML messages,
retries of the same message, the 5-second rule (客服消息 through a local stand-in of the WeChat API),
safe mode (AES), replies split by bytes, buttons as numbered options.

The app runs in-process against the real Rasa stack (the `stack` fixture), so bookings and answers
are the real ones."""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
OFFSET = int(os.environ.get("BST_TEST_PORT_OFFSET", "0"))
STANDIN_PORT = 26000 + OFFSET
TOKEN, APPID, SECRET = "test-wx-token", "wxtestapp0001", "wx-test-secret"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters, as WeChat issues them


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    log = tmp_path_factory.mktemp("standin") / "standin.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WX_STANDIN_APPID": APPID, "WX_STANDIN_SECRET": SECRET}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "tests.wechat_standin:app", "--host", "127.0.0.1",
                             "--port", str(STANDIN_PORT)], cwd=ROOT, env=env, stdout=open(log, "wb"),
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{STANDIN_PORT}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{url}/_sent", timeout=1)
            break
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"WeChat stand-in did not start: {log.read_text()}")
            time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def wx(stack, stack_env, standin):
    import server

    # The action server loads its engine on the first question (a minute on busy shared cores);
    # ask once so the tests below measure WeChat's paths, not that warm-up.
    httpx.post(f"{stack.url}/api/chat", json={"sender": "wx-warmup", "message": "护照要多少钱"}, timeout=300)

    mp = pytest.MonkeyPatch()
    for key in ("BST_RASA_URL", "BST_ACTION_URL", "BST_DATABASE_URL", "BST_RASA_TOKEN"):
        mp.setenv(key, stack_env[key])
    mp.setenv("BST_WECHAT_TOKEN", TOKEN)
    mp.setenv("BST_WECHAT_APP_ID", APPID)
    mp.setenv("BST_WECHAT_APP_SECRET", SECRET)
    mp.setenv("BST_WECHAT_API_BASE", f"{standin}/cgi-bin/")
    mp.setenv("BST_WECHAT_ENCODING_AES_KEY", "")
    mp.setenv("BST_WECHAT_REPLY_TIMEOUT", "60")  # two shared cores: Rasa may be slow; the slow path sets its own
    server.get_settings.cache_clear()
    with TestClient(server.app) as c:
        c.settings = server.get_settings()
        c.db = create_engine(stack_env["BST_DATABASE_URL"])
        yield c
    mp.undo()
    server.get_settings.cache_clear()


def signed(token=TOKEN, timestamp=None, nonce="n0nce"):
    timestamp = timestamp or str(int(time.time()))
    sig = hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()
    return {"signature": sig, "timestamp": timestamp, "nonce": nonce}


def xml(msg_type="text", content="办护照要多少钱", openid="oUser123", msg_id=None, event=None, key=None,
        create_time=None):
    if msg_type == "text":
        body = f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id or uuid.uuid4().int % 10**18}</MsgId>"
    elif msg_type == "event":
        body = f"<Event><![CDATA[{event}]]></Event>" + (f"<EventKey><![CDATA[{key}]]></EventKey>" if key else "")
    else:
        body = f"<PicUrl><![CDATA[http://x/y.jpg]]></PicUrl><MsgId>{msg_id or uuid.uuid4().int % 10**18}</MsgId>"
    return (f"<xml><ToUserName><![CDATA[gh_bst]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{create_time or int(time.time())}</CreateTime><MsgType><![CDATA[{msg_type}]]></MsgType>{body}"
            f"</xml>").encode()


def content(r) -> str:
    """The text of a passive reply ('' for `success`)."""
    assert r.status_code == 200, r.text
    if r.text == "success":
        return ""
    m = re.search(r"<Content><!\[CDATA\[(.*)\]\]></Content>", r.text, re.S)
    assert m, r.text
    return m.group(1)


def say(wx, openid, message, msg_id=None) -> str:
    return content(wx.post("/wechat", params=signed(), content=xml(content=message, openid=openid, msg_id=msg_id)))


def sent_to(standin, openid) -> list[str]:
    return [m["text"]["content"] for m in httpx.get(f"{standin}/_sent").json()["sent"] if m["touser"] == openid]


def wait_for(predicate, timeout=60.0):
    """Polls a condition (the app answers in the background) instead of sleeping a fixed time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def new_openid() -> str:
    return "o" + uuid.uuid4().hex[:20]


# ---------------------------------------------------------------- protocol basics

def test_server_verification_echoes_only_with_a_valid_signature(wx):
    r = wx.get("/wechat", params={**signed(), "echostr": "hello123"})
    assert r.status_code == 200 and r.text == "hello123"
    bad = {**signed(), "signature": "0" * 40, "echostr": "x"}
    assert wx.get("/wechat", params=bad).status_code == 403


def test_text_message_gets_an_xml_text_reply_with_the_answer(wx):
    openid = new_openid()
    r = wx.post("/wechat", params=signed(), content=xml(openid=openid))
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    assert "<MsgType><![CDATA[text]]></MsgType>" in r.text
    assert f"<ToUserName><![CDATA[{openid}]]></ToUserName>" in r.text and "120" in content(r)


def test_image_message_is_told_kindly_to_send_text(wx):
    r = wx.post("/wechat", params=signed(), content=xml("image", openid=new_openid()))
    assert "只支持文字" in content(r)


def test_unsigned_or_malformed_posts_are_refused(wx):
    assert wx.post("/wechat", params={**signed(), "signature": "bad"}, content=xml()).status_code == 403
    assert wx.post("/wechat", params=signed(token="wrong"), content=xml()).status_code == 403
    assert wx.post("/wechat", params=signed(), content=b"<xml><oops").status_code == 400
    assert wx.post("/wechat", content=xml()).status_code == 422


def test_subscribe_welcome_and_menu_clicks(wx):
    openid = new_openid()
    welcome = content(wx.post("/wechat", params=signed(), content=xml("event", openid=openid, event="subscribe")))
    assert "欢迎关注办事通" in welcome
    book = content(wx.post("/wechat", params=signed(), content=xml("event", openid=openid, event="CLICK", key="BOOK")))
    assert "哪个服务中心" in book and "1. 厦门市行政服务中心" in book
    odd = content(wx.post("/wechat", params=signed(), content=xml("event", openid=openid, event="CLICK", key="NOPE",
                                                                  create_time=int(time.time()) + 1)))
    assert "菜单暂不可用" in odd
    # Leaving says nothing (WeChat would not show it anyway).
    assert content(wx.post("/wechat", params=signed(), content=xml("event", openid=openid, event="unsubscribe",
                                                                   create_time=int(time.time()) + 2))) == ""


# ---------------------------------------------------------------- numbered options, retries

def _bookings(wx, sender: str) -> int:
    with wx.db.connect() as c:
        return c.execute(text("SELECT count(*) FROM bookings WHERE sender = :s"), {"s": sender}).scalar()


def test_booking_by_numbers_and_a_retried_confirmation_books_once(wx, stack_env):
    openid = new_openid()
    t = say(wx, openid, "我要预约办事")
    assert "请回复数字选择" in t and "3. 湖里区" in t
    t = say(wx, openid, "3")  # 湖里区
    assert "哪一天" in t and "湖里区" in t and "1. " in t
    t = say(wx, openid, "１")  # full-width digits work too
    assert "时段" in t
    t = say(wx, openid, "1")
    assert "姓名" in t
    assert "手机" in say(wx, openid, "张三")
    t = say(wx, openid, "13800138000")
    assert "请确认预约信息" in t and "1. 确认预约" in t

    # WeChat retries the same message (same MsgId) when it did not get the reply in time; here all
    # three arrive at once, as they would while the first is still being answered.
    msg_id = uuid.uuid4().int % 10**18
    body = xml(content="1", openid=openid, msg_id=msg_id)
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        replies = list(pool.map(lambda _: content(wx.post("/wechat", params=signed(), content=body)), range(3)))
    answered = [r for r in replies if r]
    assert answered and all("预约成功" in r for r in answered), replies
    assert len({r for r in answered}) == 1, "a retry gets the first reply, never a second answer"
    assert _bookings(wx, f"wx-{openid}") == 1
    tracker = httpx.get(f"{stack_env['BST_RASA_URL']}/conversations/wx-{openid}/tracker",
                        params={"token": stack_env["BST_RASA_TOKEN"]}, timeout=30).json()
    confirmations = [e for e in tracker["events"] if e.get("event") == "user" and e.get("text") == "确认预约"]
    assert len(confirmations) == 1, "the bot saw the confirmation once"
    # A later retry of the same message still books nothing new.
    assert "预约成功" in content(wx.post("/wechat", params=signed(), content=body))
    assert _bookings(wx, f"wx-{openid}") == 1


# ---------------------------------------------------------------- 5-second rule, long replies

def test_slow_answer_replies_success_then_arrives_as_customer_service_message(wx, standin):
    openid = new_openid()
    old = wx.settings.wechat_reply_timeout
    wx.settings.wechat_reply_timeout = 0.001  # the answer is never ready this fast
    try:
        r = wx.post("/wechat", params=signed(), content=xml(content="护照要多少钱", openid=openid))
        assert r.status_code == 200 and r.text == "success"
        pushed = wait_for(lambda: sent_to(standin, openid))
        assert "120" in pushed[0] and "来源" in pushed[0]
        issued = httpx.get(f"{standin}/_sent").json()["issued"]
        r = wx.post("/wechat", params=signed(), content=xml(content="结婚登记要带什么材料", openid=openid))
        assert r.text == "success"
        assert "材料" in wait_for(lambda: sent_to(standin, openid)[1:] or None)[0]
        assert httpx.get(f"{standin}/_sent").json()["issued"] == issued, "the access token is cached, not refetched"
    finally:
        wx.settings.wechat_reply_timeout = old


def test_long_reply_is_split_by_bytes_and_the_rest_follows_as_customer_service_messages(wx, standin, monkeypatch):
    from assistant import wechat

    monkeypatch.setattr(wechat, "MAX_BYTES", 300)  # a small limit so an ordinary checklist is "long"
    openid = new_openid()
    first = say(wx, openid, "结婚登记要带什么材料")
    assert first and len(first.encode()) <= 300
    rest = wait_for(lambda: sent_to(standin, openid))
    assert all(len(p.encode()) <= 300 for p in rest)
    whole = re.sub(r"\s", "", first + "".join(rest))
    assert "身份证" in whole and "来源" in whole and "请回复数字选择" in whole


def test_split_reply_counts_bytes_not_characters():
    from assistant.wechat import split_reply

    text = "\n".join(["甲" * 300] * 5)  # 900 bytes a line
    parts = split_reply(text, 2048)
    assert [len(p.encode()) for p in parts] == [1801, 1801, 900]
    one_line = "乙" * 1000  # 3000 bytes and no line break
    parts = split_reply(one_line, 2048)
    assert all(len(p.encode()) <= 2048 for p in parts) and "".join(parts) == one_line


def test_send_text_reaches_the_api_and_long_text_is_split(wx, standin):
    from assistant.wechat import send_text

    openid = new_openid()
    text = "\n".join(f"第{i}条：" + "说明文字" * 40 for i in range(6))  # ~3 KB
    send_text(wx.settings, openid, text)
    got = sent_to(standin, openid)
    assert len(got) >= 2 and all(len(p.encode()) <= 2048 for p in got)
    assert "\n".join(got) == text


# ---------------------------------------------------------------- safe mode (AES)

def test_safe_mode_round_trip(wx):
    from wechatpy.crypto import WeChatCrypto

    crypto = WeChatCrypto(TOKEN, AES_KEY, APPID)
    wx.settings.wechat_encoding_aes_key = AES_KEY
    try:
        openid = new_openid()
        params = signed()
        encrypted = crypto.encrypt_message(xml(content="护照要多少钱", openid=openid).decode(), params["nonce"],
                                           params["timestamp"])
        msg_signature = re.search(r"<MsgSignature><!\[CDATA\[(\w+)\]\]>", encrypted).group(1)
        r = wx.post("/wechat", params={**params, "encrypt_type": "aes", "msg_signature": msg_signature},
                    content=encrypted.encode())
        # Encrypted: none of the answer's words travel in clear (not "120" — a timestamp may hold it).
        assert r.status_code == 200 and "<Encrypt>" in r.text and not re.search(r"[\u4e00-\u9fff]|元", r.text)
        reply_sig = re.search(r"<MsgSignature><!\[CDATA\[(\w+)\]\]>", r.text).group(1)
        ts = re.search(r"<TimeStamp>(\d+)</TimeStamp>", r.text).group(1)
        nonce = re.search(r"<Nonce><!\[CDATA\[(\w+)\]\]>", r.text).group(1)
        plain = crypto.decrypt_message(r.text, reply_sig, ts, nonce)
        assert "120" in plain and f"<ToUserName><![CDATA[{openid}]]></ToUserName>" in plain
        # In safe mode a plaintext message, or one with a forged msg_signature, is refused.
        assert wx.post("/wechat", params=signed(), content=xml(openid=openid)).status_code == 400
        forged = {**params, "encrypt_type": "aes", "msg_signature": "0" * 40}
        assert wx.post("/wechat", params=forged, content=encrypted.encode()).status_code == 403
    finally:
        wx.settings.wechat_encoding_aes_key = ""
