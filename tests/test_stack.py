"""The real stack over HTTP: Rasa server with the trained model, action server, app."""

import httpx

from tests.conftest import reply_text


def test_health_reports_index_and_both_rasa_processes(stack):
    h = httpx.get(f"{stack.url}/health").json()
    assert h["status"] == "ok" and h["rasa"] is True and h["actions"] is True
    assert h["index_version"].startswith("v")


def test_quancheng_question_lists_matters_and_names_its_source(stack):
    messages = stack.chat("stack-u1", "厦门全城通办有哪些事项？")
    assert isinstance(messages, list) and all("text" in m for m in messages)
    text = reply_text(messages)
    for item in ("婚姻登记", "个体工商户", "二手房抵押登记", "营运车辆年审", "社保卡", "出入境", "公证"):
        assert item in text
    assert "厦府办〔2018〕138号" in text and "一、(一)" in text


def test_greeting_is_answered_by_rasa_response(stack):
    text = reply_text(stack.chat("stack-u2", "你好"))
    assert "办事通" in text


def test_follow_up_question_keeps_the_matter(stack):
    first = reply_text(stack.chat("stack-u3", "办护照要带什么材料"))
    assert "身份证" in first
    second = reply_text(stack.chat("stack-u3", "那要多少钱？"))
    assert "120" in second and "护照" in second


def test_unknown_question_is_declined_with_12345(stack):
    text = reply_text(stack.chat("stack-u4", "帮我订一张去成都的机票"))
    assert "12345" in text or "抱歉" in text


# --- issue 18 (9): a crash behind a fallback answer fails the test (tests/conftest.py CrashWatch) ---

SAMPLE_CRASH = """\
10:01:02 actions.1 | 2026-12-01 10:01:02 INFO     rasa_sdk.executor  - Received request to run 'action_answer'
10:01:02 actions.1 | Exception occurred while handling uri: 'http://127.0.0.1:15055/webhook'
10:01:02 actions.1 | Traceback (most recent call last):
10:01:02 rasa.1    | 2026-12-01 10:01:02 INFO     rasa.core.processor  - Predicted next action 'action_answer'
10:01:02 actions.1 |   File "/work/assistant/answer.py", line 397, in run
10:01:02 actions.1 |     [{"type": "guide", "id": g.id, "reviewed": g.reviewed.isoformat()}], hits)
10:01:02 actions.1 | AttributeError: 'NoneType' object has no attribute 'isoformat'
10:01:02 app.1     | INFO:     127.0.0.1:50312 - "POST /api/chat HTTP/1.1" 200 OK
"""
QUIET = """\
10:01:00 system    | actions.1 started (pid=4242)
10:01:01 app.1     | 2026-12-01 10:01:01 WARNING  banshitong.citizens - rasa unavailable (ConnectError); answering directly
10:01:01 rasa.1    | 2026-12-01 10:01:01 INFO     rasa.core.processor  - 纠错 error_rate=0 (not an error record)
10:01:01 actions.1 | 2026-12-01 10:14:02,232 ERROR rasa_sdk.tracing.endpoints: Failed to read endpoint configuration from /work/endpoints.yml. No such file.
10:01:01 rasa.1    | 2026-12-01 10:01:01 ERROR    rasa.core.nlg.interpolator  - {"response": "/ask_materials{\\"matter\\": \\"passport\\"}", "placeholder_key": "\\"matter\\": \\"passport\\"", "event_info": "The specified slot name does not exist"}
"""


def test_the_log_scan_reports_a_traceback_with_its_text_and_nothing_else():
    from tests.conftest import crashes_in

    found = crashes_in(QUIET + SAMPLE_CRASH + QUIET)
    assert len(found) == 1
    crash = found[0]
    assert crash.startswith("actions.1: Traceback (most recent call last):")
    assert "g.reviewed.isoformat()" in crash and crash.endswith("AttributeError: 'NoneType' object has no attribute 'isoformat'")
    assert "Predicted next action" not in crash and "POST /api/chat" not in crash  # other processes' lines
    assert crashes_in(QUIET) == []
    rasa_error = "10:01:03 rasa.1 | 2026-12-01 10:01:03 ERROR    rasa.core.processor  - Encountered an exception\n"
    assert crashes_in(rasa_error) == ["rasa.1: 2026-12-01 10:01:03 ERROR    rasa.core.processor  - Encountered an exception"]


def test_a_test_through_the_stack_fails_when_a_process_logs_a_crash(tmp_path):
    """The conftest's hook, on a stand-in stack whose log a test writes: the test that logs a crash
    fails with the traceback in its report; the others pass."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    (tmp_path / "conftest.py").write_text(
        "import pytest\n"
        "from tests.conftest import pytest_runtest_call, stack_crashes  # noqa: F401 (the hooks under test)\n\n"
        "class Stand:\n    def __init__(self, log):\n        self.log = log\n\n"
        "@pytest.fixture(scope='session')\n"
        "def stack(tmp_path_factory):\n"
        "    log = tmp_path_factory.mktemp('s') / 'stack.log'\n"
        "    log.write_text('10:00:00 system | started\\n')\n"
        "    return Stand(log)\n", encoding="utf-8")
    (tmp_path / "test_stand.py").write_text(
        f"CRASH = {SAMPLE_CRASH!r}\nQUIET = {QUIET!r}\n\n"
        "def write(stack, text):\n    with open(stack.log, 'a', encoding='utf-8') as f:\n        f.write(text)\n\n"
        "def test_crashes_behind_a_fine_reply(stack):\n    write(stack, CRASH)\n\n"
        "def test_quiet(stack):\n    write(stack, QUIET)\n\n"
        "def test_provokes_one_on_purpose(stack, stack_crashes):\n"
        "    write(stack, CRASH)\n    assert len(stack_crashes.take()) == 1\n\n"
        "def test_no_stack():\n    pass\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf", str(tmp_path)],
                          cwd=tmp_path, env={**__import__("os").environ, "PYTHONPATH": str(root)},
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout
    assert proc.returncode == 1 and "1 failed, 3 passed" in out, out
    assert "FAILED test_stand.py::test_crashes_behind_a_fine_reply" in out
    assert "the stack logged 1 exception(s)" in out and "AttributeError: 'NoneType' object has no attribute 'isoformat'" in out


def test_an_action_server_crash_is_seen_in_the_log(stack, stack_crashes):
    """A throwaway call the action server cannot run (no tracker in it) crashes in its webhook;
    the watch reads that traceback from the real log."""
    from tests.conftest import PORTS

    r = httpx.post(f"http://127.0.0.1:{PORTS['actions']}/webhook", json={"next_action": "action_respond"},
                   params={"token": stack.env["BST_ACTION_TOKEN"]}, timeout=30)
    assert r.status_code >= 500
    found = stack_crashes.take()
    assert any(c.startswith("actions.1:") and "Traceback" in c for c in found), found
