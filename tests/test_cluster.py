"""Several replicas on PostgreSQL and Redis behind nginx (deploy/cluster.sh), started by the test
itself on loopback ports: conversations move between replicas, bookings never exceed the places
that exist, a killed replica costs no turn, and an outage of Redis or PostgreSQL is a clear 503."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, reply_text

PORT = 28080 + int(os.environ.get("BST_TEST_PORT_OFFSET", "0"))
APPS = [f"http://127.0.0.1:{PORT + 1}", f"http://127.0.0.1:{PORT + 2}"]
ACTIONS = [f"http://127.0.0.1:{PORT + 21}", f"http://127.0.0.1:{PORT + 22}"]
LB = f"http://127.0.0.1:{PORT}"
CENTRES = ["湖里区", "思明区", "集美区", "海沧区", "同安区", "翔安区", "市行政服务中心"]
TIMES = ["上午9点", "上午10点", "上午11点", "下午2点", "下午3点", "下午4点"]


class Cluster:
    def __init__(self, directory: Path):
        self.dir = directory
        # The suite chats from one address far faster than a citizen: the limits are tested in-process
        # (tests/test_access.py); every replica inherits this from supervisord.
        self.env = {**os.environ, "CLUSTER_DIR": str(directory), "CLUSTER_PORT": str(PORT),
                    "BST_CHAT_PER_MINUTE": "0", "BST_SEARCH_PER_MINUTE": "0"}

    def script(self, *args: str, timeout: float = 900) -> None:
        subprocess.run(["bash", str(ROOT / "deploy/cluster.sh"), *args], cwd=ROOT, env=self.env, check=True,
                       timeout=timeout)

    def ctl(self, *args: str) -> str:
        return subprocess.run([str(ROOT / ".venv/app/bin/supervisorctl"), "-c", str(self.dir / "supervisord.conf"),
                               *args], capture_output=True, text=True, timeout=120).stdout

    def secret(self, name: str) -> str:
        for line in (self.dir / "secrets.env").read_text().splitlines():
            if line.startswith(name + "="):
                return line.split("=", 1)[1]
        raise KeyError(name)


@pytest.fixture(scope="module")
def cluster():
    # Not under pytest's tmp dir: PostgreSQL runs as the postgres user, which must reach its data.
    directory = ROOT / "var/test-cluster"
    c = Cluster(directory)
    if (directory / "supervisord.conf").exists():
        c.script("stop", timeout=180)  # left over from an interrupted run
    shutil.rmtree(directory, ignore_errors=True)
    c.script("start")
    yield c
    c.script("stop", timeout=180)


def chat(base: str, sender: str, message: str) -> tuple[int, str]:
    r = httpx.post(f"{base}/api/chat", json={"sender": sender, "message": message}, timeout=120)
    return r.status_code, reply_text(r.json()) if r.status_code == 200 else r.json().get("detail", "")


def answer_for(prompt: str, centre: str, when: str, i: int) -> str:
    """What a citizen answers to whatever the booking form asks next."""
    if "请确认预约信息" in prompt:  # first: the summary itself names the centre, date and phone
        return "确认"
    if "哪一天" in prompt or "日期" in prompt:  # before the centre: "哪一天去湖里区行政服务中心"
        m = re.search(r"(\d{1,2})月(\d{1,2})日", prompt)
        return f"{m.group(1)}月{m.group(2)}号"
    if "服务中心" in prompt or "哪个区" in prompt:
        return centre
    if "时段" in prompt:
        return when
    if "姓名" in prompt:
        return "张三"
    if "手机" in prompt:
        return f"139{i:08d}"
    if "确认" in prompt:
        return "确认"
    raise AssertionError(f"unexpected question: {prompt}")


def book_alternating(i: int) -> tuple[str, str, str]:
    """A whole booking whose turns alternate between the two app replicas."""
    sender, centre, when = f"cl-{i}", CENTRES[i % 7], TIMES[i // 7]
    status, text = chat(APPS[0], sender, "我要预约办事")
    assert status == 200, text
    for turn in range(1, 10):
        if "预约号" in text:
            return sender, centre, text
        status, text = chat(APPS[turn % 2], sender, answer_for(text, centre, when, i))
        assert status == 200, text
    raise AssertionError(f"booking {i} did not finish: {text}")


def test_conversations_alternating_between_replicas_keep_every_slot(cluster):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(book_alternating, range(20)))
    for sender, centre, text in results:
        i = int(sender.split("-")[1])
        assert centre.removesuffix("区")[:2] in text or "市" in text, text
        hour = {"上午9点": "09:00", "上午10点": "10:00", "上午11点": "11:00", "下午2点": "14:00",
                "下午3点": "15:00", "下午4点": "16:00"}[TIMES[i // 7]]
        assert hour in text, text  # the slot chosen on one replica is the one booked on the other
        code = re.search(r"预约号[：:]\s*([A-Z0-9]{8})", text).group(1)
        assert code in chat(APPS[1 - i % 2], sender, "查询我的预约")[1]


def test_concurrent_attempts_at_the_last_places_book_exactly_the_places_that_exist(cluster):
    """50 citizens confirm the same slot at once, half through each action-server replica."""
    day = (dt.date.today() + dt.timedelta(days=1))
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)

    def payload(i: int) -> dict:
        slots = {"booking_centre": "翔安区", "booking_date": day.isoformat(), "booking_slot": "16:00-17:00",
                 "booking_name": "李四", "booking_phone": f"137{i:08d}", "booking_confirmed": True,
                 "matter": "passport", "requested_slot": None}
        return {"next_action": "action_submit_booking", "sender_id": f"race-{i}", "version": "3.6.21",
                "tracker": {"sender_id": f"race-{i}", "slots": slots, "latest_message": {"text": "确认"},
                            "events": [], "paused": False, "active_loop": {}, "latest_action_name": None},
                "domain": {"responses": {}}}

    async def attempt_all() -> list[str]:
        async with httpx.AsyncClient(timeout=120) as client:
            token = {"token": cluster.secret("BST_ACTION_TOKEN")}  # what Rasa sends (bot/endpoints.yml)
            rs = await asyncio.gather(*[client.post(f"{ACTIONS[i % 2]}/webhook", json=payload(i), params=token)
                                        for i in range(50)])
        return [" ".join(m.get("text") or "" for m in r.json()["responses"]) for r in rs]

    texts = asyncio.run(attempt_all())
    booked = [t for t in texts if "预约成功" in t]
    refused = [t for t in texts if "约满" in t]
    # 10 places a slot, 30% kept for walk-ins (厦府办〔2018〕138号 三、(十二)): 7 can be booked.
    assert len(booked) == 7 and len(refused) == 43, texts


def test_a_killed_replica_costs_no_turn(cluster):
    sender = "cl-kill"
    status, text = chat(LB, sender, "我要预约办事")
    assert status == 200 and "服务中心" in text
    status, text = chat(LB, sender, "集美区")
    assert status == 200 and "哪一天" in text
    for name in ("app1", "rasa1", "actions1"):
        # The whole replica dies at once, worker processes included (supervisord starts each program
        # in its own process group), as when its machine or container goes.
        pid = int(re.search(r"pid (\d+)", cluster.ctl("status", name)).group(1))
        os.killpg(pid, signal.SIGKILL)
    for turn in range(8):
        if "预约号" in text:
            break
        status, text = chat(LB, sender, answer_for(text, "集美区", "下午3点", 99))
        assert status == 200, text
    assert "预约号" in text and "集美区" in text and "15:00" in text


@pytest.mark.parametrize("service", ["redis", "postgres"])
def test_an_outage_is_a_clear_503_and_service_resumes_by_itself(cluster, service):
    sender = f"cl-outage-{service}"
    status, text = chat(LB, sender, "护照要多少钱")
    assert status == 200 and "120" in text
    cluster.ctl("stop", service)
    try:
        for _ in range(3):
            r = httpx.post(f"{LB}/api/chat", json={"sender": sender, "message": "那要多久"}, timeout=60)
            assert r.status_code == 503, r.text
            assert "暂时不可用" in r.json()["detail"]
    finally:
        cluster.ctl("start", service)
    deadline = time.monotonic() + 60
    while True:
        status, text = chat(LB, sender, "那要多久")
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert status == 200 and "护照" in text and "工作日" in text  # the conversation's context survived
