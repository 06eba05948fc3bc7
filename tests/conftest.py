"""Shared fixtures. The suite runs after `make setup`: the encoder, the index and the Rasa model
exist. The `stack` fixture starts the real processes (Rasa server, action server, app) on test
ports, exactly as `make run` does, and stops them at the end."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

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
    })
    return env


class Stack:
    def __init__(self, env: dict, log: Path):
        self.env, self.log = env, log
        self.url = f"http://127.0.0.1:{PORTS['app']}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = float(os.environ.get("BST_TEST_STACK_TIMEOUT", "300"))) -> None:
        self.proc = subprocess.Popen(
            [str(ROOT / ".venv/app/bin/honcho"), "-f", str(ROOT / "Procfile"), "start"],
            cwd=ROOT, env=self.env, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"stack exited early; see {self.log}:\n{self.log.read_text()[-3000:]}")
            try:
                h = httpx.get(f"{self.url}/health", timeout=3).json()
                r = httpx.get(f"{self.env['BST_RASA_URL']}/status", params={"token": self.env["BST_RASA_TOKEN"]}, timeout=3)
                if h["rasa"] and h["actions"] and h["index_version"] and r.json().get("model_file"):
                    return
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            time.sleep(2)
        self.stop()
        raise RuntimeError(f"stack not ready after {timeout}s; see {self.log}:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc = None

    def chat(self, sender: str, message: str) -> list[dict]:
        r = httpx.post(f"{self.url}/api/chat", json={"sender": sender, "message": message}, timeout=60)
        r.raise_for_status()
        return r.json()


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
