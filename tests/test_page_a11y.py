"""Accessibility kept by a real engine: axe-core (bundled by axe-playwright-python, injected from the
package's own axe.min.js — nothing is downloaded) runs the WCAG 2.1 A and AA rules on every page, in
the states a citizen or a staff member sees them: the chat empty, with an answer and its buttons,
with 「展开全部」 opened, with the offline banner, in 长辈模式; the guide list and a guide (both modes);
login; the agent console; every admin page. Zero violations allowed; a failure prints axe's report.
"""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser import screenshot

axe_playwright_python = pytest.importorskip("axe_playwright_python")
from axe_playwright_python.sync_playwright import Axe  # noqa: E402

WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
AXE = Axe()


def assert_accessible(page, state: str, exclude: list[str] | None = None) -> None:
    context = {"exclude": [[sel] for sel in exclude]} if exclude else None
    results = AXE.run(page, context=context,
                      options={"runOnly": {"type": "tag", "values": WCAG}, "resultTypes": ["violations"]})
    assert results.response["testEngine"]["version"].startswith("4."), "axe-core did not run"
    assert results.violations_count == 0, f"{state}: {results.generate_report()}"


def ask(page, question: str):
    page.get_by_label("输入您的问题").fill(question)
    page.get_by_role("button", name="发送").click()


def last_bot(page):
    return page.locator(".msg.bot:not(.intro)").last


@pytest.fixture(scope="module")
def warm(stack):
    # The action server loads its engine on the first question (a minute on busy shared cores).
    httpx.post(f"{stack.url}/api/chat", json={"sender": "a11y-warmup", "message": "护照要多少钱"}, timeout=300)
    return stack


def with_detail(route):
    """The stack's own reply with a `reply.detail` and an article source added, shaped as the
    reply-payload contract says (the Answerer's detail and the article sources are built
    elsewhere): the page's rendering of them is what is checked here."""
    response = route.fetch()
    body = response.json()
    first = next(m for m in body if m.get("text"))
    reply = first.setdefault("reply", {"kind": "guide", "sources": []})
    if first.get("guide_id") and not any(s.get("type") == "guide" for s in reply.get("sources") or []):
        reply.setdefault("sources", []).insert(0, {"type": "guide", "id": first["guide_id"], "title": "普通护照"})
    reply["detail"] = "办理普通护照需要准备以下材料（共2项）：\n1. 本人有效居民身份证（原件）\n2. 近期免冠彩色证件照片（原件）"
    reply["sources"] = [s for s in reply.get("sources") or [] if s.get("type") != "article"] + [
        {"type": "article", "source": "passport-law", "title": "中华人民共和国护照法", "article": "第六条",
         "url": "/sources/passport-law#第六条"}]
    route.fulfill(response=response, body=json.dumps(body, ensure_ascii=False),
                  headers={**response.headers, "content-type": "application/json"})


def test_chat_page_in_every_state_has_no_wcag_violation(warm, phone):
    page = phone.new_page()
    page.goto(warm.url + "/")
    expect(page.get_by_role("heading", name="办事通")).to_be_visible()
    assert_accessible(page, "chat, empty")

    ask(page, "结婚登记要带什么材料")
    expect(last_bot(page).locator(".source")).to_be_visible()
    expect(last_bot(page).locator(".option").first).to_be_visible()
    assert_accessible(page, "chat, an answer with its checklist and buttons")

    last_bot(page).get_by_role("button", name="没有帮助").click()
    expect(last_bot(page).get_by_label("哪里不满意")).to_be_visible()
    assert_accessible(page, "chat, the 👎 reason form")

    page.route("**/api/chat", with_detail)
    ask(page, "护照要多少钱")
    last_bot(page).get_by_role("button", name="展开全部").click()
    expect(last_bot(page).locator(".detail")).to_be_visible()
    assert_accessible(page, "chat, 「展开全部」 opened, article source")
    page.unroute("**/api/chat")

    page.get_by_role("button", name="预约办事").last.click() if page.get_by_role("button", name="预约办事").count() else ask(page, "预约办事")
    expect(last_bot(page)).to_contain_text("哪个服务中心")
    assert_accessible(page, "chat, the booking form's district buttons")

    page.get_by_role("button", name="长辈模式").click()
    expect(page.locator("html.elder")).to_have_count(1)
    assert_accessible(page, "chat, 长辈模式")

    page.route("**/api/chat", lambda route: route.abort())
    ask(page, "护照要多久")
    expect(page.get_by_role("alert")).to_contain_text("无法连接服务器")
    assert_accessible(page, "chat, offline banner (长辈模式)")
    page.get_by_role("button", name="标准模式").click()
    assert_accessible(page, "chat, offline banner")
    page.unroute("**/api/chat")


@pytest.mark.parametrize("path", ["/guides", "/guides/marriage-registration", "/guides/passport", "/guides/no-such-guide"])
def test_guide_pages_have_no_wcag_violation_in_both_modes(warm, phone, path):
    page = phone.new_page()
    page.goto(warm.url + path)
    assert_accessible(page, path)
    page.get_by_role("button", name="长辈模式").click() if page.get_by_role("button", name="长辈模式").count() else None
    assert_accessible(page, path + " (长辈模式)")


def test_login_page_has_no_wcag_violation(warm, desktop_page):
    desktop_page.goto(warm.url + "/login")
    expect(desktop_page.get_by_role("button", name="登录")).to_be_visible()
    assert_accessible(desktop_page, "/login")
    desktop_page.get_by_role("button", name="登录").click()  # empty form: the error message shows
    assert_accessible(desktop_page, "/login with an error")


def staff_page(browser, url: str, username: str, password: str):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    r = ctx.request.post(url + "/api/auth/login", data={"username": username, "password": password})
    assert r.ok, r.text()
    return ctx, ctx.new_page()


def test_agent_console_has_no_wcag_violation(warm, browser, staff_user):
    ctx, page = staff_page(browser, warm.url, *staff_user("agent"))
    try:
        page.goto(warm.url + "/agent")
        assert_accessible(page, "/agent")
        page.keyboard.press("/")
        page.keyboard.type("护照要多少钱")
        expect(page.locator("mark").first).to_be_visible()
        # The hits too: an option holds no link (the selected hit's guide is linked outside the list).
        assert_accessible(page, "/agent with results and the ready answer")
    finally:
        ctx.close()


def test_every_admin_page_has_no_wcag_violation(warm, browser, staff_user, stack_env):
    from sqlalchemy import create_engine, text

    ctx, page = staff_page(browser, warm.url, *staff_user("admin"))
    try:
        page.goto(warm.url + "/admin/guides")  # seeds the knowledge base on a fresh database
        # A second revision (to compare) and a finished build (to show), as the admin's own actions leave them.
        r = ctx.request.post(warm.url + "/admin/guides/residence-permit/restore",
                             form={"number": "1", "reason": "无障碍检查：恢复第1版"}, max_redirects=0)
        assert r.status in (303, 200), r.text()
        with create_engine(stack_env["BST_DATABASE_URL"]).begin() as c:
            c.execute(text("INSERT INTO index_builds (status, revisions, error, started_by, started_at, finished_at) "
                           "VALUES ('failed', '{}', '无障碍检查：示例失败构建', 'a11y', :t, :t)"), {"t": dt.datetime.utcnow()})
            build = c.execute(text("SELECT max(id) FROM index_builds")).scalar_one()
            newest = c.execute(text("SELECT max(number) FROM knowledge_revisions WHERE kind = 'guide' AND key = 'residence-permit'")).scalar_one()
        pages = ["/admin", "/admin?days=7", "/admin/guides", "/admin/guides?older_than=6", "/admin/guides/new",
                 "/admin/guides/passport", f"/admin/guides/residence-permit/diff?a=1&b={newest}", "/admin/index",
                 f"/admin/index/builds/{build}", "/admin/feedback", "/admin/documents"]
        for path in pages:
            resp = page.goto(warm.url + path)
            assert resp.status == 200, (path, resp.status)
            assert_accessible(page, path)
        screenshot(page, "admin-documents-desktop.png")
    finally:
        ctx.close()
