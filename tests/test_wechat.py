"""The WeChat Official Account protocol as WeChat speaks it: signed GET verification, XML messages."""

import hashlib
import time

from tests.test_api import client  # noqa: F401  (the in-process app fixture)


def signed(token="banshitong", timestamp=None, nonce="n0nce"):
    timestamp = timestamp or str(int(time.time()))
    sig = hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()
    return {"signature": sig, "timestamp": timestamp, "nonce": nonce}


def xml(msg_type="text", content="办护照要多少钱"):
    body = f"<Content><![CDATA[{content}]]></Content>" if msg_type == "text" else "<PicUrl><![CDATA[http://x/y.jpg]]></PicUrl>"
    return (f"<xml><ToUserName><![CDATA[gh_bst]]></ToUserName><FromUserName><![CDATA[oUser123]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[{msg_type}]]></MsgType>{body}"
            f"<MsgId>1234567890</MsgId></xml>").encode()


def test_server_verification_echoes_only_with_a_valid_signature(client):  # noqa: F811
    r = client.get("/wechat", params={**signed(), "echostr": "hello123"})
    assert r.status_code == 200 and r.text == "hello123"
    bad = {**signed(), "signature": "0" * 40, "echostr": "x"}
    assert client.get("/wechat", params=bad).status_code == 403


def test_text_message_gets_an_xml_text_reply_with_the_answer(client):  # noqa: F811
    r = client.post("/wechat", params=signed(), content=xml())
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    assert "<MsgType><![CDATA[text]]></MsgType>" in r.text
    assert "<ToUserName><![CDATA[oUser123]]></ToUserName>" in r.text and "120" in r.text


def test_image_message_is_told_to_send_text(client):  # noqa: F811
    r = client.post("/wechat", params=signed(), content=xml("image"))
    assert r.status_code == 200 and "只支持文字" in r.text


def test_unsigned_or_malformed_posts_are_refused(client):  # noqa: F811
    assert client.post("/wechat", params={**signed(), "signature": "bad"}, content=xml()).status_code == 403
    assert client.post("/wechat", params=signed(), content=b"<xml><oops").status_code == 400
    assert client.post("/wechat", content=xml()).status_code == 422
