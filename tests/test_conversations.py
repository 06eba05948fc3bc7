"""Conversations as people really have them, through the real stack (/api/chat → Rasa → actions).

Each conversation is a list of turns: what the user types (or the button payload they tap) and
what they must (and must not) see in the reply. A `must` is a list of groups, each a list of
alternatives: the reply shows one alternative of every group. "{date}" in a message is the first
date the previous reply offered (bookable days depend on today's date and the holiday calendar).
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import login, reply_text

STOPPED = ["已退出预约"]
REMINDER = ["继续预约"]
CONVERSATIONS: dict[str, list[tuple[str, list[list[str]], list[str]]]] = {
    # 1. the booking form can always be left, at any step, and nothing is booked
    "stop-at-centre": [
        ("我要预约", [["哪个服务中心"]], []),
        ("算了吧，下次再说", [STOPPED], ["没有识别出"]),
        ("那港澳通行证要多少钱", [["60"]], ["没有识别出", "哪个服务中心"]),
        ("在哪办", [["港澳"]], ["没有识别出", "哪个服务中心"]),
    ],
    "stop-after-district-clears-the-answers": [
        ("帮我约一下", [["哪个服务中心"]], []),
        ("湖里区", [["哪一天"]], []),
        ("不约了", [STOPPED], ["没有识别出"]),
        ("我要预约", [["哪个服务中心"]], ["湖里区行政服务中心"]),  # the district was forgotten
    ],
    "stop-with-xian-bu-ban": [
        ("预约办事", [["哪个服务中心"]], []),
        ("集美区", [["哪一天"]], []),
        ("先不办了", [STOPPED], ["没有识别出"]),
    ],
    "stop-with-tuichu": [("我要预约", [["哪个服务中心"]], []), ("退出", [STOPPED], ["没有识别出"])],
    "stop-with-quxiao": [
        ("我要预约", [["哪个服务中心"]], []),
        ("思明区", [["哪一天"]], []),
        ("取消", [STOPPED], ["没有识别出"]),
        ("查询我的预约", [["没有"]], []),
    ],
    "stop-with-buyongle": [("帮我预约一下", [["哪个服务中心"]], []), ("不用了", [STOPPED], ["没有识别出"])],
    "stop-at-confirmation-books-nothing": [
        ("我要预约", [["哪个服务中心"]], []),
        ("海沧区", [["哪一天"]], []),
        ("{date}", [["时段"]], []),
        ("下午3点", [["姓名"]], []),
        ("王芳", [["手机"]], []),
        ("13600001234", [["请确认"]], []),
        ("不约了", [STOPPED], ["预约成功"]),
        ("查询我的预约", [["没有"]], []),
    ],
    "a-handover-request-leaves-the-form": [
        ("我要预约", [["哪个服务中心"]], []),
        ("转人工", [STOPPED, ["人工"]], ["没有识别出"]),
    ],
    "asking-for-my-bookings-leaves-the-form": [
        ("我要预约", [["哪个服务中心"]], []),
        ("查询我的预约", [["没有待办理的预约"]], ["没有识别出"]),
        ("湖里区", [], ["哪一天"]),  # the form is over: a district is not an answer any more
    ],
    # 2. questions during the form are answered, then one reminder with buttons
    "question-after-district": [
        ("我要预约", [["哪个服务中心"]], []),
        ("思明区", [["哪一天"]], []),
        ("结婚登记要带什么", [["身份证"], REMINDER, ["不约了"]], ["没有识别出"]),
        ("/book_appointment", [["哪一天"]], ["哪个服务中心"]),  # the district was kept
    ],
    "reminder-only-once": [
        ("我要预约", [["哪个服务中心"]], []),
        ("湖里区", [["哪一天"]], []),
        ("护照要多少钱", [["120"], REMINDER], ["没有识别出"]),
        ("那要多久", [["工作日"]], ["继续预约", "没有识别出"]),
    ],
    "district-inside-a-question-is-not-the-centre": [
        ("港澳通行证怎么办", [["港澳"]], []),
        ("我想预约", [["哪个服务中心"]], []),
        ("能在集美办吗", [["集美"], ["港澳"], REMINDER], ["哪一天", "没有识别出"]),
        ("/book_appointment", [["哪个服务中心"]], ["哪一天"]),
    ],
    "fee-question-names-the-matter-under-discussion": [
        ("港澳通行证怎么办", [["港澳"]], []),
        ("我想预约", [["哪个服务中心"]], []),
        ("那要多少钱", [["元"]], ["没有识别出"]),
    ],
    "materials-question-after-district": [
        ("护照怎么办", [["护照"]], []),
        ("我要预约", [["哪个服务中心"]], []),
        ("湖里区", [["哪一天"]], []),
        ("要带什么", [["身份证"], REMINDER], ["没有识别出"]),
    ],
    "greeting-during-the-form": [
        ("我要预约", [["哪个服务中心"]], []),
        ("你好", [["您好"], REMINDER], ["没有识别出"]),
    ],
    "going-on-after-a-question-with-a-date": [
        ("我要预约", [["哪个服务中心"]], []),
        ("同安区", [["哪一天"]], []),
        ("同安区几点上班", [REMINDER], ["没有识别出", "请选择时段"]),
        ("/book_appointment", [["哪一天"]], []),
        ("{date}", [["时段"]], ["没有识别出"]),
    ],
    # 3. asking about booking is a question; asking to book is a request
    "where-to-book-is-a-question": [
        ("在哪里可以预约办事", [["微政务"], ["现在预约"]], ["哪个服务中心"]),
    ],
    "walk-in-numbers-still-exist": [
        ("预约以后还能现场排号吗", [["现场取号"], ["138号"]], ["哪个服务中心", "没有识别出"]),
    ],
    "how-to-book-then-book-now": [
        ("怎么预约", [["微政务"], ["现在预约"]], ["哪个服务中心"]),
        ("/book_appointment", [["哪个服务中心"]], []),
    ],
    "i-want-to-book": [("我想预约", [["哪个服务中心"]], [])],
    "booking-sentence-with-matter-and-date": [
        ("我打算约下周五去办护照", [["哪个服务中心"], ["护照"]], []),
        ("集美区", [["时段", "日期"]], ["集美区行政服务中心办公时间"]),
    ],
    # 4. everything a request says is used; the confirmation names the matter
    "matter-discussed-before-the-form-is-confirmed": [
        ("港澳通行证怎么办", [["港澳"]], []),
        ("我想预约", [["哪个服务中心"]], []),
        ("湖里区", [["哪一天"]], []),
        ("{date}", [["时段"]], []),
        ("上午10点", [["姓名"]], []),
        ("张三", [["手机"]], []),
        ("13800138000", [["往来港澳通行证"], ["138****8000"]], ["未指定", "未说明"]),
        ("确认", [["预约号"], ["往来港澳通行证"]], []),
    ],
    "matter-and-date-in-the-first-sentence": [
        ("我打算约下周五去办护照", [["哪个服务中心"]], []),
        ("集美区", [["时段"]], []),
        ("上午10点", [["姓名"]], []),
        ("李四", [["手机"]], []),
        ("13900001111", [["普通护照"], ["集美区"]], ["未指定", "未说明"]),
    ],
    "no-matter-at-all-is-handled": [
        ("我要预约", [["哪个服务中心"]], []),
        ("翔安区", [["哪一天"]], []),
        ("{date}", [["时段"]], []),
        ("上午9点", [["姓名"]], []),
        ("赵六", [["手机"]], []),
        ("13700001111", [["未说明"]], ["未指定事项"]),
        ("护照", [["普通护照"], ["请确认"]], []),
    ],
    # 5. "我要办X" gives the guide; a complaint needs complaint language
    "i-want-a-marriage-certificate": [
        ("我要办结婚证", [["结婚登记"], ["需要什么材料"]], ["投诉", "转人工处理"]),
        ("需要什么", [["身份证"]], ["抱歉，我暂时没有"]),
    ],
    "i-want-a-social-security-card": [("我要办社保卡", [["社会保障卡"]], ["投诉", "转接人工"])],
    "i-want-to-reissue-my-id-card": [("我要补办身份证", [["补领"]], ["投诉", "转接人工"])],
    "x-zenme-ban": [("居住证怎么办", [["居住证"], ["需要什么材料"]], [])],
    "xiang-ban-ge-x": [("想办个护照", [["护照"], ["120"]], ["投诉"])],
    "real-complaint": [("我要投诉窗口工作人员态度不好", [["投诉"], ["12345"]], [])],
    # 6. small talk has its own answers, never a clause
    "are-you-a-robot": [("你是机器人吗", [["机器人"]], ["不在办事通的服务范围", "来源", "责任单位"])],
    "what-can-you-do": [("你能做什么", [["材料"], ["预约"]], ["责任单位", "来源"])],
    "hello-thanks-bye": [("你好", [["您好"]], []), ("谢谢", [["不客气"]], []), ("再见", [["再见"]], [])],
    "insult": [("你真笨", [["抱歉"]], ["来源", "责任单位"])],
    "who-are-you": [("你是谁", [["办事通"]], ["来源", "责任单位"])],
    # ... but a knowledge question sharing a word with small talk or with booking is answered
    "a-question-with-quxiao-is-not-a-cancellation": [
        ("湖里区的中介服务事项取消了几项", [["中介服务"], ["湖里区"]], ["没有可以取消的预约", "确定要取消"])],
    "a-question-with-shui-is-not-small-talk": [
        ("海沧区的自助服务区是给谁用的", [["自助"], ["海沧"]], ["机器人", "不在办事通的服务范围"])],
    # 7. the matter survives detours
    "matter-survives-leaving-the-form": [
        ("护照要多少钱", [["120"]], []),
        ("我要预约", [["哪个服务中心"]], []),
        ("算了", [STOPPED], []),
        ("那要多久", [["护照"], ["工作日"]], []),
    ],
    "matter-survives-a-greeting": [
        ("港澳通行证要带什么", [["身份证"]], []),
        ("你好", [["您好"]], []),
        ("要多少钱", [["港澳"], ["60"]], []),
    ],
    "matter-survives-a-handover": [
        ("结婚登记要带什么", [["身份证"]], []),
        ("转人工", [["人工"]], []),
        ("能在集美办吗", [["结婚登记"], ["集美"]], []),
    ],
    "matter-survives-a-refusal": [
        ("护照怎么办", [["护照"]], []),
        ("不用了", [["好的"]], []),
        ("要带什么", [["护照"], ["身份证"]], []),
    ],
    "matter-survives-a-form-interruption": [
        ("居住证怎么办", [["居住证"]], []),
        ("我要预约", [["哪个服务中心"]], []),
        ("能在集美办吗", [["居住证"], ["集美"]], ["哪一天"]),
        ("要多久", [["居住证"]], []),
    ],
    # 8. invented matters are refused with 12345; real phrasings keep working
    "alien-residence-permit": [("外星人居住证怎么办", [["没有找到"], ["12345"]], ["居住证申领", "需要什么材料"])],
    "pet-id-card": [("宠物身份证怎么办", [["没有找到"], ["12345"]], ["居民身份证"])],
    "mars-passport": [("火星护照要多少钱", [["12345"]], ["120元"])],
    "my-son-lost-his-id-card": [("我儿子身份证丢了", [["补领"]], ["没有找到"])],
    "old-mans-id-card-expired": [("老人身份证过期了", [["换领"]], ["没有找到"])],
    # correction at the confirmation step: the named answer is asked again, the rest is kept
    "time-is-wrong-at-confirmation": [
        ("我要预约", [["哪个服务中心"]], []),
        ("湖里区", [["哪一天"]], []),
        ("{date}", [["时段"]], []),
        ("上午10点", [["姓名"]], []),
        ("陈晓", [["手机"]], []),
        ("13600005678", [["请确认"], ["改时间"]], []),
        ("时间不对", [["重新选择日期"]], [*STOPPED, "预约成功"]),
        ("{date}", [["时段"]], ["哪个服务中心", "姓名"]),
        ("下午3点", [["请确认"], ["湖里区行政服务中心"], ["陈晓"]], ["没有识别出"]),
        ("确认", [["预约成功"]], []),
    ],
    "centre-is-wrong-at-confirmation": [
        ("帮我约一下", [["哪个服务中心"]], []),
        ("思明区", [["哪一天"]], []),
        ("{date}", [["时段"]], []),
        ("下午", [["姓名"]], []),
        ("林海", [["手机"]], []),
        ("13600005679", [["请确认"], ["思明区行政服务中心"]], []),
        ("服务中心不对", [["重新选择服务中心"]], STOPPED),
        ("集美区", [["时段"]], ["哪一天"]),
        ("下午", [["请确认"], ["集美区行政服务中心"], ["林海"]], ["思明区行政服务中心"]),
    ],
    # traditional characters and typos
    "traditional-booking-and-stop": [("我要預約", [["哪个服务中心"]], []), ("不約了", [STOPPED], ["没有识别出"])],
    "traditional-question": [("結婚登記要帶什麼", [["身份证"]], [])],
}


def _fill(message: str, previous: str) -> str:
    if "{date}" in message:
        day = re.search(r"(\d{1,2})月(\d{1,2})日", previous)
        assert day, f"no date offered in: {previous}"
        return message.replace("{date}", f"{day.group(1)}月{day.group(2)}号")
    return message


@pytest.mark.parametrize("name", list(CONVERSATIONS))
def test_conversation(stack, name):
    previous = ""
    for i, (message, must, must_not) in enumerate(CONVERSATIONS[name]):
        sent = _fill(message, previous)
        text = reply_text(stack.chat(f"conv-{name}", sent))
        where = f"turn {i + 1} {sent!r} got:\n{text}"
        for group in must:
            assert any(alt in text for alt in group), f"expected one of {group}; {where}"
        for bad in must_not:
            assert bad not in text, f"must not show {bad!r}; {where}"
        previous = text


def test_only_complaint_language_queues_a_complaint(stack, staff_user):
    """"我要办结婚证" was once read as a complaint and queued a hand-over; now only words that
    complain do."""
    for i, message in enumerate(("我要办结婚证", "我要办社保卡", "我要补办身份证", "想办个护照")):
        stack.chat(f"conv-queue-{i}", message)
    stack.chat("conv-queue-complaint", "窗口工作人员态度太差了，我要投诉")
    agent = login(stack.url, *staff_user("agent"))  # the queue is for agents only
    queued = {h["sender"]: h for h in agent.get("/api/handoffs").json()}
    assert not [s for s in queued if s.startswith("api-conv-queue-") and s != "api-conv-queue-complaint"]
    assert queued["api-conv-queue-complaint"]["reason"] == "投诉建议"


def test_a_booking_is_found_from_another_chat_by_code_and_last_four_digits(stack):
    """Booked in one chat (say WeChat), asked about in another: the code and the phone number's
    last four digits find it; a wrong last four finds nothing, and says so."""
    turns = [("我要预约", "哪个服务中心"), ("海沧区", "哪一天"), ("{date}", "时段"), ("上午", "姓名"),
             ("黄蓉", "手机"), ("13600004321", "请确认"), ("确认", "预约成功")]
    previous = ""
    for message, expected in turns:
        previous = reply_text(stack.chat("conv-lookup-owner", _fill(message, previous)))
        assert expected in previous, previous
    code = re.search(r"预约号：([A-Z0-9]{8})", previous).group(1)
    other = reply_text(stack.chat("conv-lookup-other", f"查预约 {code} 4321"))
    assert code in other and "海沧区行政服务中心" in other and "136****4321" in other, other
    wrong = reply_text(stack.chat("conv-lookup-guess", f"查预约 {code} 1234"))
    assert "没有找到该预约" in wrong and "海沧" not in wrong, wrong
