"""Facts grounded in the texts the system holds (issue 19).

The checker: a fact citing a held law's article is grounded only when the article says its figures
and documents; a deliberately wrong figure fails `python -m knowledge`; a superseded text is never
ground for a current fact. Citizens: the clause pages, each fact's article on the guide page, and
the six facts the issue found wrong, as the chat's answer code now states them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient

from assistant.answer import Context
from knowledge.grounding import (CONTRADICTED, GROUNDED, NO_ARTICLE, NOT_HELD, UNSOURCED, article_sources,
                                 check_guide, document_names, figures, held_texts)
from knowledge.policies import law_passages, parse_articles, policy_passages
from knowledge.records import GUIDES_DIR, SOURCES_DIR, load_knowledge
from knowledge.schema import Guide

ROOT = Path(__file__).resolve().parents[1]


def guide(**overrides) -> Guide:
    data = yaml.safe_load((GUIDES_DIR / "residence-permit.yaml").read_text(encoding="utf-8"))
    data.update(overrides)
    return Guide.model_validate(data)


def status(g: Guide, path: str):
    return next(f for f in check_guide(g) if f.path == path)


# ---------- the held texts ----------

def test_laws_are_split_into_their_articles_by_the_clause_parser():
    held = held_texts()
    assert len(held["resident-id-card-law"].articles) == 23
    assert list(held["civil-code-marriage-family"].articles)[0] == "第一千零四十条"  # only the 婚姻家庭编
    art = held["residence-permit-regulation"].articles["第二十一条"]
    assert "办理签注手续不得收取费用" in art.text
    passages = law_passages(SOURCES_DIR)
    assert {p.source_type for p in passages} == {"law"} and any(p.clause == "第十二条" for p in passages)
    # laws are held for grounding, not retrieved as if they were Xiamen's procedure
    assert all(p.source_type == "policy" for p in policy_passages(SOURCES_DIR))


def test_every_registered_law_records_its_version_and_the_superseded_one_says_by_what():
    held = held_texts()
    laws = [h.doc for h in held.values() if h.doc.kind == "law"]
    assert len(laws) >= 20 and all(d.date and d.issuer and d.region == "全国" for d in laws)
    old = held["marriage-registration-regulation-2003"].doc
    assert not old.current and old.superseded == "2025-05-10" and "804号" in old.superseded_by


def test_chinese_numerals_and_units_are_compared_as_figures():
    assert figures("自受理之日起十五日内，未满十六周岁") == {("15", "日"), ("16", "岁")}
    assert figures("15个工作日；工本费20元") == {("15", "日"), ("20", "元")}
    assert figures("2022年10月1日起施行") == set()  # dates are not figures of a rule
    assert document_names("本人有效居民身份证或社会保障卡") == ["居民身份证", "社会保障卡"]


# ---------- the check ----------

def test_a_fact_its_article_states_is_grounded():
    g = guide()
    assert status(g, "fee").status == GROUNDED  # 首次免收工本费, 签注不收费 ← 第二十一条
    assert status(g, "time_notes").status == GROUNDED  # 15日, 30日 ← 第九条
    assert status(g, "materials.0").status == GROUNDED  # 居民身份证 ← 第九条


def test_a_wrong_figure_or_a_missing_article_or_document_is_contradicted():
    data = yaml.safe_load((GUIDES_DIR / "residence-permit.yaml").read_text(encoding="utf-8"))
    data["time_notes"] = "公安机关自受理之日起20日内制作发放居住证"
    data["materials"][0]["name"] = "本人户口簿"
    data["provenance"]["fee"]["clause"] = "第九十九条"
    g = Guide.model_validate(data)
    assert status(g, "time_notes").status == CONTRADICTED and "20日" in status(g, "time_notes").detail
    assert status(g, "materials.0").status == CONTRADICTED and "户口簿" in status(g, "materials.0").detail
    assert status(g, "fee").status == CONTRADICTED and "第九十九条" in status(g, "fee").detail


def test_a_superseded_text_never_grounds_a_fact():
    marriage = yaml.safe_load((GUIDES_DIR / "marriage-registration.yaml").read_text(encoding="utf-8"))
    g = Guide.model_validate(marriage)
    f = status(g, "materials.0")  # cites 国务院令第804号; only the 2003 text is held
    assert f.status == NOT_HELD and "已被取代" in f.detail
    # Naming the regulation by title only does not fall back on the old text either.
    marriage["sources"]["国务院令第804号"].pop("doc_number")
    f = status(Guide.model_validate(marriage), "materials.0")
    assert f.status == NOT_HELD


def test_a_district_text_grounds_a_city_wide_guide_only_with_a_warning():
    data = yaml.safe_load((GUIDES_DIR / "appointment-booking.yaml").read_text(encoding="utf-8"))
    data["sources"]["海沧分工表"] = {"title": "海沧区提升行政服务效能实施方案责任分工表"}
    data["provenance"]["scope_notes"] = {"source": "海沧分工表", "clause": "第19项"}
    f = status(Guide.model_validate(data), "scope_notes")
    assert f.status == GROUNDED and f.articles == ("第19项",)
    assert "仅适用于海沧区，不是厦门市的统一规定" in f.detail


def test_statuses_for_unsourced_and_unnamed_articles():
    g = guide()
    assert status(g, "phone").status == UNSOURCED
    data = yaml.safe_load((GUIDES_DIR / "residence-permit.yaml").read_text(encoding="utf-8"))
    data["provenance"]["fee"].pop("clause")
    assert status(Guide.model_validate(data), "fee").status == NO_ARTICLE


def test_validate_fails_on_a_deliberately_wrong_figure_in_a_temporary_guide(tmp_path):
    guides = tmp_path / "guides"
    shutil.copytree(GUIDES_DIR, guides)
    path = guides / "id-card-renewal.yaml"
    text = path.read_text(encoding="utf-8")
    assert "六十日内发放" in text
    path.write_text(text.replace("六十日内发放", "九十日内发放"), encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "knowledge", "--guides", str(guides), "--brief"], cwd=ROOT,
                         capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 1
    assert "id-card-renewal.yaml: 事实 time_notes 与所引条文不符" in run.stderr and "90日" in run.stderr
    assert "与条文不符 1" in run.stdout


def test_the_repository_validates_and_prints_the_grounding_report():
    run = subprocess.run([sys.executable, "-m", "knowledge"], cwd=ROOT, capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr
    assert "事实依据核对" in run.stdout and "与条文不符 0" in run.stdout
    assert "  residence-permit: 有据" in run.stdout  # per guide


def test_every_fact_citing_a_held_article_is_grounded():
    kb = load_knowledge()
    bad = [(f.guide, f.path, f.detail) for g in kb.guides for f in check_guide(g) if f.status == CONTRADICTED]
    assert bad == []


def test_every_fee_time_limit_and_material_is_grounded_sourced_with_a_date_or_flagged():
    kb = load_knowledge()
    loose = []
    for g in kb.guides:
        grounded = {f.path for f in check_guide(g) if f.status == GROUNDED}
        for path in g.fact_paths():
            if path.split(".")[0] not in ("fee", "legal_limit", "promised_limit", "time_notes", "materials"):
                continue
            entry = g.source_of(path)
            if path not in grounded and not (entry and entry.reviewed) and not g.flagged(path):
                loose.append((g.id, path))
    assert loose == []


def test_no_fact_rests_on_the_old_vehicle_inspection_periods():
    g = Guide.model_validate(yaml.safe_load((GUIDES_DIR / "vehicle-inspection.yaml").read_text(encoding="utf-8")))
    for f in check_guide(g):
        assert not (f.held == "road-traffic-safety-regulation" and "第十六条" in f.articles), f


def test_the_admin_form_refuses_a_contradicted_fact_and_shows_each_facts_status():
    from assistant import knowledge_base as kb
    from web.admin import _grounding

    text = (GUIDES_DIR / "residence-permit.yaml").read_text(encoding="utf-8")
    data, problems = kb.validate_guide("residence-permit", text.replace("15日内制作发放", "20日内制作发放"))
    assert data is None and any("事实 time_notes 与所引条文不符" in p.message for p in problems)
    assert kb.problem_field(problems[0]) == "provenance"  # shown next to the provenance rows
    rows = _grounding(yaml.safe_load(text))
    fee = rows["fee"][0]
    assert fee["label"] == "有据" and fee["articles"] == [("第二十一条", "/sources/residence-permit-regulation#第二十一条")]


from tests.test_admin import client as admin_client, db, login  # noqa: E402,F401  (fixtures: in-process admin pages)


def test_the_admin_guide_form_shows_grounding_with_the_article_one_click_away(admin_client):
    login(admin_client, "admin1", "pw-admin-1")
    page = admin_client.get("/admin/guides/residence-permit").text
    assert "对照条文" in page and 'class="ground-grounded"' in page
    assert 'href="/sources/residence-permit-regulation#第二十一条"' in page
    marriage = admin_client.get("/admin/guides/marriage-registration").text
    assert "引用但未收录" in marriage and "已被取代" in marriage


# ---------- answers and pages ----------

def test_article_sources_are_in_the_reply_payload_contract_form():
    g = guide()
    out = article_sources(g, ["fee", "materials.0", "phone", "no.such.fact"])
    assert {"type": "article", "source": "residence-permit-regulation", "title": "居住证暂行条例",
            "article": "第二十一条", "url": "/sources/residence-permit-regulation#第二十一条"} in out
    assert any(s["article"] == "第九条" for s in out)
    assert len(out) == len({(s["source"], s["article"]) for s in out})  # each article once
    assert article_sources(g, ["phone"]) == []  # unsourced: nothing to link


@pytest.fixture(scope="module")
def client():
    from web import sources

    app = FastAPI()
    app.include_router(sources.router)
    return TestClient(app)


def test_the_article_api_and_page(client):
    r = client.get("/api/sources/residence-permit-regulation/第二十一条")
    assert r.status_code == 200
    body = r.json()
    assert "签注手续不得收取费用" in body["text"] and body["current"] is True
    assert body["url"] == "/sources/residence-permit-regulation#第二十一条"
    meta = client.get("/api/sources/resident-id-card-law").json()
    assert meta["version_date"] == "2011-10-29" and "第十二条" in meta["articles"]
    page = client.get("/sources/residence-permit-regulation").text
    assert 'id="第二十一条"' in page and "签注手续不得收取费用" in page
    old = client.get("/sources/marriage-registration-regulation-2003").text
    assert "被取代" in old and "不是现行规定" in old


def test_unknown_sources_and_articles_are_a_clear_404(client):
    r = client.get("/api/sources/no-such-law/第一条")
    assert r.status_code == 404 and r.json()["detail"] == "没有收录这份文件"
    r = client.get("/api/sources/resident-id-card-law/第九十九条")
    assert r.status_code == 404 and r.json()["detail"] == "这份文件没有这一条"
    assert client.get("/sources/no-such-law").status_code == 404


def test_the_guide_page_lists_each_facts_article_with_a_link():
    from fastapi.templating import Jinja2Templates
    from starlette.requests import Request

    from web import guide_view

    view = guide_view.view(guide())
    fee = next(f for f in view["grounding"] if f["path"] == "fee")
    assert fee["articles"] == [{"label": "第二十一条", "url": "/sources/residence-permit-regulation#第二十一条"}]
    templates = Jinja2Templates(directory=str(ROOT / "web" / "templates"))
    request = Request({"type": "http", "method": "GET", "path": "/guides/residence-permit", "headers": [],
                       "query_string": b""})
    html = templates.get_template("citizen/guide.html").render(g=view, request=request)
    assert 'href="/sources/residence-permit-regulation#第二十一条"' in html


# ---------- the six facts, as a citizen asks them ----------

def ask(answerer, q, **ctx):
    return answerer.run(q, Context(**ctx))


def test_unemployment_registration_needs_no_termination_certificate(answerer):
    a = ask(answerer, "失业登记要带什么")
    assert a.matter == "unemployment-registration"
    assert "身份证件" in a.text and "失业人员登记表" in a.text
    assert "与原单位终止或解除劳动关系的证明（" not in a.text  # not listed as a material
    g = answerer.guides["unemployment-registration"]
    assert not any("终止或解除劳动关系的证明" == m.name for m in g.materials)


def test_non_residents_can_register_unemployment_where_they_live_worked_or_were_insured(answerer):
    a = ask(answerer, "外地户口在厦门失业能登记吗")
    assert a.matter == "unemployment-registration"
    assert "常住地" in a.text and "参保地" in a.text
    assert "以厦门规定为准" not in a.text


def test_emergency_treatment_elsewhere_counts_as_filed(answerer):
    a = ask(answerer, "在外地急诊抢救没备案能报销吗", matter="medical-treatment-elsewhere-filing")
    assert "视同已备案" in a.text
    assert "补办备案" not in a.text


def test_a_newborn_is_enrolled_in_medical_insurance_on_the_birth_certificate_alone(answerer):
    a = ask(answerer, "宝宝出生后怎么参加医保要带什么", matter="medical-insurance-enrolment")
    assert "出生医学证明" in a.text
    assert "出生医学证明和户口簿" not in a.text
    bundle = answerer.guides["newborn-bundle"]
    hukou = next(m for m in bundle.materials if "户口簿" in m.name)
    assert "医保参保" in (hukou.condition or "") and "不需要户口簿" in hukou.condition


def test_criminal_record_notarization_does_not_require_the_certificate_first(answerer):
    a = ask(answerer, "无犯罪记录公证怎么办，先去哪里开证明")
    assert a.matter == "notarization-education-criminal-record"
    assert "须先取得公安机关出具的无犯罪记录证明" not in a.text
    assert "公证处" in a.text and "查询" in a.text


def test_the_senior_citizen_card_is_no_longer_issued(answerer):
    a = ask(answerer, "老年人优待证在哪里办")
    assert a.matter == "senior-citizen-card"
    assert "2025年5月1日" in a.text and "居民身份证" in a.text and "不再办理" in a.text


def test_residence_permit_endorsement_is_free(answerer):
    a = ask(answerer, "居住证签注要收费吗", matter="residence-permit")
    assert "签注不收费" in a.text
