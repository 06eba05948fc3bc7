"""The HTTP edge, in-process (no Rasa running: /api/chat answers in degraded mode)."""

import pytest
from fastapi.testclient import TestClient

import server
from tests.conftest import create_staff, reply_text


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """The in-process app, logged in as an admin (the hotline endpoints need a staff login)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("BST_RASA_URL", "http://127.0.0.1:9")  # nothing listens: exercise the fallback path
    db = f"sqlite:///{tmp_path_factory.mktemp('db') / 'app.db'}"
    mp.setenv("BST_DATABASE_URL", db)
    mp.setenv("BST_WECHAT_TOKEN", "banshitong")
    server.get_settings.cache_clear()
    user, password = create_staff(db, "admin")
    with TestClient(server.app) as c:
        assert c.post("/api/auth/login", json={"username": user, "password": password}).status_code == 200
        yield c
    mp.undo()
    server.get_settings.cache_clear()


def test_search_returns_ranked_passages_with_their_metadata(client):
    r = client.get("/api/search", params={"q": "全城通办有哪些事项", "k": 5})
    assert r.status_code == 200
    hits = r.json()["hits"]
    assert len(hits) == 5
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    for key in ("id", "text", "title", "doc_number", "issuer", "date", "clause", "score"):
        assert key in hits[0]
    assert all("全城通办" in h["text"] + h["title"] for h in hits[:3])
    assert len({h["id"].rsplit("-", 1)[0] for h in hits if h["id"].startswith("guide-")}) == sum(
        h["id"].startswith("guide-") for h in hits), "one hit per guide"


def test_search_finds_the_policy_clause_with_its_label(client):
    hits = client.get("/api/search", params={"q": "靠前联办 银行 抵押登记", "k": 5}).json()["hits"]
    assert any(h["doc_number"] == "厦府办〔2018〕138号" and h["clause"] == "一、(五)" for h in hits[:3])


@pytest.mark.parametrize("body,fragment", [
    ({"message": "你好"}, "发送者(sender)：缺少该字段"),
    ({"sender": "u", "message": 12}, "消息(message)：应为文字"),
    ({"sender": ["x"], "message": "hi"}, "发送者(sender)：应为文字"),
])
def test_bad_chat_requests_get_a_clear_4xx(client, body, fragment):
    r = client.post("/api/chat", json=body)
    assert r.status_code == 422 and fragment in r.json()["detail"]


def test_empty_message_is_a_4xx_that_still_reads_as_a_chat_reply(client):
    r = client.post("/api/chat", json={"sender": "u", "message": "   "})
    assert r.status_code == 422
    assert "请输入" in reply_text(r.json())


def test_one_megabyte_body_is_refused_with_413(client):
    r = client.post("/api/chat", content=b'{"sender":"u","message":"' + b"a" * 1_000_000 + b'"}',
                    headers={"content-type": "application/json"})
    assert r.status_code == 413 and "过大" in r.json()["detail"]


def test_malformed_json_is_a_4xx(client):
    r = client.post("/api/chat", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422


def test_search_parameters_are_checked(client):
    assert client.get("/api/search").status_code == 422
    assert client.get("/api/search", params={"q": "护照", "k": 0}).status_code == 422
    assert client.get("/api/search", params={"q": "护照", "k": "abc"}).status_code == 422


def test_chat_still_answers_when_the_dialogue_server_is_down(client):
    r = client.post("/api/chat", json={"sender": "u9", "message": "办护照要多少钱"})
    assert r.status_code == 200 and "120" in reply_text(r.json())
    # The page reads the reply payload in degraded mode too: what it is, its guide and its source.
    reply = r.json()[0]["reply"]
    assert reply["kind"] == "guide" and reply["matter"] == "passport"
    assert {"type": "guide", "id": "passport"}.items() <= reply["sources"][0].items()
    assert r.json()[0]["guide_id"] == "passport"


def test_long_message_with_the_question_inside_is_answered(client):
    noise = "今天天气不错。" * 300
    r = client.post("/api/chat", json={"sender": "u8", "message": noise + "请问办护照要多少钱？" + "谢谢。" * 100})
    assert r.status_code == 200 and "120" in reply_text(r.json())


def test_admin_endpoints_need_an_admin_login(client):
    assert TestClient(server.app).get("/api/admin/versions").status_code == 401
    r = client.get("/api/admin/versions")
    assert r.status_code == 200 and r.json()["current"]


def test_openapi_docs_are_served(client):
    assert client.get("/docs").status_code == 200
    assert "/api/chat" in client.get("/openapi.json").json()["paths"]
