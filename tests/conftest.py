"""Shared fixtures. The suite runs after `make setup`: the encoder, the index and the Rasa model
exist. The `stack` fixture starts the real processes (Rasa server, action server, app) on test
ports, exactly as `make run` does, and stops them at the end."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

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
    env = dict(os.environ)
    env.update({
        "PYTHONPATH": str(ROOT),
        "RASA_TELEMETRY_ENABLED": "false",
        "BST_APP_PORT": str(PORTS["app"]), "BST_RASA_PORT": str(PORTS["rasa"]), "BST_ACTION_PORT": str(PORTS["actions"]),
        "BST_RASA_URL": f"http://127.0.0.1:{PORTS['rasa']}",
        "BST_ACTION_URL": f"http://127.0.0.1:{PORTS['actions']}",
        "BST_ACTION_WEBHOOK": f"http://127.0.0.1:{PORTS['actions']}/webhook",
        "BST_TRACKER_DIALECT": "sqlite", "BST_TRACKER_DB": str(data / "trackers.db"),
        "BST_DATABASE_URL": f"sqlite:///{data / 'app.db'}",
        "BST_ADMIN_TOKEN": "test-admin-token",
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
                r = httpx.get(f"{self.env['BST_RASA_URL']}/status", timeout=3)
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


@pytest.fixture(scope="session")
def stack(stack_env, tmp_path_factory):
    s = Stack(stack_env, tmp_path_factory.mktemp("logs") / "stack.log")
    s.start()
    yield s
    s.stop()
