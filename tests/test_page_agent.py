"""The 12345 agent console in a real browser (Debian Chromium), against the real stack.

The citizen's side of a hand-over is a second browser context on the citizen chat page (/).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from assistant.handoffs import TAKEN_NOTICE
from tests.browser import screenshot
from tests.conftest import create_staff

pytestmark = pytest.mark.usefixtures("stack")


@pytest.fixture()
def agent_page(stack, browser):
    username, password = create_staff(stack.env["BST_DATABASE_URL"], "agent", display_name="林晓")
    ctx = browser.new_context(base_url=stack.url, permissions=["clipboard-read", "clipboard-write"],
                              viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = ctx.new_page()
    page.goto("/agent")
    expect(page).to_have_url(re.compile(r"/login\?next=(/|%2F)agent"))  # not logged in: to the login page
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码", exact=True).fill(password)
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(re.compile(r"/agent$"))
    expect(page.get_by_role("heading", name="办事通 · 12345 坐席工作台")).to_be_visible()
    yield page
    ctx.close()


@pytest.fixture()
def citizen(stack, browser):
    """A second browser context: a citizen on the phone-sized chat page."""
    ctx = browser.new_context(base_url=stack.url, viewport={"width": 390, "height": 844}, locale="zh-CN")
    ctx.set_default_timeout(90_000)  # Rasa on two shared cores can take a while to answer
    page = ctx.new_page()
    page.goto("/")
    yield page
    ctx.close()


def say(citizen, text: str) -> None:
    citizen.locator("#input").fill(text)
    citizen.get_by_role("button", name="发送").click()


def test_agent_searches_as_they_type_and_copies_the_ready_answer(agent_page):
    page = agent_page
    box = page.get_by_label("输入来电人的问题")
    box.press_sequentially("来电人咨询护照办理材料", delay=40)  # agent shorthand, typed key by key
    hits = page.get_by_role("listbox", name="查询结果").get_by_role("option")
    first = hits.first
    expect(first).to_contain_text("护照")
    expect(first.locator("mark").first).to_be_visible()  # matched words highlighted
    expect(first).to_contain_text(re.compile(r"相关度：[高中低]"))
    expect(first).to_contain_text(re.compile(r"办事指南《.*》 · \d{4}-\d{2}-\d{2} 审核|政策条款："))
    answer = page.locator("#answer-text")
    expect(answer).to_contain_text("材料")
    expect(answer).to_contain_text("来源")
    expect(page.get_by_role("link", name=re.compile("查看完整办事指南"))).to_have_attribute("href", re.compile(r"^/guides/"))

    # Keyboard first: arrows / J/K move through hits, / focuses the search, c copies.
    expect(first).to_have_attribute("aria-selected", "true")
    box.press("ArrowDown")
    expect(hits.nth(1)).to_have_attribute("aria-selected", "true")
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("k")
    expect(first).to_have_attribute("aria-selected", "true")
    page.keyboard.press("c")
    expect(page.get_by_text("已复制")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == answer.text_content()
    page.keyboard.press("/")
    expect(box).to_be_focused()
    with page.context.expect_page() as opened:  # Enter opens the selected guide in a new tab
        box.press("Enter")
    guide = page.get_by_role("link", name=re.compile("^打开完整指南《")).get_attribute("href")  # the selected hit's
    assert guide.startswith("/guides/") and opened.value.url.endswith(guide)
    opened.value.close()

    # One click copies too (after a new search, the new answer).
    box.fill("")
    box.press_sequentially("市民问残疾证换领", delay=40)
    expect(answer).to_contain_text("残疾")
    expect(page.locator("#copied")).to_have_text("")
    page.get_by_role("button", name=re.compile("复制答复")).click()
    expect(page.get_by_text("已复制")).to_be_visible()
    assert "残疾" in page.evaluate("navigator.clipboard.readText()")

    # The agent's recent searches are kept for that agent (server-side: they survive a reload).
    recent = page.get_by_role("region", name="我的最近查询")
    expect(recent).to_contain_text("市民问残疾证换领")
    page.reload()
    expect(recent.get_by_role("button", name="来电人咨询护照办理材料")).to_be_visible()
    screenshot(page, "agent-console-lookup.png")


def test_district_rules_are_marked_as_such(agent_page):
    page = agent_page
    page.get_by_label("输入来电人的问题").press_sequentially("海沧区周末轮值", delay=30)
    hit = page.get_by_role("option").filter(has_text="海沧")
    expect(hit.first.locator(".region-tag")).to_have_text("海沧区规定")


def test_handover_round_trip_between_citizen_and_agent(agent_page, citizen):
    page, chat = agent_page, citizen.get_by_role("main", name="对话记录")
    question = "我儿子的护照快过期了续办要带什么"
    say(citizen, question)
    expect(chat).to_contain_text("材料")
    citizen.get_by_role("button", name="转人工：请工作人员回复").click()
    expect(chat).to_contain_text("12345")

    # The hand-over appears in the queue by itself (server-sent events), with the summary.
    item = page.get_by_role("list", name="转人工队列").get_by_role("button").filter(has_text=question)
    expect(item).to_be_visible(timeout=30000)
    expect(item).to_contain_text("用户要求转人工")
    expect(item).to_contain_text("护照")
    expect(item).to_contain_text("已等待")
    expect(page).to_have_title(re.compile(r"^\(\d+\) "))  # the title badge

    item.click()
    page.get_by_role("button", name="接入此会话").click()
    expect(page.locator("#conv-meta")).to_contain_text("已由 林晓 接入")

    # The bot falls silent: the citizen gets only the notice, the agent sees the messages.
    say(citizen, "请问还在吗")
    expect(chat).to_contain_text(TAKEN_NOTICE)
    say(citizen, "护照要多少钱")
    messages = page.get_by_role("list", name="对话记录")
    expect(messages).to_contain_text("护照要多少钱", timeout=30000)
    expect(messages).to_contain_text(question)  # the turns before the hand-over stay readable
    expect(chat).not_to_contain_text("120元")  # no bot answer while the agent holds the conversation

    page.get_by_label("回复市民").fill("您好，我是人工客服林晓。请问护照是哪一年办的？")
    page.get_by_role("button", name="发送").click()
    # The agent's message reaches the citizen's page live, with who is serving them.
    expect(chat).to_contain_text("请问护照是哪一年办的", timeout=30000)
    expect(citizen.locator("#agent-banner")).to_contain_text("人工客服 林晓 正在为您服务")
    screenshot(citizen, "citizen-chat-with-agent.png")

    say(citizen, "2016年办的")
    expect(messages).to_contain_text("2016年办的", timeout=30000)  # the citizen's answer, live
    screenshot(page, "agent-console-handover.png")

    page.get_by_label("处理结果").fill("已告知续办材料")
    page.get_by_role("button", name="结束会话，交还机器人").click()
    expect(page.locator("#conv-meta")).to_contain_text("已结束")
    expect(page.locator("#conv-meta")).to_contain_text("已告知续办材料")
    expect(citizen.locator("#agent-banner")).to_be_hidden(timeout=30000)

    say(citizen, "护照要多少钱")
    expect(chat.get_by_text(re.compile("120元"))).not_to_have_count(0)  # the bot answers again
