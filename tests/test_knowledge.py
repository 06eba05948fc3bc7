"""Knowledge sources → validated records: what an admin and a citizen would notice."""

import datetime as dt
from pathlib import Path

import pytest

from knowledge.__main__ import main as validate_main
from knowledge.guides import load_guides
from knowledge.policies import policy_passages
from knowledge.provenance import provenance_report
from knowledge.records import SOURCES_DIR, load_knowledge

GOOD = Path("knowledge/guides/marriage-registration.yaml").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def passages():
    return policy_passages(SOURCES_DIR)


def test_quancheng_clause_is_one_passage_with_its_units_and_deadline(passages):
    p = next(p for p in passages if p.doc_number == "厦府办〔2018〕138号" and p.clause == "一、(一)")
    for item in ("婚姻登记", "个体工商户", "二手房抵押登记", "营运车辆年审", "社保卡", "出入境", "公证"):
        assert item in p.text
    assert p.responsible and "各区人民政府" in p.responsible
    assert p.deadline == "长期"
    assert p.issuer == "厦门市人民政府办公厅" and p.date == "2018-07-31"


def test_page_chrome_and_debris_are_removed(passages):
    for p in passages:
        for junk in ("返回顶部", "当前位置", "扫描二维码", "版权与免责声明", "打 印", "\ufffd"):
            assert junk not in p.text, (p.id, junk)


def test_table_document_gives_one_passage_per_task_row(passages):
    rows = [p for p in passages if p.doc_id == "004"]
    assert len(rows) == 34
    rota = next(p for p in rows if "周末轮班" in p.text)
    assert rota.region == "海沧区" and rota.clause == "第6项" and rota.deadline == "2017年7月底前"


def test_district_and_out_of_town_documents_are_tagged(passages):
    regions = {p.doc_id: p.region for p in passages}
    assert regions == {"000": "厦门市", "001": "厦门市", "002": "东平县", "003": "湖里区", "004": "海沧区"}


def test_long_clauses_are_split_within_encoder_reach(passages):
    assert max(len(p.text) for p in passages) < 520


def test_all_shipped_guides_validate():
    kb = load_knowledge()
    assert kb.problems == []
    assert len(kb.guides) >= 40
    for g in kb.guides:
        assert g.sources
        for path, prov in g.provenance.items():  # a review date always names what was checked
            assert not prov.reviewed or prov.source in g.sources, (g.id, path)


def _write(tmp_path, name, text):
    (tmp_path / name).write_text(text, encoding="utf-8")


def test_errors_name_file_field_and_problem_without_blocking_others(tmp_path):
    _write(tmp_path, "marriage-registration.yaml", GOOD)
    _write(tmp_path, "broken-fee.yaml", GOOD.replace("id: marriage-registration", "id: broken-fee")
           .replace("trips: 1", "trips: 很多").replace("reviewed: 2026-11-24", "reviewed: 昨天", 1))
    _write(tmp_path, "typo.yaml", GOOD.replace("id: marriage-registration", "id: typo").replace("fee:", "fees:"))
    _write(tmp_path, "not-yaml.yaml", "id: [unclosed")
    guides, problems = load_guides(tmp_path)
    assert [g.id for g in guides] == ["marriage-registration"]
    text = "\n".join(map(str, problems))
    assert "broken-fee.yaml: 跑动次数(trips): 应为整数" in text
    assert "broken-fee.yaml: 事实来源(provenance) > 概述(summary) > 审核日期(reviewed): 日期格式应为 YYYY-MM-DD" in text
    assert "typo.yaml: fees: 不认识的字段" in text
    assert "not-yaml.yaml" in text and "YAML" in text


def test_file_name_must_match_id(tmp_path):
    _write(tmp_path, "other-name.yaml", GOOD)
    guides, problems = load_guides(tmp_path)
    assert not guides and "文件名应与编号一致" in str(problems[0])


def test_validate_command_exits_nonzero_with_clear_messages(tmp_path, capsys):
    _write(tmp_path, "bad.yaml", GOOD.replace("id: marriage-registration", "id: bad").replace("sources:", "srcs:"))
    assert validate_main(["--guides", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "信息来源(sources): 缺少必填字段" in err


def test_validate_command_reports_alias_conflicts(tmp_path, capsys):
    _write(tmp_path, "marriage-registration.yaml", GOOD)
    _write(tmp_path, "copy.yaml", GOOD.replace("id: marriage-registration", "id: copy").replace("name: 结婚登记", "name: 结婚登记复制"))
    assert validate_main(["--guides", str(tmp_path)]) == 0
    assert "“扯证”被多篇指南使用" in capsys.readouterr().out


def test_provenance_must_point_at_a_real_fact_and_a_listed_source(tmp_path):
    _write(tmp_path, "a.yaml", GOOD.replace("id: marriage-registration", "id: a")
           .replace("  materials.0:\n", "  materials.9:\n"))
    _write(tmp_path, "b.yaml", GOOD.replace("id: marriage-registration", "id: b")
           .replace("  fee:\n    source: 国务院令第804号", "  fee:\n    source: 不存在的文件"))
    _write(tmp_path, "c.yaml", GOOD.replace("id: marriage-registration", "id: c")
           .replace("  fee:\n    source: 国务院令第804号\n", "  fee:\n"))
    guides, problems = load_guides(tmp_path)
    text = "\n".join(map(str, problems))
    assert not guides
    assert "a.yaml" in text and "事实不存在" in text and "materials.9" in text
    assert "b.yaml" in text and "“不存在的文件”不在 sources 中" in text
    assert "c.yaml" in text and "已审核(reviewed)的事实必须注明来源(source)" in text


def test_validate_reports_unsourced_flagged_and_stale_facts(tmp_path, capsys):
    _write(tmp_path, "marriage-registration.yaml", GOOD)
    assert validate_main(["--guides", str(tmp_path), "--max-age-days", "100000"]) == 0
    out = capsys.readouterr().out
    assert "审核超过 100000 天 0 项" in out
    assert "无来源 marriage-registration:" in out and "legal_limit" in out  # 即办 has no source yet
    assert "待核实 marriage-registration materials.2: 照片" in out


def test_reviews_older_than_the_allowed_age_are_reported_stale(tmp_path):
    _write(tmp_path, "marriage-registration.yaml", GOOD)
    guides, _ = load_guides(tmp_path)
    fresh = provenance_report(guides, max_age_days=365, today=dt.date(2026, 12, 1))
    late = provenance_report(guides, max_age_days=365, today=dt.date(2028, 1, 1))
    assert fresh.reviewed > 0 and fresh.stale == []
    assert len(late.stale) == late.reviewed == fresh.reviewed
    assert ("marriage-registration", "fee", "2026-11-24") in {(i.guide, i.path, i.detail) for i in late.stale}


def test_flagged_facts_have_what_to_check():
    kb = load_knowledge()
    for g in kb.guides:
        for path in g.needs_check:
            assert len(g.provenance[path].check) >= 8, (g.id, path)
