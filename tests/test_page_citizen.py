"""The citizen's pages in a real browser (Debian's Chromium, phone-sized), against the real stack:
a question with its source, buttons, the guide page, history across reloads, 「新对话」, a booking
through the buttons, 👎 with a reason, the offline banner; 长辈模式 (sizes measured), keyboard-only use,
「展开全部」 and the source line, printing. Screenshots go to var/screenshots/."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import uuid

import httpx
import pytest
from playwright.sync_api import expect
from sqlalchemy import create_engine, text

from tests.browser import ROOT, screenshot
from tests.conftest import PORTS

OFFLINE_PORT = PORTS["app"] + 70  # a second app process, only for the offline test


def ask(page, question: str):
    page.get_by_label("输入您的问题").fill(question)
    page.get_by_role("button", name="发送").click()


def last_bot(page):
    return page.locator(".msg.bot:not(.intro)").last


@pytest.fixture(scope="module")
def warm(stack):
    # The action server loads its engine on the first question (a minute on busy shared cores).
    httpx.post(f"{stack.url}/api/chat", json={"sender": "page-warmup", "message": "护照要多少钱"}, timeout=300)
    return stack


@pytest.fixture
def chat(warm, phone):
    stack = warm
    page = phone.new_page()
    page.goto(stack.url + "/")
    expect(page.get_by_role("heading", name="办事通")).to_be_visible()
    return page


def db(stack_env):
    return create_engine(stack_env["BST_DATABASE_URL"])


def test_question_answer_with_source_checklist_button_and_guide_page(chat):
    page = chat
    ask(page, "结婚登记要带什么材料")
    answer = last_bot(page)
    expect(answer.locator(".source")).to_contain_text("来源：办事指南《结婚登记》")
    # The 一次性告知 list can be ticked off.
    boxes = answer.get_by_role("checkbox")
    expect(boxes.first).to_be_visible()
    assert boxes.count() >= 3
    boxes.first.check()
    expect(boxes.first).to_be_checked()
    screenshot(page, "chat-phone.png")

    # A button is sent as the next message, its title shown as the citizen's bubble.
    answer.get_by_role("button", name="要多少钱").click()
    expect(page.locator(".msg.user").last).to_have_text("要多少钱")
    expect(last_bot(page)).to_contain_text("收费")

    # The answer links to its guide page: the whole 办事指南, printable checklist included.
    last_bot(page).get_by_role("link", name="查看办事指南").click()
    expect(page).to_have_url(re.compile(r"/guides/marriage-registration$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("结婚登记")
    expect(page.get_by_role("heading", name=re.compile("一次性告知"))).to_be_visible()
    for section in ("办理时限与收费", "在哪里办", "如何预约", "政策依据"):
        expect(page.get_by_role("heading", name=re.compile(section))).to_be_visible()
    expect(page.locator(".check").first).to_have_text("待核实")
    expect(page.get_by_role("button", name="打印材料清单")).to_be_visible()
    screenshot(page, "guide-phone.png")

    # Back in the chat the ticked item is still ticked.
    page.go_back()
    expect(page.locator(".msg.bot:not(.intro)").first.get_by_role("checkbox").first).to_be_checked()


def test_history_survives_a_reload_and_new_chat_starts_over(chat, phone):
    page = chat
    ask(page, "护照要多少钱")
    expect(last_bot(page)).to_contain_text("120")
    cookie = next(c["value"] for c in phone.cookies() if c["name"] == "bst_citizen")
    page.reload()
    expect(page.locator(".msg.user")).to_have_text(["护照要多少钱"])
    expect(last_bot(page)).to_contain_text("120")

    page.get_by_role("button", name=re.compile("新对话")).click()
    expect(page.locator(".msg.user")).to_have_count(0)
    assert next(c["value"] for c in phone.cookies() if c["name"] == "bst_citizen") != cookie
    page.reload()
    expect(page.locator(".msg.user")).to_have_count(0)
    # A new conversation: a follow-up without a matter is not answered about 护照 any more.
    ask(page, "那要多久")
    expect(last_bot(page)).not_to_contain_text("护照")


def test_booking_through_the_buttons(chat, stack_env):
    page = chat
    page.get_by_role("button", name="预约办事").first.click()
    expect(last_bot(page)).to_contain_text("哪个服务中心")
    last_bot(page).get_by_role("button", name="湖里区").click()
    expect(last_bot(page)).to_contain_text("哪一天")
    last_bot(page).locator(".option").first.click()
    expect(last_bot(page)).to_contain_text("时段")
    last_bot(page).locator(".option").first.click()
    expect(last_bot(page)).to_contain_text("姓名")
    ask(page, "李四")
    expect(last_bot(page)).to_contain_text("手机")
    ask(page, "13900139000")
    expect(last_bot(page)).to_contain_text("请确认预约信息")
    last_bot(page).get_by_role("button", name="确认预约").click()
    expect(last_bot(page)).to_contain_text("预约成功")
    code = re.search(r"预约号：(\w+)", last_bot(page).inner_text()).group(1)
    with db(stack_env).connect() as c:
        row = c.execute(text("SELECT sender, name FROM bookings WHERE code = :c"), {"c": code}).one()
    assert row.sender.startswith("web-") and row.name == "李四"
    # The turn is recorded without the full phone number.
    with db(stack_env).connect() as c:
        questions = c.execute(text("SELECT question FROM chat_turns WHERE sender = :s"), {"s": row.sender}).scalars().all()
    assert "139****9000" in questions and "13900139000" not in questions


def test_thumbs_down_with_a_reason_is_stored_with_question_answer_and_version(chat, stack, stack_env):
    page = chat
    ask(page, "护照要多少钱")
    answer = last_bot(page)
    expect(answer).to_contain_text("120")
    answer.get_by_role("button", name="没有帮助").click()
    reason = f"想知道加急费用（{uuid.uuid4().hex[:6]}）"
    answer.get_by_label("哪里不满意").fill(reason)
    answer.get_by_role("button", name="提交原因").click()
    expect(answer.locator(".thanks")).to_have_text("感谢您的反馈")
    expect(answer.get_by_role("button", name="没有帮助")).to_have_attribute("aria-pressed", "true")
    with db(stack_env).connect() as c:
        fb = c.execute(text("SELECT question, answer, index_version, vote, reason FROM feedback "
                            "WHERE reason = :r"), {"r": reason}).one()
    version = httpx.get(f"{stack.url}/health").json()["index_version"]
    assert fb.vote == -1 and fb.question == "护照要多少钱" and "120" in fb.answer and fb.index_version == version


def test_feedback_only_on_ones_own_answers(stack):
    me, other = httpx.Client(base_url=stack.url, timeout=60), httpx.Client(base_url=stack.url, timeout=60)
    me.get("/"), other.get("/")
    turn = me.post("/api/chat", json={"sender": "web", "message": "护照要多少钱"}).json()[-1]["turn_id"]
    assert other.post("/api/feedback", json={"turn_id": turn, "vote": -1}).status_code == 404
    assert httpx.post(f"{stack.url}/api/feedback", json={"turn_id": turn, "vote": 1}).status_code == 403
    assert me.post("/api/feedback", json={"turn_id": turn, "vote": 2}).status_code == 422
    assert me.post("/api/feedback", json={"turn_id": turn, "vote": 1}).status_code == 200


def test_page_is_accessible_and_has_no_inline_script(chat):
    page = chat
    assert page.locator("#main").get_attribute("aria-live") == "polite"
    html = page.content()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script"
    assert not re.search(r"\son[a-z]+=", html), "inline event handler"
    unnamed = page.evaluate("""() => [...document.querySelectorAll('button, a, textarea, input')]
        .filter(e => !e.hidden && !(e.getAttribute('aria-label') || e.textContent.trim() || (e.labels && e.labels.length)))
        .map(e => e.outerHTML)""")
    assert unnamed == []
    # Keyboard only: focus the input, type, Enter sends.
    page.get_by_label("输入您的问题").focus()
    page.keyboard.type("护照要多少钱")
    page.keyboard.press("Enter")
    expect(last_bot(page)).to_contain_text("120")
    expect(page.locator("#handoff")).to_have_accessible_name(re.compile("转人工"))


# ---------------------------------------------------------------- 长辈模式, keyboard, 「展开全部」, print

# Every control a finger must hit: buttons, links, and the checklist rows (box + label).
TARGETS = """() => [...document.querySelectorAll('button, a[href], .checklist li, .materials li, input[type=search], textarea')]
    .filter(e => !e.closest('.skip') && !e.classList.contains('skip') && e.getClientRects().length
                 && getComputedStyle(e).visibility !== 'hidden')
    .map(e => { const r = e.getBoundingClientRect();
                return {what: (e.getAttribute('aria-label') || e.textContent).trim().slice(0, 20), w: r.width, h: r.height}; })"""
FONT = "e => parseFloat(getComputedStyle(e).fontSize)"


def in_viewport(page, locator) -> bool:
    box = locator.bounding_box()
    size = page.viewport_size
    return bool(box) and box["y"] >= 0 and box["y"] + box["height"] <= size["height"] and box["x"] >= 0 \
        and box["x"] + box["width"] <= size["width"]


def test_elder_mode_large_text_large_targets_fewer_buttons_and_remembered(chat, phone):
    page = chat
    ask(page, "结婚登记要带什么材料")
    answer = last_bot(page)
    expect(answer.locator(".source")).to_be_visible()
    standard_options = answer.locator(".option:visible").count()
    assert standard_options >= 3
    assert answer.locator(".bubble p").first.evaluate(FONT) < 20
    screenshot(page, "chat-standard-phone.png")

    switch = page.get_by_role("button", name=re.compile("长辈模式"))
    expect(switch).to_have_attribute("aria-pressed", "false")
    switch.click()
    expect(page.locator("html")).to_have_class(re.compile(r"\belder\b"))
    expect(page.get_by_role("button", name=re.compile("长辈模式已开启"))).to_have_attribute("aria-pressed", "true")
    for node in (answer.locator(".bubble p").first, answer.locator(".checklist label").first, answer.locator(".source"),
                 page.get_by_label("输入您的问题")):
        assert node.evaluate(FONT) >= 20
    small = [t for t in page.evaluate(TARGETS) if t["w"] < 44 or t["h"] < 44]
    assert small == [], small
    # Fewer buttons under an answer: the two most useful next steps.
    assert answer.locator(".option:visible").count() == 2 < standard_options
    # 「转人工」 and 12345 on screen, without scrolling, whatever the conversation's length.
    assert in_viewport(page, page.get_by_role("button", name=re.compile("转人工")))
    tel = page.get_by_role("link", name="12345")
    assert tel.get_attribute("href") == "tel:12345" and in_viewport(page, tel)
    screenshot(page, "chat-elder-phone.png")

    page.reload()  # remembered
    expect(page.locator("html")).to_have_class(re.compile(r"\belder\b"))
    page.goto(page.url.rstrip("/") + "/guides/marriage-registration")  # and on the guide pages too
    expect(page.locator("html")).to_have_class(re.compile(r"\belder\b"))
    assert page.locator("main p, main li").first.evaluate(FONT) >= 20
    small = [t for t in page.evaluate(TARGETS) if t["w"] < 44 or t["h"] < 44]
    assert small == [], small
    screenshot(page, "guide-elder-phone")
    page.get_by_role("button", name=re.compile("长辈模式已开启")).click()
    expect(page.locator("html")).not_to_have_class(re.compile(r"\belder\b"))
    assert page.locator("main p, main li").first.evaluate(FONT) < 20
    screenshot(page, "guide-standard-phone")
    page.goto(page.url.split("/guides")[0] + "/guides")
    expect(page.locator("html")).not_to_have_class(re.compile(r"\belder\b"))
    screenshot(page, "guides-standard-phone")
    page.get_by_role("button", name="长辈模式").click()
    small = [t for t in page.evaluate(TARGETS) if t["w"] < 44 or t["h"] < 44]
    assert small == [], small
    screenshot(page, "guides-elder-phone")


def test_keyboard_only_tab_order_visible_focus_enter_sends(chat):
    page = chat
    names = []
    for _ in range(10):
        page.keyboard.press("Tab")
        focused = page.evaluate("""() => { const e = document.activeElement, s = getComputedStyle(e);
            return {name: (e.getAttribute('aria-label') || e.textContent || e.placeholder || '').trim(),
                    tag: e.tagName, outline: s.outlineStyle, width: parseFloat(s.outlineWidth)}; }""")
        assert focused["outline"] != "none" and focused["width"] >= 2, f"no visible focus on {focused}"
        names.append(focused["name"] if focused["tag"] != "TEXTAREA" else "输入框")
    expected = ["跳到主要内容", "新对话", "长辈模式", "办事指南", "结婚登记要带什么材料", "护照要多少钱", "预约办事",
                "转人工", "输入框", "发送"]
    assert len(names) == len(expected) and all(n.startswith(e) for n, e in zip(names, expected)), names
    # From the input: type, Enter sends; focus stays in the input for the next question.
    page.get_by_label("输入您的问题").focus()
    page.keyboard.type("结婚登记要带什么材料")
    page.keyboard.press("Enter")
    expect(last_bot(page).locator(".option").first).to_be_visible()
    assert page.evaluate("document.activeElement.id") == "input"
    # The answer's buttons are reached with Tab and pressed with Enter.
    page.get_by_role("button", name="新对话").focus()
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "要多少钱":
            break
    else:
        raise AssertionError("the answer's buttons cannot be reached with Tab")
    page.keyboard.press("Enter")
    expect(page.locator(".msg.user").last).to_have_text("要多少钱")


def with_detail(route):
    """The stack's own reply, with a `reply.detail` and an article source added in the shape the
    reply-payload contract gives them (the Answerer's detail and the article sources are built by
    other changes): this checks the page's side of the contract."""
    response = route.fetch()
    body = response.json()
    first = next(m for m in body if m.get("text"))
    reply = first.setdefault("reply", {"kind": "guide", "sources": []})
    if first.get("guide_id") and not any(s.get("type") == "guide" for s in reply.get("sources") or []):
        reply.setdefault("sources", []).insert(0, {"type": "guide", "id": first["guide_id"], "title": "普通护照"})
    reply["detail"] = "办理普通护照需要准备以下材料（共2项）：\n1. 本人有效居民身份证（原件）\n2. 近期免冠彩色证件照片（原件）"
    reply["sources"] = [s for s in reply.get("sources") or [] if s.get("type") == "guide"] + [
        {"type": "article", "source": "passport-law", "title": "中华人民共和国护照法", "article": "第六条",
         "url": "/sources/passport-law#第六条"}]
    route.fulfill(response=response, body=json.dumps(body, ensure_ascii=False),
                  headers={**response.headers, "content-type": "application/json"})


def test_detail_behind_expand_one_source_line_with_basis_link_and_printing(chat):
    page = chat
    page.route("**/api/chat", with_detail)
    ask(page, "护照要多少钱")
    answer = last_bot(page)
    expect(answer).to_contain_text("120")
    more = answer.locator("button.expand")
    expect(more).to_have_text("展开全部")
    expect(more).to_have_attribute("aria-expanded", "false")
    detail = answer.locator(".detail")
    expect(detail).to_be_hidden()
    assert more.get_attribute("aria-controls") == detail.get_attribute("id")
    # One short source line: the guide and the article, 「依据」 opening the clause text.
    expect(answer.locator(".source")).to_have_count(1)
    expect(answer.locator(".source")).to_contain_text("办事指南《普通护照》")
    basis = answer.get_by_role("link", name=re.compile("依据"))
    assert basis.get_attribute("href") == "/sources/passport-law#第六条"
    expect(answer.get_by_role("link", name="查看办事指南")).to_have_attribute("href", "/guides/passport")
    screenshot(page, "chat-detail-collapsed-phone.png")

    more.focus()
    page.keyboard.press("Enter")
    expect(more).to_have_attribute("aria-expanded", "true")
    expect(more).to_have_text("收起")
    expect(detail).to_be_visible()
    expect(detail.get_by_role("checkbox")).to_have_count(2)
    screenshot(page, "chat-detail-expanded-phone.png")
    page.unroute("**/api/chat")
    page.reload()  # the opened detail stays open
    expect(last_bot(page).get_by_role("button", name="收起")).to_have_attribute("aria-expanded", "true")
    last_bot(page).get_by_role("button", name="收起").click()
    expect(last_bot(page).locator(".detail")).to_be_hidden()

    # Printed, the transcript holds the whole answer (detail included) and no controls.
    page.emulate_media(media="print")
    expect(last_bot(page).locator(".detail")).to_be_visible()
    for control in ("#composer", "#suggest", ".bar-end", ".feedback", ".buttons"):
        assert page.locator(control).evaluate_all("els => els.every(e => getComputedStyle(e).display === 'none')"), control
    expect(page.locator(".msg.user").first).to_be_visible()
    from tests.browser import SCREENSHOTS
    page.pdf(path=str(SCREENSHOTS / "chat-print.pdf"))
    page.emulate_media(media="screen")


def test_guide_list_filters_and_unknown_guide_is_a_chinese_404(stack, phone):
    page = phone.new_page()
    page.goto(stack.url + "/guides")
    expect(page.get_by_role("link", name="普通护照")).to_be_visible()
    page.get_by_label("搜索事项").fill("结婚")
    expect(page.get_by_role("link", name="结婚登记")).to_be_visible()
    expect(page.get_by_role("link", name="普通护照")).to_be_hidden()
    page.get_by_label("搜索事项").fill("火星移民")
    expect(page.get_by_text("没有找到相关事项")).to_be_visible()
    r = page.goto(stack.url + "/guides/no-such-guide")
    assert r.status == 404
    expect(page.get_by_role("heading", name="页面不存在")).to_be_visible()


# ---------------------------------------------------------------- the server goes away

class App:
    """A second app process beside the stack (same Rasa, same database) that this test may stop."""

    def __init__(self, env: dict, log):
        self.env, self.log, self.proc = {**env, "BST_APP_PORT": str(OFFLINE_PORT)}, log, None
        self.url = f"http://127.0.0.1:{OFFLINE_PORT}"

    def start(self):
        try:  # nothing else may answer on this port, or "stopped" would not mean offline
            httpx.get(f"{self.url}/health", timeout=1)
            raise RuntimeError(f"port {OFFLINE_PORT} is already in use")
        except httpx.ConnectError:
            pass
        self.proc = subprocess.Popen([str(ROOT / ".venv/app/bin/uvicorn"), "server:app", "--host", "127.0.0.1",
                                      "--port", str(OFFLINE_PORT)], cwd=ROOT, env=self.env,
                                     stdout=open(self.log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 300  # loads the encoder and index; slow on busy shared cores
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-2000:]
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
        raise RuntimeError("second app did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:  # still loading: a graceful stop has nothing to keep
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def test_offline_banner_when_the_server_is_stopped_and_the_message_is_kept(stack, stack_env, phone, tmp_path):
    app = App(stack_env, tmp_path / "app2.log")
    try:
        app.start()
        page = phone.new_page()
        page.goto(app.url + "/")
        ask(page, "护照要多少钱")
        expect(last_bot(page)).to_contain_text("120")

        app.stop()
        ask(page, "结婚登记要带什么材料")
        expect(page.get_by_role("alert")).to_contain_text("无法连接服务器")
        pending = page.locator(".msg.user").last
        expect(pending).to_contain_text("结婚登记要带什么材料")
        expect(pending.locator(".status")).to_contain_text("未发送")
        screenshot(page, "chat-offline-phone.png")

        # The page retries by itself every few seconds: while the app comes back, its chat requests keep
        # failing, so what the reload shows is the kept message, not a retry that won the race.
        page.route("**/api/chat", lambda route: route.abort())
        app.start()
        page.reload()  # even a reload keeps the unsent message, marked as such
        expect(page.locator(".msg.user.failed")).to_contain_text("结婚登记要带什么材料")
        page.unroute("**/api/chat")
        page.get_by_role("button", name="重新发送未发出的消息").click()
        expect(last_bot(page)).to_contain_text("来源：办事指南《结婚登记》")
        expect(page.get_by_role("alert")).to_be_hidden()
        expect(page.locator(".msg.user.failed")).to_have_count(0)
    finally:
        app.stop()
