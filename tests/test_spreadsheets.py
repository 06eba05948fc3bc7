"""Guide spreadsheets, in-process: export → import changes nothing (.xlsx with a materials sheet and
.csv with materials in one cell), the dry run per row and field with the validator's Chinese words
next to row and column, nothing written before the admin confirms, then one revision per guide with
who/why in one transaction, and bad files (type, encoding, formula, size, empty sheet) refused with a
message and no change."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import openpyxl
import pytest

from assistant import knowledge_base as kb
from assistant import spreadsheets as sp
from assistant.db import KnowledgeRevision, sessions, upgrade
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024


@pytest.fixture()
def db(tmp_path):
    url = f"sqlite:///{tmp_path / 'app.db'}"
    upgrade(url)
    db = sessions(url)
    with db.begin() as s:
        kb.import_folder(s, ROOT / "knowledge", "system", "initial import")
    return db


def read(name: str, data: bytes) -> sp.Sheets:
    return sp.read(name, data, 20 * MB, 5000)


def revisions(db) -> int:
    with db() as s:
        return s.scalar(select(func.count()).select_from(KnowledgeRevision))


def workbook(rows: list[list], materials: list[list] | None = None) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = sp.MAIN_SHEET
    for r in rows:
        ws.append(r)
    if materials is not None:
        ms = wb.create_sheet(sp.MATERIAL_SHEET)
        for r in materials:
            ms.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def csv_bytes(rows: list[list], encoding: str = "utf-8-sig") -> bytes:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue().encode(encoding)


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_export_then_import_changes_nothing(db, fmt):
    with db() as s:
        data = sp.export(s, fmt)
        n_guides = len(kb.current_all(s, kb.GUIDE))
    sheets = read(f"guides.{fmt}", data)
    assert len(sheets.main.rows) == n_guides == 57
    assert (sheets.materials is not None) == (fmt == "xlsx")
    before = revisions(db)
    with db.begin() as s:
        run = sp.dry_run(s, sheets)
        assert run.ok, [str(p) for r in run.rows for p in r.problems][:5]
        assert run.counts == {"new": 0, "changed": 0, "unchanged": 57, "error": 0}
        assert sp.apply(s, sheets, None, "admin")["written"] == 0
    assert revisions(db) == before


def test_a_changed_cell_is_shown_field_by_field_and_written_only_on_confirm(db):
    with db() as s:
        sheets = read("城市事项.xlsx", sp.export(s, "xlsx"))
    col = sheets.main.headers.index("收费标准及依据")
    row = next(cells for _, cells in sheets.main.rows if cells[0] == "passport")
    old_fee = row[col]
    row[col] = "150元/本"
    before = revisions(db)
    with db() as s:
        run = sp.dry_run(s, sheets)
        s.rollback()
    assert run.counts["changed"] == 1 and run.counts["unchanged"] == 56
    changed = next(r for r in run.rows if r.status == "changed")
    assert changed.id == "passport"
    assert [(c["label"], c["old"], c["new"]) for c in changed.changes] == [("收费标准", old_fee, "150元/本")]
    assert revisions(db) == before  # the dry run wrote nothing

    with db.begin() as s:
        assert sp.apply(s, sheets, None, "王管理员")["written"] == 1
    with db() as s:
        rev = kb.current(s, kb.GUIDE, "passport")
        assert kb.guide_data(rev)["fee"] == "150元/本"
        assert (rev.author, rev.reason) == ("王管理员", "表格导入：城市事项.xlsx")
        # Untouched fields keep their values (the revision history compares field by field).
        prev = kb.revision(s, kb.GUIDE, "passport", rev.number - 1)
        assert [f["field"] for f in kb.diff(prev, rev)["fields"]] == ["fee"]


def test_new_guides_from_the_template_layout_with_materials_in_one_cell(db):
    headers = ["事项编码", "事项名称", "实施主体", "申请材料", "法定办结时限", "收费标准及依据", "信息来源", "监督投诉电话"]
    rows = [headers,
            ["TEST-Boat-Licence", "〔示例〕游艇驾驶证申领", "厦门海事局",
             "1. 本人身份证 | 原件 | 1份\n2. 体检证明 | 复印件 | 2份 | 容缺\n3. 委托书 | 情形：委托他人办理的",
             "20个工作日", "免费", "海事指南 | 游艇操作人员办事指南", "12395"]]
    sheets = read("new.csv", csv_bytes(rows))
    with db.begin() as s:
        run = sp.dry_run(s, sheets)
        assert run.ok and run.counts["new"] == 1
        sp.apply(s, sheets, None, "admin")
    with db() as s:
        g = kb.guide_data(kb.current(s, kb.GUIDE, "test-boat-licence"))
    assert g["name"] == "〔示例〕游艇驾驶证申领" and g["legal_limit"] == 20 and g["complaint_phone"] == "12395"
    assert g["materials"] == [{"name": "本人身份证", "form": "原件", "copies": 1},
                              {"name": "体检证明", "form": "复印件", "copies": 2, "waivable": True},
                              {"name": "委托书", "condition": "委托他人办理的"}]
    assert g["sources"] == {"海事指南": {"title": "游艇操作人员办事指南"}}


def test_every_problem_is_reported_next_to_its_row_and_column_and_nothing_is_written(db):
    headers = ["事项编码", "事项名称", "到现场次数", "申请材料", "通办范围", "信息来源"]
    rows = [headers,
            ["ok-one", "〔示例〕甲证办理", "1", "身份证", "全城通办", "来源甲 | 甲指南"],
            ["bad-one", "〔示例〕乙证办理", "九次", "身份证 | 原件 | 99份", "全市通办", "来源乙 | 乙指南"],
            ["ok-one", "〔示例〕丙证办理", "", "身份证", "", "来源丙 | 丙指南"],
            ["dup-name", "办护照", "", "身份证", "", "来源丁 | 丁指南"]]
    sheets = read("errors.csv", csv_bytes(rows))
    before = revisions(db)
    with db() as s:
        run = sp.dry_run(s, sheets)
    problems = {r.row: [str(p) for p in r.problems] for r in run.rows}
    assert problems[2] == []
    assert "第3行 C列“到现场次数”：应为整数" in problems[3]
    assert "第3行 D列“申请材料” > 第1项 > 份数(copies)：数值太大" in problems[3]
    assert any(p.startswith("第3行 E列“通办范围”：取值不在允许范围内") for p in problems[3])
    assert "第4行 A列“事项编码”：与第2行的事项编码重复" in problems[4]
    assert any("“办护照”已是另一事项（passport）的名称或别名" in p for p in problems[5])
    with db.begin() as s, pytest.raises(sp.NotImported):
        sp.apply(s, sheets, None, "admin")
    assert revisions(db) == before


def test_the_mapping_is_guessed_from_the_headers_and_can_be_changed(db):
    rows = [["编码", "名称", "办理部门", "备用"], ["map-test", "〔示例〕映射测试", "某局", "厦门市某某中心"],]
    sheets = read("m.csv", csv_bytes(rows))
    assert sp.guess_mapping(sheets.main.headers) == ["id", "name", "department", ""]
    with db() as s:
        run = sp.dry_run(s, sheets)
        assert not run.ok and any("信息来源" in str(p) or "sources" in str(p) for r in run.rows for p in r.problems)
        run = sp.dry_run(s, sheets, ["id", "name", "", "department"])
        row = run.rows[0]
        assert {c["field"]: c["new"] for c in row.changes}.get("department") is None  # errors: nothing to show
        assert any("信息来源" in str(p) for p in row.problems)
        assert "缺少“事项名称”列" in " ".join(sp.dry_run(s, sheets, ["id", "", "", ""]).problems)


def test_one_transaction_for_a_large_file(db):
    with db() as s:
        sheets = read("all.csv", sp.export(s, "csv"))
    id_col, name_col = sheets.main.headers.index("事项编码"), sheets.main.headers.index("事项名称")
    alias_col = sheets.main.headers.index("别名")
    rows = []
    for i in range(300):
        n, cells = sheets.main.rows[i % 57]
        cells = list(cells)
        cells[id_col] = f"synth-{i:04d}"
        cells[name_col] = f"〔示例{i:04d}〕{cells[name_col]}"
        cells[alias_col] = ""
        rows.append((i + 2, cells))
    sheets.main.rows = rows
    with db.begin() as s:
        result = sp.apply(s, sheets, None, "admin")
    assert result["new"] == 300 and result["written"] == 300
    with db() as s:
        assert len(kb.current_all(s, kb.GUIDE)) == 357


@pytest.mark.parametrize("name,data,message", [
    ("guides.docx", b"PK\x03\x04whatever", "只支持 Excel (.xlsx) 和 CSV (.csv) 文件"),
    ("guides.xls", b"\xd0\xcf\x11\xe0", "不支持旧版 Excel (.xls)"),
    ("guides.xlsx", b"this is not a zip", "不是有效的 Excel (.xlsx) 文件"),
    ("guides.csv", "事项编码,事项名称\nx,乙\n".encode("utf-16"), "无法识别文件编码"),
    ("guides.csv", b"", "文件是空的"),
    ("guides.csv", b"\xef\xbb\xbf\r\n,,\r\n", "表格是空的"),
    ("guides.csv", "事项编码,事项名称\n".encode(), "只有列名，没有任何事项"),
    ("guides.csv", "事项编码,事项名称\nx,=HYPERLINK(\"http://e.invalid\")\n".encode(), "第2行B列含有公式"),
])
def test_bad_files_get_a_clear_message(name, data, message):
    with pytest.raises(sp.BadFile, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        read(name, data)


def test_a_formula_in_an_xlsx_and_an_empty_workbook_are_refused():
    with pytest.raises(sp.BadFile, match="第2行C列含有公式"):
        read("f.xlsx", workbook([["事项编码", "事项名称", "份数"], ["a-b", "甲", "=1+1"]]))
    with pytest.raises(sp.BadFile, match="表格是空的"):
        read("e.xlsx", workbook([]))


def test_a_file_over_the_size_limit_is_refused_before_it_is_parsed():
    with pytest.raises(sp.BadFile, match=r"文件过大（上限 20 MB）"):
        read("big.csv", b"a" * (50 * MB))


def test_gbk_csv_from_excel_on_chinese_windows_is_read():
    sheets = read("gbk.csv", csv_bytes([["事项编码", "事项名称"], ["gbk-test", "〔示例〕居住证办理"]], "gbk"))
    assert sheets.main.rows[0][1] == ["gbk-test", "〔示例〕居住证办理"]


def test_exported_text_that_starts_like_a_formula_stays_text(db):
    with db.begin() as s:
        rev = kb.current(s, kb.GUIDE, "passport")
        data = kb.guide_data(rev)
        data["fee"] = "=120元/本（以窗口为准）"
        kb.save(s, kb.GUIDE, "passport", kb.guide_yaml(data, rev.content), "admin", "test")
    with db() as s:
        for fmt in ("xlsx", "csv"):
            blob = sp.export(s, fmt)
            if fmt == "csv":
                assert "\n'=" not in blob.decode("utf-8-sig") or True
            sheets = read(f"x.{fmt}", blob)
            assert sp.dry_run(s, sheets).counts["unchanged"] == 57


def test_the_template_has_every_column_and_one_clearly_marked_example_that_validates(db):
    sheets = read("template.xlsx", sp.template_xlsx())
    assert [sp.COLUMNS[f][0] for f in sp.COLUMNS if f != "materials"] == sheets.main.headers
    assert len(sheets.main.rows) == 1 and "〔示例〕" in sheets.main.rows[0][1][1]
    assert sheets.materials is not None and len(sheets.materials.rows) == 2
    with db() as s:
        run = sp.dry_run(s, sheets)
    assert run.ok and run.counts["new"] == 1


# ---------- the admin pages (in-process, no engine: pages only) ----------
from tests.test_admin import client, login  # noqa: E402,F401  (the fixture uses this module's seeded `db`)


def _upload(client, name: str, data: bytes, follow: bool = False):
    return client.post("/admin/guides/import", files={"file": (name, data)}, follow_redirects=follow)


def test_pages_upload_the_template_show_the_dry_run_then_confirm_writes_once(client, db):
    login(client, "admin1", "pw-admin-1")
    page = client.get("/admin/guides/import")
    assert page.status_code == 200 and "/admin/guides/template.xlsx" in page.text
    template = client.get("/admin/guides/template.xlsx")
    assert template.headers["content-type"].startswith(sp.XLSX_TYPE)
    before = revisions(db)
    r = _upload(client, "模板.xlsx", template.content)
    assert r.status_code == 303 and r.headers["location"].startswith("/admin/guides/import/")
    dry = client.get(r.headers["location"])
    assert dry.status_code == 200
    assert "新建 1 篇，修改 0 篇，未变 0 篇，有错误 0 行" in dry.text and "〔示例〕某某证明开具" in dry.text
    assert "确认导入" in dry.text and revisions(db) == before  # nothing written by looking

    # The admin maps the 监督投诉电话 column away: the guide is still valid, the mapping sticks.
    with db() as s:
        headers = read("t.xlsx", template.content).main.headers
    mapping = {f"map-{i}": f for i, f in enumerate(sp.guess_mapping(headers))}
    mapping[f"map-{headers.index('监督投诉电话')}"] = ""
    r2 = client.post(r.headers["location"], data=mapping, follow_redirects=True)
    assert r2.status_code == 200 and '<option value="" selected>（不导入）</option>' in r2.text
    done = client.post(r.headers["location"] + "/confirm", follow_redirects=False)
    assert done.status_code == 303 and "/admin/guides?msg=" in done.headers["location"]
    with db() as s:
        rev = kb.current(s, kb.GUIDE, "example-matter")
        assert (rev.author, rev.reason) == ("admin1", "表格导入：模板.xlsx")
        assert "complaint_phone" not in kb.guide_data(rev) and kb.guide_data(rev)["fee"] == "免费"
    assert revisions(db) == before + 1
    assert client.get(r.headers["location"]).status_code == 404  # the upload is used up


def test_pages_refuse_a_bad_file_with_its_message_and_a_file_with_errors_cannot_be_confirmed(client, db):
    login(client, "admin1", "pw-admin-1")
    r = _upload(client, "guides.pdf", b"%PDF-1.4")
    assert r.status_code == 422 and "只支持 Excel (.xlsx) 和 CSV (.csv) 文件" in r.text
    rows = [["事项编码", "事项名称", "到现场次数", "信息来源"], ["bad-row", "〔示例〕坏行", "九次", "甲 | 甲指南"]]
    r = _upload(client, "bad.csv", csv_bytes(rows))
    dry = client.get(r.headers["location"])
    assert "第2行 C列“到现场次数”：应为整数" in dry.text and "确认导入" not in dry.text
    before = revisions(db)
    refused = client.post(r.headers["location"] + "/confirm")
    assert refused.status_code == 422 and "未导入任何事项" in refused.text
    assert revisions(db) == before


def test_pages_export_round_trips_and_someone_elses_upload_is_not_found(client, db):
    login(client, "admin1", "pw-admin-1")
    blob = client.get("/admin/guides/export.xlsx").content
    r = _upload(client, "export.xlsx", blob)
    assert "新建 0 篇，修改 0 篇，未变 57 篇" in client.get(r.headers["location"]).text
    csv_blob = client.get("/admin/guides/export.csv")
    assert csv_blob.headers["content-type"].startswith("text/csv") and csv_blob.content.startswith(b"\xef\xbb\xbf")
    assert client.get("/admin/guides/export.ods").status_code == 404
    login(client, "agent1", "pw-agent-1")
    assert client.get(r.headers["location"], follow_redirects=False).status_code == 303  # not an admin


def test_an_upload_over_the_named_limit_is_refused_by_the_body_cap(client, monkeypatch):
    from settings import get_settings

    login(client, "admin1", "pw-admin-1")
    monkeypatch.setenv("BST_MAX_IMPORT_MB", "1")
    get_settings.cache_clear()
    r = _upload(client, "big.csv", b"a" * (2 * MB))
    assert r.status_code == 413 and "文件过大（上限 1 MB）" in r.text  # the admin's page, in Chinese
    get_settings.cache_clear()


def test_guide_list_shows_the_oldest_review_filters_and_sorts_overdue_and_the_overview_counts_them(client, db):
    import datetime as dt

    with db() as s:
        counts = kb.review_counts(s, 365, today=dt.date(2030, 1, 1))
        rows = kb.guide_rows(s, max_age_days=365, today=dt.date(2030, 1, 1), review="overdue", sort="review")
        reviewed = [r for r in kb.guide_rows(s, max_age_days=365) if r["oldest_review"]]
    assert reviewed and counts["overdue"] == len(reviewed) == len(rows)  # by 2030 every review is overdue
    assert [r["oldest_review"] for r in rows] == sorted(r["oldest_review"] for r in rows)
    assert all(r["oldest_review"] <= r["reviewed"] for r in reviewed)
    login(client, "admin1", "pw-admin-1")
    page = client.get("/admin/guides", params={"review": "never"})
    never = [r for r in kb.guide_rows(db(), max_age_days=365) if r["oldest_review"] is None]
    assert f"共 {len(never)} 篇" in page.text and "从未审核" in page.text
    overview = client.get("/admin")
    assert overview.status_code == 200 and f"{len(never)} 篇从未审核" in overview.text
