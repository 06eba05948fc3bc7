"""The project's real processes (the Procfile under honcho: Rasa, the action server, the app), started on
the ports and data an environment names and stopped as one process group — the one way the tests and the
benchmarks (bench.load, bench.city_scale) run the stack."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


class ProcfileStack:
    def __init__(self, env: dict, log: Path, url: str):
        self.env, self.log, self.url = env, log, url
        self.proc: subprocess.Popen | None = None

    def rasa_token(self) -> str:
        """The token Rasa starts with: the environment's, else this checkout's (what the Procfile uses)."""
        from scripts.secret import secret

        return self.env.get("BST_RASA_TOKEN") or secret("rasa_token")

    def start(self, timeout: float = 300) -> None:
        """Start and wait until the app, Rasa (with its model) and the action server all answer."""
        self.proc = subprocess.Popen([str(ROOT / ".venv/app/bin/honcho"), "-f", str(ROOT / "Procfile"), "start"],
                                     cwd=ROOT, env=self.env, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"stack exited early; see {self.log}:\n{self.log.read_text()[-3000:]}")
            try:
                h = httpx.get(f"{self.url}/health", timeout=3).json()
                r = httpx.get(f"{self.env['BST_RASA_URL']}/status", params={"token": self.rasa_token()}, timeout=3)
                if h["rasa"] and h["actions"] and h["index_version"] and r.json().get("model_file"):
                    return
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            time.sleep(2)
        self.stop()
        raise RuntimeError(f"stack not ready after {timeout:.0f}s; see {self.log}:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc = None
