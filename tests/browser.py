"""Shared browser fixtures for the page tests: Playwright's sync API driving Debian's Chromium (no
browser download), and phone-sized contexts. Loaded once as a plugin by tests/conftest.py
(`pytest_plugins`), so every module shares the one session browser: importing the fixtures into a
test module would define a second one, and a second sync Playwright cannot start inside the first's
event loop. Test modules import only the helpers (`screenshot`, `wait_until`, `SCREENSHOTS`)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "var/screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True,
         "locale": "zh-CN"}


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def phone(browser):
    """A fresh phone-sized browser context (its own cookies and localStorage): one new citizen."""
    context = browser.new_context(**PHONE)
    context.set_default_timeout(60_000)  # Rasa on two shared cores can take a while to answer
    yield context
    context.close()


@pytest.fixture()
def desktop_page(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = ctx.new_page()
    yield page
    ctx.close()


@pytest.fixture()
def phone_page(browser):
    ctx = browser.new_context(viewport=PHONE, locale="zh-CN", is_mobile=True, has_touch=True)
    page = ctx.new_page()
    yield page
    ctx.close()


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / (name if name.endswith(".png") else f"{name}.png")
    try:
        page.screenshot(path=str(path), full_page=not name.endswith(".png"))
    except Exception:  # Chromium cannot always capture a very tall page whole (长辈模式's guide list): the viewport
        page.screenshot(path=str(path))
    return path


def wait_until(check, timeout: float = 20.0, every: float = 0.2):
    """Polls `check()` until it returns something truthy — for waits on the HTTP side; pages use
    Playwright's auto-waiting `expect`. (Added by the agent helper.)"""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        time.sleep(every)
