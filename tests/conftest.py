"""Shared fixtures. The suite runs after `make setup`: the encoder, the index and the Rasa model
exist. The `stack` fixture starts the real processes (Rasa server, action server, app) on test
ports, exactly as `make run` does, and stops them at the end."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.stack import ProcfileStack

pytest_plugins = ["tests.browser"]  # the page tests' shared browser fixtures

ROOT = Path(__file__).resolve().parent.parent
# BST_TEST_PORT_OFFSET lets several checkouts run their stacks side by side on one machine.
_OFFSET = int(os.environ.get("BST_TEST_PORT_OFFSET", "0"))
PORTS = {"app": 18000 + _OFFSET, "rasa": 15005 + _OFFSET, "actions": 15055 + _OFFSET}


@pytest.fixture(scope="session")
def engine():
    from assistant.engine import Engine
    from settings import get_settings

    return Engine(get_settings())


@pytest.fixture(scope="session")
def answerer(engine):
    return engine.get().answerer


@pytest.fixture(scope="session")
def stack_env(tmp_path_factory):
    data = tmp_path_factory.mktemp("stack")
    # The stack serves a copy of the index: admin tests publish and roll back versions in it.
    shutil.copytree(ROOT / "var/index", data / "index", ignore=shutil.ignore_patterns(".tmp-*"))
    # As on a fresh machine: no BST_ setting leaks in from the caller (or a test's monkeypatch).
    env = {k: v for k, v in os.environ.items() if not k.startswith("BST_") or k.startswith("BST_TEST_")}
    env.update({
        "PYTHONPATH": str(ROOT),
        "RASA_TELEMETRY_ENABLED": "false",
        "BST_APP_PORT": str(PORTS["app"]), "BST_RASA_PORT": str(PORTS["rasa"]), "BST_ACTION_PORT": str(PORTS["actions"]),
        "BST_RASA_URL": f"http://127.0.0.1:{PORTS['rasa']}",
        "BST_ACTION_URL": f"http://127.0.0.1:{PORTS['actions']}",
        "BST_ACTION_WEBHOOK": f"http://127.0.0.1:{PORTS['actions']}/webhook",
        "BST_TRACKER_DIALECT": "sqlite", "BST_TRACKER_DB": str(data / "trackers.db"),
        "BST_DATABASE_URL": f"sqlite:///{data / 'app.db'}",
        # The suite chats from one address far faster than a citizen: limits are tested in-process
        # (tests/test_access.py), the shared stack runs without them.
        "BST_CHAT_PER_MINUTE": "0", "BST_SEARCH_PER_MINUTE": "0", "BST_LOGIN_PER_MINUTE": "0",
        "BST_BOOKING_LOOKUP_PER_MINUTE": "0",
        "BST_INDEX_DIR": str(data / "index"),
        # Rasa's API and channel token: one per test session (the Procfile uses it when set).
        "BST_RASA_TOKEN": secrets.token_urlsafe(32),
        "BST_ACTION_TOKEN": secrets.token_urlsafe(32),  # Rasa → action server (actions/serve.py)
    })
    return env


class Stack(ProcfileStack):
    def __init__(self, env: dict, log: Path):
        super().__init__(env, log, f"http://127.0.0.1:{PORTS['app']}")

    def chat(self, sender: str, message: str) -> list[dict]:
        r = httpx.post(f"{self.url}/api/chat", json={"sender": sender, "message": message}, timeout=60)
        r.raise_for_status()
        return r.json()


# What a crash looks like in the stack's log (one file, honcho prefixes every line with
# "HH:MM:SS <process>.1 | "): a Python traceback, or a record logged at ERROR or CRITICAL (Rasa,
# rasa_sdk, uvicorn and the app's own logging all print the level name).
_LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d (?P<proc>\S+)\s*\| (?P<text>.*)$")
_CRASH = re.compile(r"Traceback \(most recent call last\)|\b(ERROR|CRITICAL)\b")
# Lines that continue a traceback: its frames, chained-exception headers and the exception line.
_CONTINUES = re.compile(r"^(\s|Traceback |During handling|The above exception|[\w.]+(Error|Exception|Exit|Interrupt)\b)")
_MAX_LINES = 60
# ERROR records that are not crashes. Rasa 3.6 reads "{...}" in a domain response as a slot
# placeholder, so a button payload carrying entities (/ask_materials{"matter": "passport"}) logs
# "The specified slot name does not exist" at ERROR and sends the response unchanged. Only that
# case: a placeholder that starts with a quote is JSON, never a slot name. And rasa_sdk, starting,
# looks for a tracing configuration in ./endpoints.yml (ours is bot/endpoints.yml, without tracing).
# Rasa logs a request refused for lacking the API token ("User is not authenticated") at ERROR too:
# that is the token doing its job (tests/test_hardening.py), not a crash.
_HARMLESS = re.compile(r'rasa\.core\.nlg\.interpolator .*"placeholder_key": "\\"'
                       r"|rasa_sdk\.tracing\.endpoints: Failed to read endpoint configuration from \S*endpoints\.yml\. No such file"
                       r"|rasa\.server\s+- User is not authenticated\.")


def crashes_in(log_text: str) -> list[str]:
    """Each exception the stack's processes logged, as "<process>: <lines>": the ERROR/CRITICAL
    record or traceback header and the traceback lines of the same process that follow it."""
    found: list[str] = []
    current: tuple[str, list[str]] | None = None
    for raw in log_text.splitlines():
        m = _LOG_LINE.match(raw)
        proc, text = (m["proc"], m["text"]) if m else (None, raw)
        if current and proc in (current[0], None) and _CONTINUES.match(text) and len(current[1]) < _MAX_LINES:
            current[1].append(text)
            continue
        if current and proc not in (current[0], None):
            # Another process's line interleaved: this traceback may go on after it.
            if _CRASH.search(text) and not _HARMLESS.search(text):
                found.append(f"{current[0]}: " + "\n".join(current[1]))
                current = (proc, [text])
            continue
        if current:
            found.append(f"{current[0]}: " + "\n".join(current[1]))
            current = None
        if _CRASH.search(text) and not _HARMLESS.search(text):
            current = (proc or "?", [text])
    if current:
        found.append(f"{current[0]}: " + "\n".join(current[1]))
    return found


class CrashWatch:
    """The part of the stack's log written since the last look, scanned for exceptions.

    Issue 18 (9): the app's own fallback answers when the action server crashes, so a crash
    never shows in a reply; a test through the stack must still fail when one happens."""

    def __init__(self, log: Path):
        self.log = log
        self.offset = self._size()

    def _size(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def take(self, settle: float = 2.0) -> list[str]:
        """Exceptions logged since the last take (waits until the log stops growing, at most
        `settle` seconds: a crash is logged just after the reply it spoilt is sent)."""
        deadline, size = time.monotonic() + settle, self._size()
        while time.monotonic() < deadline:
            time.sleep(0.15)
            now = self._size()
            if now == size:
                break
            size = now
        with open(self.log, "rb") as f:
            f.seek(self.offset)
            data = f.read(size - self.offset)
        self.offset = size
        return crashes_in(data.decode("utf-8", "replace"))


@pytest.fixture(autouse=True)
def stack_crashes(request):
    """For every test that uses the real stack: a CrashWatch over its log from the test's start.
    The test fails if a process logged an exception meanwhile (pytest_runtest_call below); a test
    that provokes one on purpose takes it with `stack_crashes.take()`."""
    if "stack" not in request.fixturenames:
        yield None
        return
    watch = CrashWatch(request.getfixturevalue("stack").log)
    request.node.stack_watch = watch
    yield watch


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    try:
        return (yield)
    finally:
        watch = getattr(item, "stack_watch", None)
        found = watch.take() if watch is not None else []
        if found:
            report = "\n\n".join(found)
            item.add_report_section("call", "exceptions in the stack's log", report)
            if sys.exc_info()[0] is None:  # a test that failed anyway keeps its own failure
                pytest.fail(f"the stack logged {len(found)} exception(s) during this test "
                            f"(the reply may have come from a fallback):\n{report[:8000]}", pytrace=False)


def reply_text(messages: list[dict]) -> str:
    """What a user sees: every message's text plus button titles."""
    parts = []
    for m in messages:
        parts.append(m.get("text") or "")
        parts.extend(b["title"] for b in m.get("buttons") or [])
    return "\n".join(parts)


def create_staff(database_url: str, role: str = "agent", username: str | None = None,
                 password: str | None = None, display_name: str | None = None) -> tuple[str, str]:
    """A staff account made by the domain function the CLI uses; returns (username, password)."""
    import uuid

    from assistant import accounts
    from assistant.db import sessions, upgrade

    upgrade(database_url)
    username = username or f"{role}-{uuid.uuid4().hex[:8]}"
    password = password or f"pw-{uuid.uuid4().hex}"
    with sessions(database_url)() as s:
        accounts.create_user(s, username, role, password=password, display_name=display_name)  # a chosen password: no forced change
        s.commit()
    return username, password


@pytest.fixture(scope="session")
def staff_user(stack_env):
    """staff_user("agent"|"admin") -> (username, password) in the stack's database."""
    return lambda role="agent", **kw: create_staff(stack_env["BST_DATABASE_URL"], role, **kw)


def login(url: str, username: str, password: str) -> httpx.Client:
    """An httpx client logged in as this staff member (cookie bst_staff)."""
    c = httpx.Client(base_url=url, timeout=60)
    r = c.post("/api/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return c


@pytest.fixture(scope="session")
def stack(stack_env, tmp_path_factory):
    s = Stack(stack_env, tmp_path_factory.mktemp("logs") / "stack.log")
    # A loaded shared machine may need longer than the default to load the Rasa model.
    s.start(float(os.environ.get("BST_TEST_STACK_TIMEOUT", "300")))
    yield s
    s.stop()


@pytest.fixture
def restores_knowledge(stack, staff_user):
    """For a test that saves guides or publishes an index on the shared stack: afterwards the guides are
    back at the revisions they had (a guide the test added is marked deleted) and the live index is the
    one that was live, so later tests see the knowledge base the repository ships — not a fee the admin
    test raised to 150元 or 2,000 synthetic matters."""
    from assistant import knowledge_base as kb
    from assistant.db import sessions

    admin = login(stack.url, *staff_user("admin"))
    assert admin.get("/api/admin/guides").status_code == 200  # seeds a fresh database, so "before" is complete
    live = httpx.get(f"{stack.url}/health", timeout=30).json()["index_version"]
    Session = sessions(stack.env["BST_DATABASE_URL"])
    with Session() as s:
        before = {r.key: r.number for r in kb.current_all(s, kb.GUIDE)}
    yield
    with Session() as s:
        for rev in kb.current_all(s, kb.GUIDE):
            if rev.key not in before:
                kb.save(s, kb.GUIDE, rev.key, rev.content, "tests", "测试结束：删除测试添加的指南", deleted=True)
            elif rev.number != before[rev.key]:
                kb.restore(s, kb.GUIDE, rev.key, before[rev.key], "tests", "测试结束：恢复原版本")
        s.commit()
    if httpx.get(f"{stack.url}/health", timeout=30).json()["index_version"] != live:
        r = admin.post("/api/admin/index/rollback", json={"version": live, "reason": "测试结束：恢复原索引"})
        assert r.status_code == 200, r.text
        # The action server notices CURRENT on its next request and loads it in the background: ask until
        # its log says it has loaded the version again.
        def loads() -> int:
            return len(re.findall(rf"actions\.\d+ .*loaded index {re.escape(live)} ",
                                  stack.log.read_text(encoding="utf-8", errors="replace")))
        seen, deadline, n = loads(), time.monotonic() + 180, 0
        while loads() <= seen:
            assert time.monotonic() < deadline, "the action server did not return to the live index"
            n += 1
            stack.chat(f"restore-{n}", "你好")
            time.sleep(1)
