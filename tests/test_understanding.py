"""One reading per message (assistant/understanding.Reader), the booking form's corrections
(assistant/booking_form) and the dialogue's precedence (assistant/dialogue), in-process."""

from __future__ import annotations

import datetime as dt

import pytest

from assistant import booking_form as form
from assistant.dialogue import Dialogue, State
from assistant.understanding import Correction


@pytest.fixture(scope="module")
def read(answerer):
    return answerer.read


@pytest.fixture(scope="module")
def dialogue(answerer):
    return Dialogue(answerer)


@pytest.mark.parametrize("message,matter", [
    ("您好 我想问下身份证丢了去哪补", "id-card-reissue"),
    ("哈喽～麻烦问一下港澳通行证续签要多久", "hk-macao-permit"),
    ("早上好，請問護照怎麼辦理", "passport"),
])
def test_a_greeting_and_filler_around_a_question_keep_the_question(read, message, matter):
    r = read(message)
    assert "greeting" in r.kinds and r.matters == (matter,) and r.asks
    assert not r.question.startswith(("您好", "哈喽", "早上好"))


def test_thanks_after_a_question_is_a_part_of_its_own(read):
    r = read("社保卡丢了要先挂失吗 谢谢啦")
    assert {"question", "thanks"} <= r.kinds and r.matters


@pytest.mark.parametrize("message", [
    "结婚证补办要什么 你们这个说不明白 给我转人工",
    "我眼神不好 看不清字 有没有人能直接跟我说说",
    "护照的事我问了三遍了 找个工作人员吧",
])
def test_a_request_for_a_person_anywhere_in_the_message(read, message):
    assert "human" in read(message).requests


@pytest.mark.parametrize("message", ["人工智能能办护照吗", "有人在吗", "工作人员态度好吗"])
def test_words_that_only_look_like_a_person_request(read, message):
    r = read(message)
    assert "human" not in r.requests or "态度" in message  # "工作人员" named in a question is still a person


def test_several_matters_and_a_comparison(read):
    r = read("港澳通行证跟护照 哪个便宜")
    assert set(r.matters) == {"hk-macao-permit", "passport"} and r.comparison == "fee"
    r = read("结婚跟离婚登记分别在哪办")
    assert r.matters == ("marriage-registration", "divorce-registration") and r.comparison == "where"


def test_a_shared_predicate_resolves_each_category(read):
    r = read("身份证和社保卡都丢了 咋整")
    assert r.matters == ("id-card-reissue", "social-security-card-loss-report")


def test_homophone_typos_name_the_matter(read):
    assert read("身分证丢了").matters == ("id-card-reissue",)


@pytest.mark.parametrize("message,back", [("回到刚才那个 收费吗", "earlier"), ("第一个要多久", "first"), ("那要带啥", "last")])
def test_follow_ups_point_back(read, message, back):
    assert read(message).back_ref == back


def test_the_person_concerned(read):
    r = read("我爸身份证到期了 他能不能让我代办")
    assert r.person == "爸爸" and r.matters == ("id-card-renewal",) and "conditions" in r.qtypes


@pytest.mark.parametrize("message,slot,value", [
    ("不好意思 手机号输错了 应该是13712345678", "booking_phone", "13712345678"),
    ("哎呀点错了 我要去湖里的", "booking_centre", "湖里区"),
    ("名字写错了 应该是王小明", "booking_name", "王小明"),
    ("时间不对", "booking_date", None),
    ("不对", None, None),
])
def test_corrections(read, message, slot, value):
    assert read(message).correction == Correction(slot, value)


def test_a_correction_replaces_that_answer_and_what_depends_on_it():
    filled = {"booking_centre": "思明区", "booking_date": "2026-12-03", "booking_slot": "09:00-10:00",
              "booking_name": "李四", "booking_phone": "13800000000", "booking_confirmed": None}
    assert form.changes(Correction("booking_phone", "13912345678"), filled, "booking_confirmed") == \
        {"booking_phone": "13912345678", "booking_confirmed": None}
    assert form.changes(Correction("booking_centre", "海沧区"), filled, "booking_confirmed") == \
        {"booking_centre": "海沧区", "booking_slot": None, "booking_confirmed": None}
    # A bare 不对 takes back the last answer given before the open question.
    partial = {**filled, "booking_slot": None, "booking_name": None, "booking_phone": None}
    assert form.reopened(form.changes(Correction(None, None), partial, "booking_slot")) == "booking_date"


def test_dates_in_corrections_are_read_relative_to_today():
    c = form.correction_of("日期错了 改成12月10号", dt.date(2026, 12, 1))
    assert c == Correction("booking_date", "2026-12-10")


def test_materials_the_person_has(read):
    r = read("我手上有户口本跟身份证 想办护照 还差啥不")
    assert set(r.has_materials) == {"户口本", "身份证"} and r.matters == ("passport",)


# ---------------------------------------------------------------- the dialogue's precedence
def steps(dialogue, read, message, state=None, intent=None):
    return dialogue.run(read(message), state or State(), intent).steps


def test_a_person_is_asked_for_in_passing_hands_over_even_with_a_question(dialogue, read):
    s = steps(dialogue, read, "居住证到期了咋续 说半天不清楚 我要人工", intent="ask_process")
    assert [x.kind for x in s] == ["handoff"]


def test_greeting_then_question_gets_the_answer_with_a_short_greeting(dialogue, read):
    (s,) = steps(dialogue, read, "你好呀 护照多少钱", intent="greet")
    assert s.kind == "answer" and s.answer.matter == "passport" and "120" in s.answer.text
    assert s.answer.text.startswith("您好") and "办事通" not in s.answer.text


def test_a_knowledge_question_is_not_small_talk_or_a_booking(dialogue, read):
    for intent in ("bot_challenge", "book_appointment", "affirm", "ask_capabilities"):
        (s,) = steps(dialogue, read, "审批特殊环节在2017年基础上再取消多少", intent=intent)
        assert s.kind == "answer" and s.answer.kind in ("policy", "guide"), intent


def test_small_talk_addressed_to_the_bot_stays_small_talk(dialogue, read):
    (s,) = steps(dialogue, read, "你到底是不是机器人", intent="bot_challenge")
    assert s.kind == "respond" and s.response == "utter_iamabot"


def test_a_booking_verb_books_and_a_question_about_booking_does_not(dialogue, read):
    assert [x.kind for x in steps(dialogue, read, "帮我约个号 办护照", intent="book_appointment")] == ["book"]
    kinds = [x.kind for x in steps(dialogue, read, "护照需要提前预约吗", intent="book_appointment")]
    assert kinds == ["answer"]


def test_misses_never_hand_over_unasked(dialogue, read):
    state = State(misses=3)
    (s,) = steps(dialogue, read, "asdkjh qwe", state, intent="nlu_fallback")
    assert s.kind == "answer" and s.answer.kind == "fallback"
    assert any(b.payload == "/human_handoff" for b in s.answer.buttons)


def test_a_follow_up_in_a_district_answers_about_the_matter_there(dialogue, read):
    state = State(matter="unemployment-registration", qtype="materials", topics=("unemployment-registration",))
    (s,) = steps(dialogue, read, "同安可以办不", state, intent="ask_where")
    assert s.answer.matter == "unemployment-registration" and "同安区" in s.answer.text
    assert "同安区行政服务中心位于" not in s.answer.text


def test_back_reference_to_the_earlier_matter(dialogue, read):
    state = State(matter="social-security-card-loss-report", qtype="general",
                  topics=("marriage-registration", "social-security-card-loss-report"))
    (s,) = steps(dialogue, read, "回到刚才那个 收费不", state, intent="ask_fee")
    assert s.answer.matter == "marriage-registration" and s.answer.qtype == "fee"


def test_materials_listed_get_a_pre_check(dialogue, read):
    (s,) = steps(dialogue, read, "我带了身份证跟照片 离婚登记还缺什么", intent="ask_materials")
    assert s.kind == "check_materials" and s.matter == "divorce-registration"


def test_a_correction_while_booking_goes_to_the_form(dialogue, read):
    (s,) = steps(dialogue, read, "搞错了 电话是13666666666", State(booking=True), intent="inform")
    assert s.kind == "correct_booking"


def test_the_new_value_is_the_one_after_the_correction_verb():
    c = form.correction_of("周二我要上班 改成周四吧", dt.date(2026, 12, 1))  # a Tuesday
    assert c == Correction("booking_date", "2026-12-03")


def test_digits_inside_a_phone_number_name_no_matter(read):
    r = read("13812345678")
    assert r.matters == () and r.invented is None and r.phone == "13812345678"


def test_a_bare_booking_line_naming_a_matter_books(read):
    assert "book" in read("预约办不动产抵押登记").requests
    assert "book" not in read("预约要带什么").requests


@pytest.mark.parametrize("message,matter", [
    ("残联办残疾证是什么流程", "disability-certificate"),      # the issuer before an alias that starts with 办
    ("房产继承过户要啥材料", "property-transfer-registration"),  # the object before 继承过户
    ("自由职业者医保怎么交", "medical-insurance-enrolment"),     # who asks, before a 常见问法
    ("社保卡遗失了怎么办理挂失手续", "social-security-card-loss-report"),  # 挂失 is in one member's name
    ("小孩子的医保在哪里参保", "medical-insurance-enrolment"),
    ("回老家看病厦门医保怎么备案", "medical-treatment-elsewhere-filing"),
])
def test_words_around_a_known_name_do_not_make_it_another_thing(read, message, matter):
    r = read(message)
    assert r.matters == (matter,) and r.invented is None, (r.matters, r.invented, r.category)


@pytest.mark.parametrize("message", ["开奶茶店要办什么许可证", "注册个体工商户当天能拿到执照吗", "卖预包装零食要许可证还是备案就行",
                                     "电子版社保卡在哪个APP激活"])
def test_a_question_about_a_kind_of_licence_is_not_an_unknown_matter(read, message):
    assert read(message).invented is None


@pytest.mark.parametrize("message,invented", [("我想申请育儿补贴", "育儿补贴"), ("办个日本签证要什么", "日本签证"),
                                              ("外星人居住证怎么办", "外星人居住证"), ("二次元身份证", "二次元身份证")])
def test_a_name_no_source_knows_is_said_to_be_unknown(read, message, invented):
    r = read(message)
    assert r.invented == invented and not r.matters


def test_a_licence_question_without_a_name_is_answered_from_the_guides(answerer):
    a = answerer.run("开奶茶店要办什么许可证")
    assert a.kind == "guide" and a.matter == "food-business-licence", (a.kind, a.matter, a.text[:80])


@pytest.mark.parametrize("message,measure", [("港澳通行证和护照哪个办得快一点", "time"), ("结婚登记跟离婚登记 哪个要花钱", "fee"),
                                             ("个体户和开公司 哪个材料少", "materials"), ("护照 港澳通行证 台湾通行证 哪个最贵啊", "fee")])
def test_which_one_is_faster_cheaper_or_needs_less_is_a_comparison_by_that_measure(read, message, measure):
    r = read(message)
    assert r.comparison == measure and len(r.matters) >= 2


def test_which_window_asks_where_not_a_comparison(read):
    assert read("护照在哪个窗口交钱").comparison is None


@pytest.mark.parametrize("message,asked_for", [
    ("明天的预约去不了了 取消掉吧", "cancel_booking"), ("我约的那个号不要了 帮我退掉", "cancel_booking"),
    ("看看我有没有预约成功", "query_booking"), ("我的预约号是多少来着", "query_booking"),
    ("先不预约了", "stop"), ("我要退出这个预约", "stop"),
    ("给我妈约个号 换身份证", "book"), ("我要取个号 思明区", "book"),
])
def test_what_people_ask_of_their_booking(read, message, asked_for):
    assert asked_for in read(message).requests


@pytest.mark.parametrize("message", ["离婚要不要预约啊", "护照是人工审核的吗 审多少天", "你是真人还是AI啊",
                                     "12345投诉一般多久有回复", "我不是要投诉 就问下过户的税费怎么算"])
def test_questions_about_booking_people_or_complaints_request_nothing(read, message):
    assert not read(message).requests & {"book", "human", "complaint"}


def test_a_phone_number_ending_in_88_is_not_a_goodbye(read):
    assert "goodbye" not in read("电话不对 换成15060123388").kinds


@pytest.mark.parametrize("message,greeting_only", [("在么在么", True), ("你好呀 在不", True),
                                                   ("在不同区能办吗", False), ("早点去办可以吗", False)])
def test_are_you_there_is_a_greeting_but_words_starting_alike_are_not(read, message, greeting_only):
    r = read(message)
    assert (r.kinds <= {"greeting", "filler"}) == greeting_only, r.parts


def test_a_week_is_not_a_goodbye(read):
    r = read("身份证补办要等一个礼拜吗")
    assert "goodbye" not in r.kinds and r.question.endswith("礼拜吗")
