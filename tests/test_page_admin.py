"""The admin's round trip in a real browser against the real stack (Rasa + action server + app):
edit a guide's fee (a bad value is refused next to its field), save, build a candidate index with
progress, see the changed answer in the comparison, publish (refused while a golden question got
worse, then with a reason), ask the chat and get the new fee, roll back and get the old one — with a
stream of chat requests running throughout, none of which may fail."""

from __future__ import annotations

import re
import threading
import time

import httpx
import pytest
from argon2 import PasswordHasher

from tests.browser import screenshot
from tests.conftest import reply_text

pytest.importorskip("playwright")
from playwright.sync_api import expect  # noqa: E402

QUESTION = "办护照要多少钱"
OLD_FEE, NEW_FEE = "120元/本", "150元/本"


def create_admin(stack, username: str, password: str) -> None:
    """Local stand-in for the access helper's `staff_user(role)` fixture (same table, argon2 hash)."""
    from assistant.db import StaffUser, sessions

    with sessions(stack.env["BST_DATABASE_URL"]).begin() as s:
        s.add(StaffUser(username=username, display_name="测试管理员", password_hash=PasswordHasher().hash(password),
                        role="admin"))


class ChatStream:
    """Posts questions to /api/chat one after another in the background (bounded), recording failures."""

    def __init__(self, url: str, limit: int = 400):
        self.url, self.limit = url, limit
        self.sent, self.failures = 0, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=60) as c:
            while not self._stop.is_set() and self.sent < self.limit:
                self.sent += 1
                try:
                    r = c.post(f"{self.url}/api/chat", json={"sender": f"stream{self.sent % 5}", "message": QUESTION})
                    if r.status_code != 200 or not reply_text(r.json()).strip():
                        self.failures.append((r.status_code, r.text[:200]))
                except httpx.HTTPError as exc:
                    self.failures.append(("error", repr(exc)))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(90)


def wait_for_chat(stack, text: str, timeout: float = 120, warm_up: bool = False) -> str:
    """Ask until the answer contains `text` (the action server follows CURRENT within seconds).

    warm_up: the first question of a fresh stack loads the action server's encoder and index, which can
    take longer than a request timeout on a loaded machine; that wait is not a failed request."""
    deadline = time.monotonic() + timeout
    last = ""
    n = 0
    while time.monotonic() < deadline:
        n += 1
        try:
            last = reply_text(stack.chat(f"asker{n}", QUESTION))
        except httpx.TimeoutException:
            if not warm_up:
                raise
            continue
        if text in last:
            return last
        time.sleep(0.5)  # poll interval of a condition wait, not a fixed delay
    raise AssertionError(f"chat never answered with {text!r}; last answer: {last}")


def test_admin_edits_a_fee_builds_compares_publishes_and_rolls_back(stack, desktop_page, restores_knowledge):  # noqa: F811
    page = desktop_page
    create_admin(stack, "admin-e2e", "e2e-Secret-42")
    original = httpx.get(f"{stack.url}/health").json()["index_version"]
    assert OLD_FEE.split("/")[0] in wait_for_chat(stack, "120", timeout=600, warm_up=True)

    with ChatStream(stack.url) as stream:
        # Log in (the page asked for redirects to the login page and back).
        page.goto(f"{stack.url}/admin/guides/passport")
        expect(page).to_have_url(re.compile(r"/login\?next="))
        page.get_by_label("用户名").fill("admin-e2e")
        page.get_by_label("密码", exact=True).fill("e2e-Secret-42")
        page.get_by_role("button", name="登录").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("普通护照")

        # A bad value is refused with the validator's Chinese message next to its field.
        page.get_by_label("收费标准").fill(NEW_FEE)
        limit = page.get_by_label("承诺时限")
        limit.fill("三天")
        page.get_by_label("修改说明").fill("工本费调整（测试）")
        page.get_by_role("button", name="保存为新版本").click()
        expect(page.locator("#e-promised_limit")).to_contain_text("承诺时限")
        expect(page.locator("#e-promised_limit")).to_contain_text("应为整数")
        expect(page.get_by_label("收费标准")).to_have_value(NEW_FEE)  # what was typed is kept
        screenshot(page, "admin-guide-error")
        page.get_by_label("承诺时限").fill("7")
        page.get_by_role("button", name="保存为新版本").click()
        expect(page.get_by_role("status").first).to_contain_text("已保存为第2版")

        # Build a candidate with progress; the live index keeps answering meanwhile.
        page.get_by_role("link", name="索引发布").click()
        page.get_by_role("button", name="构建候选索引").click()
        expect(page.locator("#progress-label")).to_have_text(re.compile(r"正在.*\d+/\d+"), timeout=600_000)
        screenshot(page, "admin-build-progress")
        report_link = page.locator("#open-report")
        expect(report_link).to_be_visible(timeout=900_000)
        report_link.click()

        # The comparison shows the changed answer side by side; the fee check got worse.
        row = page.locator("tr", has_text="chk-02")
        expect(row).to_have_class(re.compile("worse"))
        expect(row.locator("td").nth(0)).to_contain_text("120元")
        expect(row.locator("td").nth(1)).to_contain_text("150元")
        screenshot(page, "admin-compare")

        # Publishing is refused while a golden question regresses, then done with a reason.
        page.get_by_role("button", name="发布此候选索引").click()
        expect(page.get_by_role("alert").first).to_contain_text("不能发布")
        page.get_by_label("强制发布理由").fill("工本费已按新标准调整，黄金问题待更新")
        page.get_by_role("button", name="发布此候选索引").click()
        expect(page.get_by_role("status").first).to_contain_text("已发布")
        assert "150元" in wait_for_chat(stack, "150元")

        # Roll back to the original version in one click: the old fee is back.
        page.get_by_role("button", name=f"切换到版本 {original}").click()
        expect(page.get_by_role("status").first).to_contain_text(f"已切换到 {original}")
        assert "120元" in wait_for_chat(stack, "120元")
        screenshot(page, "admin-index")

    assert stream.sent > 10, "the chat stream did not run"
    assert stream.failures == [], f"{len(stream.failures)} of {stream.sent} chat requests failed: {stream.failures[:3]}"
    audit = [a["action"] for a in page.request.get(f"{stack.url}/api/admin/audit").json()["items"]]
    assert {"guide.save", "index.build", "index.publish", "index.rollback"} <= set(audit)
