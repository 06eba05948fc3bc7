"""The dialogue through the real Rasa server and action server, over HTTP only."""

import re

from tests.conftest import login, reply_text


def queued(stack, staff_user) -> list[dict]:
    """The hand-over queue as an agent sees it (it needs a login)."""
    r = login(stack.url, *staff_user("agent")).get("/api/handoffs")
    assert r.status_code == 200
    return r.json()


def test_context_follow_ups_answer_about_the_right_matter(stack):
    s = "dlg-ctx"
    assert "身份证" in reply_text(stack.chat(s, "港澳通行证要带什么材料")) 
    t = reply_text(stack.chat(s, "那要多久？"))
    assert "港澳通行证" in t and "工作日" in t
    stack.chat(s, "谢谢")
    t = reply_text(stack.chat(s, "要多少钱"))
    assert "港澳通行证" in t and "60" in t  # thanks did not lose the matter
    t = reply_text(stack.chat(s, "那护照呢？"))
    assert "护照" in t and "120" in t  # a new matter, the same question


def test_related_matters_asked_together_are_answered_each_and_not_mixed(stack):
    messages = stack.chat("dlg-mix", "离婚和结婚登记都要什么")
    lines = reply_text(messages).splitlines()
    divorce = next(x for x in lines if x.startswith("【离婚登记】"))
    marriage = next(x for x in lines if x.startswith("【结婚登记】"))
    assert "离婚协议" in divorce and "声明" not in divorce and "声明" in marriage
    assert messages[0]["reply"]["matters"] == ["divorce-registration", "marriage-registration"]


def test_materials_pre_check_says_what_is_missing(stack):
    t = reply_text(stack.chat("dlg-mat", "结婚登记我带了身份证和户口本，够吗？"))
    assert "还缺" in t and "照片" in t and "声明" in t


def test_handover_queues_the_conversation_with_a_summary(stack, staff_user):
    s = "dlg-human"
    stack.chat(s, "护照要多少钱")
    t = reply_text(stack.chat(s, "转人工"))
    assert "12345" in t
    mine = [h for h in queued(stack, staff_user) if h["sender"] == f"api-{s}"]
    assert mine and mine[0]["matter"] == "passport"
    assert any("护照要多少钱" in turn["text"] for turn in mine[0]["summary"]["turns"])


def test_complaint_explains_how_it_is_handled(stack):
    t = reply_text(stack.chat("dlg-complain", "我要投诉窗口工作人员态度不好"))
    assert "12345" in t and "投诉" in t


def test_misses_in_a_row_offer_a_person_but_never_hand_over_unasked(stack, staff_user):
    s = "dlg-lowconf"
    stack.chat(s, "火星移民证怎么办理")
    messages = stack.chat(s, "木星户口怎么迁")
    assert "转人工" in [b["title"] for m in messages for b in m.get("buttons") or []]
    assert not any(h["sender"] == f"api-{s}" for h in queued(stack, staff_user))
    # Asked for, the person comes.
    stack.chat(s, "转人工")
    assert any(h["sender"] == f"api-{s}" for h in queued(stack, staff_user))


def test_nonexistent_matter_gets_no_checklist(stack):
    t = reply_text(stack.chat("dlg-mars", "火星移民证怎么办"))
    assert "材料" not in t and ("12345" in t or "抱歉" in t)


def _book(stack, s):
    """Walks the booking form one question at a time, as the release evaluation does."""
    t = reply_text(stack.chat(s, "我要预约办事"))
    assert "哪个服务中心" in t
    t = reply_text(stack.chat(s, "湖里区"))
    assert "哪一天" in t
    day = re.search(r"(\d{1,2})月(\d{1,2})日", t)  # the first offered open day
    t = reply_text(stack.chat(s, f"{day.group(1)}月{day.group(2)}号"))
    assert "时段" in t
    t = reply_text(stack.chat(s, "上午10点"))
    assert "姓名" in t
    t = reply_text(stack.chat(s, "张三"))
    assert "手机" in t
    t = reply_text(stack.chat(s, "1380013800"))  # one digit short
    assert "11位" in t
    t = reply_text(stack.chat(s, "13800138000"))
    assert "确认" in t and "138****8000" in t and "湖里区" in t
    t = reply_text(stack.chat(s, "确认"))
    code = re.search(r"预约号[：:]\s*([A-Z0-9]{8})", t)
    assert code, t
    return code.group(1)


def test_book_query_and_cancel_an_appointment(stack):
    s = "dlg-book"
    code = _book(stack, s)
    t = reply_text(stack.chat(s, "查询我的预约"))
    assert code in t and "10:00-11:00" in t
    t = reply_text(stack.chat(s, "取消预约"))
    assert code in t and "确定" in t
    t = reply_text(stack.chat(s, "确认"))
    assert "已取消" in t
    assert "没有" in reply_text(stack.chat(s, "查询我的预约"))
    assert "13800138000" not in stack.log.read_text(errors="replace")  # logs never hold a full number


def test_several_answers_in_one_message_and_a_past_date(stack):
    s = "dlg-multi"
    stack.chat(s, "预约")
    t = reply_text(stack.chat(s, "集美区，昨天上午"))
    assert "已过" in t  # the past date is refused, with open dates offered
    t = reply_text(stack.chat(s, "后天下午3点"))
    assert "姓名" in t or "休息日" in t  # either accepted, or refused because it is a closed day
    stack.chat(s, "取消预约")


def test_bookings_survive_a_restart_of_every_process(stack, stack_crashes):
    s = "dlg-restart"
    code = _book(stack, s)
    stack_crashes.take()  # nothing crashed while booking
    stack.stop()
    # Stopping on purpose: sanic's worker manager may log its broken pipe to the killed workers.
    # That, and only that, is allowed while the processes are stopped.
    shutdown = [c for c in stack_crashes.take() if "BrokenPipeError" not in c and "while trying to serve" not in c]
    assert not shutdown, shutdown
    stack.start()
    assert code in reply_text(stack.chat(s, "查询我的预约"))
