"""Hand-overs: the domain rules on a real database, and the agent API through the real stack."""

from __future__ import annotations

import json
import threading
from urllib.parse import unquote

import httpx
import pytest

from assistant import handoffs as ho
from assistant.db import AuditEntry, Handoff, sessions, upgrade
from assistant.understanding import strip_request_prefix
from tests.conftest import create_staff, login


# ------------------------------------------------------------------ domain

@pytest.fixture()
def db(tmp_path):
    url = f"sqlite:///{tmp_path / 'app.db'}"
    upgrade(url)
    return url


def _queue(url: str, sender: str, matter: str | None = "passport") -> int:
    summary = {"matter": matter, "turns": [{"who": "user", "text": "护照要多少钱"}, {"who": "bot", "text": "120元"}]}
    with sessions(url)() as s:
        h = Handoff(sender=sender, reason="用户要求转人工", matter=matter, summary=json.dumps(summary, ensure_ascii=False))
        s.add(h)
        s.commit()
        return h.id


def _agent(url: str, name: str):
    from assistant.db import StaffUser

    with sessions(url)() as s:
        u = StaffUser(username=name, display_name=name.upper(), password_hash="x", role="agent")
        s.add(u)
        s.commit()
        return u


def test_taking_silences_the_bot_until_closed_and_keeps_the_whole_conversation(db):
    hid, a = _queue(db, "web-1"), _agent(db, "amy")
    S = sessions(db)
    with S() as s:
        assert ho.taken_for(s, "web-1") is None  # waiting: the bot still answers
        ho.take(s, hid, a)
        s.commit()
    with S() as s:
        h = ho.taken_for(s, "web-1")
        assert h is not None and h.id == hid
        assert ho.from_citizen(s, h, "我的护照过期了") == ho.TAKEN_NOTICE
        assert ho.from_citizen(s, h, "还在吗") is None  # only the first message gets the notice
        ho.reply(s, hid, a, "您好，我是人工客服")
        ho.close(s, hid, a, "已告知续办材料")
        s.commit()
    with S() as s:
        assert ho.taken_for(s, "web-1") is None
        conv = ho.conversation(s, hid)
        assert [(m["who"], m["text"]) for m in conv["messages"]][:2] == [("citizen", "护照要多少钱"), ("bot", "120元")]
        whos = [m["who"] for m in conv["messages"][2:]]
        assert whos == ["citizen", "bot", "citizen", "agent", "bot"]
        assert conv["status"] == "closed" and conv["outcome"] == "已告知续办材料"
        assert {e.action for e in s.query(AuditEntry)} == {"handoff.take", "handoff.reply", "handoff.close"}
        updates = ho.citizen_updates(s, "web-1", 0)
        assert updates["handoff"]["status"] == "closed"
        assert any(m["who"] == "agent" and m["author"] == "AMY" for m in updates["messages"])
        last = updates["messages"][-1]["id"]
        assert ho.citizen_updates(s, "web-1", last)["messages"] == []


def test_only_the_holder_writes_and_a_taken_handover_cannot_be_taken_again(db):
    hid, a, b = _queue(db, "web-2"), _agent(db, "amy"), _agent(db, "bob")
    with sessions(db)() as s:
        with pytest.raises(ho.Conflict):
            ho.reply(s, hid, a, "还没接入")
        ho.take(s, hid, a)
        s.commit()
        with pytest.raises(ho.Conflict, match="AMY"):
            ho.take(s, hid, b)
        with pytest.raises(ho.Conflict):
            ho.reply(s, hid, b, "不是我的")
        with pytest.raises(ho.Conflict):
            ho.close(s, hid, b, "不是我的")
        with pytest.raises(ho.NotFound):
            ho.take(s, 9999, a)


def test_a_second_request_from_the_same_citizen_is_folded_into_the_taken_one(db):
    first, second, a = _queue(db, "web-3"), _queue(db, "web-3"), _agent(db, "amy")
    with sessions(db)() as s:
        ho.take(s, first, a)
        s.commit()
        assert s.get(Handoff, second).status == "closed"
        assert [h["id"] for h in ho.queue(s, a)] == [first]


def test_agent_shorthand_is_stripped_but_plain_questions_are_kept():
    assert strip_request_prefix("来电人咨询护照办理材料") == "护照办理材料"
    assert strip_request_prefix("市民问残疾证换领") == "残疾证换领"
    assert strip_request_prefix("群众反映：社保卡丢了怎么补") == "社保卡丢了怎么补"
    assert strip_request_prefix("护照要多少钱") == "护照要多少钱"
    assert strip_request_prefix("市民") == "市民"  # nothing left to ask: keep the text


def test_agent_shorthand_gets_the_citizens_answer(answerer):
    for shorthand, plain in [("来电人咨询护照办理材料", "护照办理材料"), ("市民问残疾证换领", "残疾证换领")]:
        a, b = answerer.run(shorthand), answerer.run(plain)
        assert a.kind == b.kind == "guide" and a.matter == b.matter and a.text == b.text


# ------------------------------------------------------------------ API (real stack)

@pytest.fixture(scope="module")
def agents(stack):
    url = stack.env["BST_DATABASE_URL"]
    return [login(stack.url, *create_staff(url, "agent", display_name=name)) for name in ("坐席甲", "坐席乙")]


def test_two_agents_taking_at_once_exactly_one_wins(stack, agents):
    ids = [_queue(stack.env["BST_DATABASE_URL"], f"race-{i}") for i in range(5)]
    for hid in ids:
        results, barrier = [], threading.Barrier(2)

        def go(client):
            barrier.wait()
            results.append(client.post(f"/api/handoffs/{hid}/take"))

        threads = [threading.Thread(target=go, args=(c,)) for c in agents]
        [t.start() for t in threads]
        [t.join() for t in threads]
        codes = sorted(r.status_code for r in results)
        assert codes == [200, 409], [r.text for r in results]
        loser = next(r for r in results if r.status_code == 409)
        assert "已由" in loser.json()["detail"] and "接入" in loser.json()["detail"]


def test_handover_api_needs_an_agent_login(stack):
    assert httpx.get(f"{stack.url}/api/handoffs").status_code == 401
    assert httpx.post(f"{stack.url}/api/handoffs/1/take").json()["detail"] == "请先登录"
    r = httpx.get(f"{stack.url}/agent", follow_redirects=False)
    assert r.status_code == 303 and unquote(r.headers["location"]).startswith("/login?next=/agent")


def test_agent_reply_reaches_the_citizen_and_the_bot_is_silent_meanwhile(stack, agents):
    a, _ = agents
    sender = "handover-1"  # posted without a session cookie: the bot knows it as api-handover-1
    hid = _queue(stack.env["BST_DATABASE_URL"], f"api-{sender}")
    assert a.post(f"/api/handoffs/{hid}/take").status_code == 200
    r = stack.chat(sender, "护照要多少钱")
    assert [m["text"] for m in r] == [ho.TAKEN_NOTICE]  # no bot answer, only the notice
    assert stack.chat(sender, "还要多久") == []
    assert a.post(f"/api/handoffs/{hid}/messages", json={"text": "您好，请问护照是首次办理吗？"}).status_code == 200
    assert a.post(f"/api/handoffs/{hid}/messages", json={"text": "   "}).status_code == 422
    up = httpx.get(f"{stack.url}/api/chat/updates", params={"sender": sender, "after": 0}).json()
    assert up["handoff"] == {"id": hid, "status": "taken", "agent": "坐席甲"}
    assert [m["who"] for m in up["messages"]] == ["citizen", "bot", "citizen", "agent"]
    closed = a.post(f"/api/handoffs/{hid}/close", json={"outcome": "已解答"}).json()
    assert closed["status"] == "closed" and closed["messages"][-1]["text"] == ho.CLOSED_NOTICE
    assert "120" in " ".join(m.get("text", "") for m in stack.chat(sender, "护照要多少钱"))  # the bot again
