"""The real stack over HTTP: Rasa server with the trained model, action server, app."""

import httpx

from tests.conftest import reply_text


def test_health_reports_index_and_both_rasa_processes(stack):
    h = httpx.get(f"{stack.url}/health").json()
    assert h["status"] == "ok" and h["rasa"] is True and h["actions"] is True
    assert h["index_version"].startswith("v")


def test_quancheng_question_lists_matters_and_names_its_source(stack):
    messages = stack.chat("stack-u1", "厦门全城通办有哪些事项？")
    assert isinstance(messages, list) and all("text" in m for m in messages)
    text = reply_text(messages)
    for item in ("婚姻登记", "个体工商户", "二手房抵押登记", "营运车辆年审", "社保卡", "出入境", "公证"):
        assert item in text
    assert "厦府办〔2018〕138号" in text and "一、(一)" in text


def test_greeting_is_answered_by_rasa_response(stack):
    text = reply_text(stack.chat("stack-u2", "你好"))
    assert "办事通" in text


def test_follow_up_question_keeps_the_matter(stack):
    first = reply_text(stack.chat("stack-u3", "办护照要带什么材料"))
    assert "身份证" in first
    second = reply_text(stack.chat("stack-u3", "那要多少钱？"))
    assert "120" in second and "护照" in second


def test_unknown_question_is_declined_with_12345(stack):
    text = reply_text(stack.chat("stack-u4", "帮我订一张去成都的机票"))
    assert "12345" in text or "抱歉" in text
