"""The admin's side, in-process: knowledge with history (import/export, save, diff, restore), the guide
form with validation errors in Chinese, feedback grouping and the overview, the admin pages' access
rules and the audit log. The candidate build / publish / roll back round trip runs in the browser test
(tests/test_page_admin.py) against the real stack."""

from __future__ import annotations

import datetime as dt
import filecmp
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from urllib.parse import unquote
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from assistant import insights
from assistant import knowledge_base as kb
from assistant.db import AuditEntry, ChatTurn, Feedback, Handoff, StaffUser, sessions, upgrade

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def db(tmp_path):
    url = f"sqlite:///{tmp_path / 'app.db'}"
    upgrade(url)
    return sessions(url)


@pytest.fixture()
def seeded(db):
    with db.begin() as s:
        kb.import_folder(s, ROOT / "knowledge", "system", "initial import")
    return db


def test_export_of_an_import_gives_the_repository_files_back_and_reimport_adds_nothing(seeded, tmp_path):
    with seeded.begin() as s:
        kb.export_folder(s, tmp_path / "out")
    for sub in ("guides", "sources"):
        cmp = filecmp.dircmp(ROOT / "knowledge" / sub, tmp_path / "out" / sub, ignore=["README.md"])
        assert not cmp.left_only and not cmp.right_only, sub
        _, mismatch, errors = filecmp.cmpfiles(ROOT / "knowledge" / sub, tmp_path / "out" / sub, cmp.common_files,
                                               shallow=False)
        assert not mismatch and not errors
    with seeded.begin() as s:
        again = kb.import_folder(s, tmp_path / "out", "system", "re-import")
    assert again["added"] == 0 and again["unchanged"] > 50


def test_every_save_is_a_revision_with_who_and_why_and_can_be_compared_and_restored(seeded):
    with seeded.begin() as s:
        rev = kb.current(s, kb.GUIDE, "passport")
        data = kb.guide_data(rev)
        data["fee"] = "150元/本"
        saved = kb.save(s, kb.GUIDE, "passport", kb.guide_yaml(data, rev.content), "alice", "收费调整")
        assert saved.changed and saved.revision.number == 2
        # Saving the same text again adds nothing.
        assert not kb.save(s, kb.GUIDE, "passport", saved.revision.content, "alice", "again").changed
    with seeded.begin() as s:
        d = kb.diff(kb.revision(s, kb.GUIDE, "passport", 1), kb.revision(s, kb.GUIDE, "passport", 2))
        assert [(f["field"], f["old"], f["new"]) for f in d["fields"]] == [("fee", "120元/本（2019年7月1日起执行）", "150元/本")]
        assert "-fee: 120元/本" in d["unified"] and "+fee: 150元/本" in d["unified"]
        # The comment lines heading the repository file survive a form save.
        assert kb.current(s, kb.GUIDE, "marriage-registration").content.startswith("# 结婚登记")
        restored = kb.restore(s, kb.GUIDE, "passport", 1, "bob", "")
        assert restored.revision.number == 3 and restored.revision.author == "bob"
        assert kb.guide_data(restored.revision)["fee"] == "120元/本（2019年7月1日起执行）"
        assert [h.author for h in kb.history(s, kb.GUIDE, "passport")] == ["bob", "alice", "system"]
        actions = [a.action for a in s.query(AuditEntry).filter(AuditEntry.target == "guide/passport")]
    assert actions[-2:] == ["guide.save", "guide.restore"]


def test_an_invalid_guide_is_refused_with_the_validators_chinese_message_and_nothing_is_saved(seeded):
    with seeded.begin() as s:
        rev = kb.current(s, kb.GUIDE, "passport")
        data = kb.guide_data(rev)
        data["promised_limit"] = "三天"
        with pytest.raises(kb.InvalidKnowledge) as exc:
            kb.save(s, kb.GUIDE, "passport", kb.guide_yaml(data), "alice", "bad")
        fields = {kb.problem_field(p) for p in exc.value.problems}
        assert fields == {"promised_limit"}
        assert any("承诺时限" in p.field for p in exc.value.problems)
        with pytest.raises(kb.InvalidKnowledge):
            kb.save(s, kb.GUIDE, "passport", rev.content + "\n", "alice", "  ")  # a reason is required
    with seeded.begin() as s:
        assert kb.current(s, kb.GUIDE, "passport").number == 1


def test_guides_list_shows_review_date_flags_and_filters_by_age(seeded):
    with seeded.begin() as s:
        rows = {r["id"]: r for r in kb.guide_rows(s)}
        flagged = sum(1 for p in kb.guide_data(kb.current(s, kb.GUIDE, "passport")).get("provenance", {}).values()
                      if p.get("check"))
        assert flagged and rows["passport"]["needs_check"] == flagged and rows["passport"]["category"] == "出入境"
        assert rows["passport"]["editor"] == "system"
        checked = rows["passport"]["reviewed"]  # the latest date a fact of it was checked
        later = checked + dt.timedelta(days=400)
        assert "passport" in {r["id"] for r in kb.guide_rows(s, 6, today=later)}
        stale_now = {r["id"] for r in kb.guide_rows(s, 6, today=checked)}
        assert "passport" not in stale_now
        # A guide none of whose facts was ever checked is always due for review.
        assert {g for g, r in rows.items() if r["reviewed"] is None} <= stale_now


def test_form_values_become_a_guide_and_keep_fields_the_form_does_not_show():
    from web.admin import guide_from_form
    from starlette.datastructures import FormData

    base = {"id": "x", "name": "测试", "materials": [{"name": "身份证", "form": "原件", "copies": 1, "extra": "kept"}],
            "sources": {"t": {"title": "t"}}, "provenance": {"fee": {"check": "收费待核实"}}}
    form = FormData([("fee", " 20元 "), ("promised_limit", "5"), ("legal_limit", "即办"), ("conditions", "a\n\nb\n"),
                     ("materials-0-name", "身份证"), ("materials-0-form", "复印件"), ("materials-0-copies", "2"),
                     ("materials-0-waivable", "on"), ("materials-1-name", ""), ("materials-1-copies", "1"),
                     ("sources-0-key", "138号"), ("sources-0-title", "t"), ("sources-0-doc_number", "厦府办〔2018〕138号"),
                     ("sources-0-seen", "2026-11-24"), ("sources-1-key", ""), ("sources-1-title", ""),
                     ("provenance-0-fact", "fee"), ("provenance-0-source", "138号"), ("provenance-0-clause", "三、(十二)"),
                     ("provenance-0-reviewed", "2026-11-24"), ("provenance-0-check", ""),
                     ("channels-present", "1"), ("channels", "窗口"), ("channels", "i厦门")])
    data = guide_from_form(form, base)
    assert data["fee"] == "20元" and data["promised_limit"] == 5 and data["legal_limit"] == "即办"
    assert data["conditions"] == ["a", "b"] and data["channels"] == ["窗口", "i厦门"]
    assert data["materials"] == [{"name": "身份证", "form": "复印件", "copies": 2, "extra": "kept", "waivable": True}]
    assert data["sources"] == {"138号": {"title": "t", "doc_number": "厦府办〔2018〕138号", "seen": dt.date(2026, 11, 24)}}
    # The fee now names its source and when it was checked; it is no longer 待核实.
    assert data["provenance"] == {"fee": {"source": "138号", "clause": "三、(十二)", "reviewed": dt.date(2026, 11, 24)}}


def _turn(s, q, kind, when, matter=None):
    t = ChatTurn(sender="api-x", channel="api", question=q, answer="抱歉…12345", kind=kind, matter=matter,
                 index_version="v1", created_at=when)
    s.add(t)
    s.flush()
    return t


def test_gaps_are_grouped_by_similar_wording_and_filtered_by_date(db):
    now = dt.datetime(2026, 11, 20, 10)
    with db.begin() as s:
        _turn(s, "养狗要办什么证", "refused", now)
        _turn(s, "养狗需要办什么证件", "refused", now)
        _turn(s, "养狗办证去哪里", "handoff", now)
        _turn(s, "公积金怎么提取", "answered", now)
        t = _turn(s, "护照加急要多少钱", "answered", now - dt.timedelta(days=10), "passport")
        s.add(Feedback(sender="api-x", turn_id=t.id, question=t.question, answer="120元", vote=-1, reason="没说加急费",
                       created_at=t.created_at))
    with db.begin() as s:
        groups = insights.group(insights.gaps(s))
        assert [len(g.items) for g in groups][:1] == [3] and len(groups) == 2
        assert groups[0].kinds == {"refused": 2, "handoff": 1}
        assert groups[1].reasons == ["没说加急费"]
        recent = insights.gaps(s, since=dt.date(2026, 11, 15))
        assert all("护照" not in g.question for g in recent) and len(recent) == 3


def test_overview_counts_outcomes_votes_and_handover_waits(db):
    today = dt.date(2026, 11, 20)
    now = dt.datetime(2026, 11, 20, 10)
    with db.begin() as s:
        for kind in ("answered", "answered", "refused", "handoff"):
            _turn(s, "q", kind, now, "passport" if kind == "answered" else None)
        s.add(Feedback(sender="api-x", question="q", answer="a", vote=1, created_at=now))
        s.add(Handoff(sender="api-x", reason="user", summary="[]", status="taken", created_at=now,
                      taken_at=now + dt.timedelta(minutes=3)))
    with db.begin() as s:
        o = insights.overview(s, 7, today)
    assert o["days"][-1] == (today, 4)
    assert o["outcomes"] == {"answered": 2, "refused": 1, "handoff": 1, "other": 0}
    assert o["matters"] == [("passport", 2)] and o["votes"] == {"up": 1, "down": 0} and o["waits"] == [3.0]


# ---------- pages, in-process (no index needed for these) ----------
@pytest.fixture()
def client(tmp_path, db):
    import server
    from settings import Settings, get_settings
    from web.deps import app_settings

    settings = Settings(database_url=str(db.kw["bind"].url), index_dir=tmp_path / "index")
    mp = pytest.MonkeyPatch()  # code that reads get_settings() directly (rate limits, the shared store)
    mp.setenv("BST_DATABASE_URL", settings.database_url)
    mp.setenv("BST_INDEX_DIR", str(settings.index_dir))
    get_settings.cache_clear()
    with db.begin() as s:
        s.add(StaffUser(username="admin1", display_name="管理员甲", password_hash=PasswordHasher().hash("pw-admin-1"),
                        role="admin"))
        s.add(StaffUser(username="agent1", display_name="坐席乙", password_hash=PasswordHasher().hash("pw-agent-1"),
                        role="agent"))
    server.app.dependency_overrides[app_settings] = lambda: settings
    c = TestClient(server.app)  # no lifespan: no engine, no Rasa — pages only
    yield c
    server.app.dependency_overrides.clear()
    mp.undo()
    get_settings.cache_clear()


def login(c, user, pw):
    r = c.post("/api/auth/login", json={"username": user, "password": pw})
    assert r.status_code == 200, r.text


def test_admin_pages_need_an_admin_login(client):
    r = client.get("/admin/guides", follow_redirects=False)
    assert r.status_code == 303 and unquote(r.headers["location"]) == "/login?next=/admin/guides"
    assert client.post("/api/admin/index/builds", json={}).status_code == 401
    login(client, "agent1", "pw-agent-1")
    r = client.get("/admin/guides", follow_redirects=False)  # an agent is sent to log in as an admin
    assert r.status_code == 303 and "why=role" in r.headers["location"]
    assert client.get("/api/admin/audit").status_code == 403


def test_guide_edit_shows_the_error_next_to_the_field_then_saves_a_revision(client):
    login(client, "admin1", "pw-admin-1")
    page = client.get("/admin/guides")
    assert page.status_code == 200 and "普通护照" in page.text and "<script" in page.text
    assert "onclick" not in page.text and "<script>" not in page.text  # no inline script (CSP 'self')
    r = client.post("/admin/guides/passport", data={"fee": "150元/本", "promised_limit": "三天", "reason": "调价"})
    assert r.status_code == 422
    assert 'id="e-promised_limit"' in r.text and "承诺时限" in r.text and "应为整数" in r.text
    assert 'value="150元/本"' in r.text  # what the admin typed is kept
    r = client.post("/admin/guides/passport", data={"fee": "150元/本", "promised_limit": "7", "reason": "调价"},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/admin/guides/passport?saved=2"
    revs = client.get("/api/admin/guides/passport/revisions").json()
    assert [(x["number"], x["author"], x["reason"]) for x in revs][:1] == [(2, "admin1", "调价")]
    diff = client.get("/admin/guides/passport/diff", params={"a": 1, "b": 2})
    assert "150元/本" in diff.text and "收费标准" in diff.text
    audit = client.get("/api/admin/audit").json()["items"]
    assert audit[0]["action"] == "guide.save" and audit[0]["actor"] == "admin1"


class _Form(HTMLParser):
    """What a browser would submit for the guide form: inputs, ticked boxes, selected options, textareas."""

    def __init__(self):
        super().__init__()
        self.fields, self._select, self._textarea, self._in_form = [], None, None, False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and a.get("class") == "guide":
            self._in_form = True
        if not self._in_form:
            return
        if tag == "input" and a.get("name"):
            if a.get("type") != "checkbox" or "checked" in a:
                self.fields.append((a["name"], a.get("value", "on" if a.get("type") == "checkbox" else "")))
        elif tag == "select":
            self._select = [a["name"], None, None]
        elif tag == "option" and self._select:
            value = a.get("value")
            self._select[2] = value
            if "selected" in a:
                self._select[1] = value if value is not None else ""
        elif tag == "textarea":
            self._textarea = [a["name"], ""]

    def handle_data(self, data):
        if self._select and self._select[2] is None and self._select[1] == "":
            self._select[1] = data
        if self._textarea:
            self._textarea[1] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self._in_form = False
        if tag == "select" and self._select:
            self.fields.append((self._select[0], self._select[1] or ""))
            self._select = None
        elif tag == "textarea" and self._textarea:
            self.fields.append(tuple(self._textarea))
            self._textarea = None


def test_posting_the_rendered_form_back_changes_only_the_edited_field(client):
    login(client, "admin1", "pw-admin-1")
    parser = _Form()
    parser.feed(client.get("/admin/guides/passport").text)
    fields = [(k, "150元/本" if k == "fee" else v) for k, v in parser.fields if k != "reason"] + [("reason", "调价")]
    assert len(fields) > 40
    data: dict[str, list[str]] = {}
    for k, v in fields:
        data.setdefault(k, []).append(v)
    r = client.post("/admin/guides/passport", data=data, follow_redirects=False)
    assert r.status_code == 303, re.findall(r'class="error"[^>]*>([^<]*)', r.text)
    d = client.get("/api/admin/guides/passport/diff", params={"a": 1, "b": 2}).json()
    assert [f["field"] for f in d["fields"]] == ["fee"]


def test_new_guide_from_the_template_and_gap_to_guide_question(client, db):
    login(client, "admin1", "pw-admin-1")
    client.get("/admin/guides")  # seeds the database from the repository
    r = client.post("/admin/guides/new", data={"id": "Pet Licence", "name": "养犬登记"})
    assert r.status_code == 422 and "格式不对" in r.text
    r = client.post("/admin/guides/new", data={"id": "pet-licence", "name": "养犬登记"}, follow_redirects=False)
    assert r.status_code == 303
    assert "养犬登记" in client.get("/admin/guides/pet-licence").text
    with db.begin() as s:
        _turn(s, "养狗要办什么证", "refused", dt.datetime.now())
    page = client.get("/admin/feedback")
    assert "养狗要办什么证" in page.text
    client.post("/admin/feedback/to-guide", data={"guide": "pet-licence", "question": "养狗要办什么证"})
    with db.begin() as s:
        assert "养狗要办什么证" in kb.guide_data(kb.current(s, kb.GUIDE, "pet-licence"))["questions"]
    csv_text = client.get("/admin/feedback.csv").content.decode("utf-8-sig")
    assert "养狗要办什么证" in csv_text.splitlines()[1]
    assert client.post("/admin/golden", data={"question": "养狗要办什么证", "must": "养犬登记"},
                       follow_redirects=False).status_code == 303
    assert "养犬登记" in client.get("/admin/index").text
    assert "<svg" in client.get("/admin").text


def test_overview_chart_names_the_matters_not_their_ids(client, db):
    login(client, "admin1", "pw-admin-1")
    with db.begin() as s:
        for _ in range(2):
            _turn(s, "护照要多少钱", "answered", dt.datetime.now(), "passport")
        _turn(s, "结婚要带什么", "answered", dt.datetime.now(), "marriage-registration")
    page = client.get("/admin").text
    chart = page[page.index("热门事项"):]
    chart = chart[:chart.index("</svg>")]
    assert "普通护照" in chart and "结婚登记" in chart
    assert ">passport<" not in chart and "marriage-registration" not in chart


def test_publishing_a_build_with_regressions_needs_a_reason(db, tmp_path):
    from assistant import publishing
    from assistant.db import IndexBuild
    from settings import Settings

    settings = Settings(database_url=str(db.kw["bind"].url), index_dir=tmp_path / "index")
    (settings.index_dir / "v2").mkdir(parents=True)
    (settings.index_dir / "v2" / "manifest.json").write_text("{}")
    report = {"summary": {"worse": 1}, "items": []}
    with db.begin() as s:
        b = IndexBuild(status="done", version="v2", revisions="{}", started_by="a", report=json.dumps(report))
        s.add(b)
        s.flush()
        with pytest.raises(publishing.PublishRefused):
            publishing.publish(s, None, settings, b.id, "admin1")
        assert publishing.publish(s, None, settings, b.id, "admin1", "已人工核对：旧答案本身有误") == "v2"
    assert (settings.index_dir / "CURRENT").read_text().strip() == "v2"


POLICY = """厦门市测试局关于优化办事流程的通知
一、总体要求
（一）全面推行预约办事。各服务中心开设线上预约渠道，群众可通过i厦门预约。
责任单位：市行政服务中心管理委员会
完成时限：2026年12月底
（二）推行容缺受理。非关键材料缺失的，先行受理，限期补齐。
责任单位：各区政府
"""


def _meta(**extra):
    return {"title": "厦门市测试局关于优化办事流程的通知", "short_title": "测试局优化办事流程通知", "issuer": "厦门市测试局",
            "date": "2026-11-01", "doc_number": "厦测〔2026〕1号", "region": "厦门市", "layout": "clauses", **extra}


def test_policy_upload_previews_clauses_then_saves_a_new_document(client, db):
    login(client, "admin1", "pw-admin-1")
    r = client.post("/admin/documents/preview", data=_meta(),
                    files={"file": ("notice.txt", POLICY.encode("utf-8"), "text/plain")})
    assert r.status_code == 200 and "预览" in r.text
    assert "全面推行预约办事" in r.text and "市行政服务中心管理委员会" in r.text and "2026年12月底" in r.text
    r = client.post("/admin/documents", data={**_meta(), "text": POLICY.replace("\n", "\r\n"), "reason": "新文件"},
                    follow_redirects=False)
    assert r.status_code == 303
    with db.begin() as s:
        docs = {json.loads(d.meta)["title"]: d for d in kb.current_all(s, kb.DOCUMENT)}
        new = docs["厦门市测试局关于优化办事流程的通知"]
        assert new.key.startswith("005_") and new.content == POLICY and new.author == "admin1"


def test_docx_is_read_and_a_scanned_pdf_is_refused_clearly(client):
    import docx
    from pypdf import PdfWriter

    login(client, "admin1", "pw-admin-1")
    d = docx.Document()
    for line in POLICY.splitlines():
        d.add_paragraph(line)
    buf = io.BytesIO()
    d.save(buf)
    r = client.post("/admin/documents/preview", data=_meta(), files={"file": ("notice.docx", buf.getvalue())})
    assert r.status_code == 200 and "推行容缺受理" in r.text
    w = PdfWriter()
    w.add_blank_page(595, 842)  # a page with no text layer, like a scan
    buf = io.BytesIO()
    w.write(buf)
    r = client.post("/admin/documents/preview", data=_meta(), files={"file": ("scan.pdf", buf.getvalue())})
    assert r.status_code == 422 and "扫描版 PDF" in r.text
    r = client.post("/admin/documents/preview", data=_meta(), files={"file": ("a.exe", b"MZ")})
    assert r.status_code == 422 and "只支持" in r.text


def test_a_build_can_be_cancelled_and_leaves_no_version_behind(seeded, tmp_path):
    import shutil
    import time

    from assistant import publishing
    from assistant.db import IndexBuild
    from settings import Settings

    index_dir = tmp_path / "index"
    shutil.copytree(ROOT / "var/index", index_dir, ignore=shutil.ignore_patterns(".tmp-*"))
    before = sorted(p.name for p in index_dir.iterdir())
    settings = Settings(database_url=str(seeded.kw["bind"].url), index_dir=index_dir)
    build_id = publishing.start_build(seeded, settings, "admin1")
    with pytest.raises(publishing.BuildRunning):  # one build at a time
        publishing.start_build(seeded, settings, "admin1")
    assert publishing.cancel(seeded, build_id, "admin1")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with seeded() as s:
            if s.get(IndexBuild, build_id).status != "running":
                break
        time.sleep(0.2)
    with seeded() as s:
        assert s.get(IndexBuild, build_id).status == "cancelled"
        assert publishing.status(s, build_id)["phase"] == "cancelled"
    assert sorted(p.name for p in index_dir.iterdir() if not p.name.startswith(".tmp-")) == before
    assert not (tmp_path / "staging" / f"build-{build_id}").exists()
