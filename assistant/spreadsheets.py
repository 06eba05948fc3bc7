"""Guides as spreadsheets: import (.xlsx, .csv) with a dry run, export from the current revisions, a template.

The columns are the standard elements of a 办事指南 (事项名称, 实施主体, 设定依据, 受理条件, 申请材料 …),
one row per matter, keyed by 事项编码 (the guide id, lower-cased). Materials are one line per material in
the 申请材料 cell (``名称 | 原件 | 2份 | 容缺 | 情形：… | 备注``) or, in an .xlsx, a second sheet 「申请材料」
with one row per material keyed by 事项编码. Itemised fields (受理条件, 办理流程, 常见问法 …) hold one item
per line; 办理地点, 信息来源 and 事实来源 one entry per line with positional parts separated by ``|``.

Reading a file never writes anything: `dry_run` maps the columns (adjustable), builds each row's guide
on top of its current revision (columns not mapped keep the current value), validates it with the same
validator as `python -m knowledge` and reports, per row, the fields that would change and every problem
next to its row and column. `apply` writes all rows as new revisions in the caller's one transaction
(who = the admin, why = the file's name) and refuses while any row has a problem. `export` writes the
current revisions in the same layout, so export → import changes nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from dataclasses import dataclass, field

import yaml
from sqlalchemy.orm import Session

from assistant import audit
from assistant import knowledge_base as kb
from knowledge.guides import Problem, validate_data
from knowledge.schema import FIELD_LABELS, Guide

MAIN_SHEET, MATERIAL_SHEET = "办事指南", "申请材料"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# Guide field → (column header, other headers it is recognised by). Order = the export's column order.
COLUMNS: dict[str, tuple[str, tuple[str, ...]]] = {
    "id": ("事项编码", ("编码", "事项代码", "编号", "id")),
    "name": ("事项名称", ("名称", "name")),
    "matter_type": ("事项类型", ()),
    "kind": ("指南类型", ("kind",)),
    "category": ("分类", ("类别", "事项分类", "category")),
    "region": ("适用地区", ("地区", "行政区划", "region")),
    "aliases": ("别名", ("事项别名", "aliases")),
    "questions": ("常见问法", ("常见问题", "questions")),
    "summary": ("概述", ("事项概述", "摘要", "summary")),
    "department": ("实施主体", ("实施机关", "办理部门", "department")),
    "applicants": ("申请对象", ("服务对象", "applicants")),
    "legal_basis": ("设定依据", ("法律依据", "legal_basis")),
    "conditions": ("受理条件", ("办理条件", "申请条件", "conditions")),
    "materials": ("申请材料", ("材料", "申请材料目录", "materials")),
    "steps": ("办理流程", ("流程", "办理程序", "steps")),
    "legal_limit": ("法定办结时限", ("法定时限", "legal_limit")),
    "promised_limit": ("承诺办结时限", ("承诺时限", "promised_limit")),
    "time_notes": ("时限说明", ("time_notes",)),
    "fee": ("收费标准及依据", ("收费标准", "收费", "是否收费", "fee")),
    "locations": ("办理地点和时间", ("办理地点", "办理地点及时间", "locations")),
    "trips": ("到现场次数", ("跑动次数", "到办事现场次数", "trips")),
    "online": ("是否网办", ("网上办理",)),
    "channels": ("办理渠道", ("办理方式", "channels")),
    "scope": ("通办范围", ("scope",)),
    "scope_notes": ("通办说明", ("scope_notes",)),
    "appointment": ("预约方式", ("预约", "appointment")),
    "phone": ("咨询电话", ("咨询方式", "phone")),
    "complaint_phone": ("监督投诉电话", ("投诉电话", "监督投诉方式", "complaint_phone")),
    "sources": ("信息来源", ("来源", "sources")),
    "provenance": ("事实来源", ("provenance",)),
}
IGNORE = ""  # mapping value of a column that is not imported
EXPORT_ONLY = {"online"}  # derived from 办理渠道 when exporting; never read back
LINE_LISTS = ("aliases", "questions", "legal_basis", "conditions", "steps")
TEXTS = ("name", "matter_type", "category", "region", "summary", "department", "applicants", "time_notes", "fee",
         "scope", "scope_notes", "phone", "complaint_phone")
KIND_LABELS = {"matter": "办事事项", "service": "服务说明", "centre": "办事场所"}
ONLINE_CHANNELS = {"i厦门", "闽政通", "网上办事大厅", "微信公众号"}
MATERIAL_COLUMNS = ("事项编码", "材料名称", "材料形式", "份数", "必要性", "适用情形", "电子证照", "备注")
SOURCE_PARTS = ("key", "title", "doc_number", "issued", "seen", "url", "notes")
PROVENANCE_PARTS = ("fact", "source", "clause", "reviewed", "check")
LOCATION_PARTS = ("name", "district", "address", "hours", "phone")
# Excel and LibreOffice run a cell starting with these as a formula: exported text gets a leading
# apostrophe (shown as text, removed again on import).
FORMULA_START = ("=", "+", "-", "@")
_NUMBERED = re.compile(r"^(?:\d{1,2}[、.．](?!\d)|[（(]\d{1,2}[)）])\s*")


class BadFile(ValueError):
    """The file cannot be read as a guide spreadsheet; the message is for the admin (Chinese)."""


@dataclass
class Table:
    """A sheet as text: the header row and the data rows (row numbers as the admin sees them)."""

    name: str
    headers: list[str]
    rows: list[tuple[int, list[str]]]


@dataclass
class Sheets:
    filename: str
    main: Table
    materials: Table | None = None


@dataclass
class RowProblem:
    row: int  # 1-based row number in the sheet, as Excel shows it
    column: str  # "D 收费标准及依据", or the sheet and row of a material
    message: str

    def __str__(self) -> str:
        return f"第{self.row}行 {self.column}：{self.message}" if self.column else f"第{self.row}行：{self.message}"


@dataclass
class RowResult:
    row: int
    id: str
    name: str
    status: str = "unchanged"  # new | changed | unchanged | error
    changes: list[dict] = field(default_factory=list)  # {field, label, old, new}
    problems: list[RowProblem] = field(default_factory=list)
    data: dict | None = None  # the guide to save (None: error or unchanged)


@dataclass
class DryRun:
    filename: str
    headers: list[str]
    mapping: list[str]  # per column: the guide field it fills ("" = ignored)
    rows: list[RowResult]
    problems: list[str] = field(default_factory=list)  # about the file or the mapping, not one row
    materials_sheet: bool = False

    @property
    def counts(self) -> dict[str, int]:
        out = {"new": 0, "changed": 0, "unchanged": 0, "error": 0}
        for r in self.rows:
            out[r.status] += 1
        return out

    @property
    def ok(self) -> bool:
        return not self.problems and not any(r.problems for r in self.rows)


# ---------- reading files ----------
def column_letter(i: int) -> str:
    out = ""
    i += 1
    while i:
        i, rem = divmod(i - 1, 26)
        out = chr(65 + rem) + out
    return out


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).replace("\r\n", "\n").replace("\r", "\n")


def _unescape(text: str) -> str:
    return text[1:] if text[:1] == "'" and text[1:2] in FORMULA_START else text


def _table(name: str, raw_rows: list[tuple[int, list[str]]]) -> Table:
    rows = [(n, cells) for n, cells in raw_rows if any(c.strip() for c in cells)]
    if not rows:
        raise BadFile(f"工作表“{name}”是空的：第一行应为列名，从第二行起每行一个事项")
    (_, headers), data = rows[0], rows[1:]
    headers = [h.strip() for h in headers]
    while headers and not headers[-1]:
        headers.pop()
    if not data:
        raise BadFile(f"工作表“{name}”只有列名，没有任何事项（从第二行起每行一个事项）")
    width = len(headers)
    return Table(name, headers, [(n, (cells + [""] * width)[:width]) for n, cells in data])


def _read_xlsx(filename: str, data: bytes, max_bytes: int) -> Sheets:
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            # A small file that unpacks to gigabytes (a zip bomb) is refused before parsing.
            if sum(i.file_size for i in z.infolist()) > 20 * max_bytes:
                raise BadFile("文件解压后过大，请检查文件内容")
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError):
        raise BadFile("不是有效的 Excel (.xlsx) 文件，请用 Excel 或 WPS 另存为 .xlsx 后再上传")
    try:
        sheets = {}
        for ws in wb.worksheets:
            rows = []
            for r, row in enumerate(ws.iter_rows(), start=1):
                cells = []
                for c, cell in enumerate(row):
                    if cell.data_type == "f" or (isinstance(cell.value, str) and cell.value.startswith("=")
                                                 and cell.data_type != "s"):
                        raise BadFile(f"工作表“{ws.title}”第{r}行{column_letter(c)}列含有公式，"
                                      "请把公式复制后“粘贴为数值”再上传")
                    cells.append(_unescape(_cell_text(cell.value)))
                rows.append((r, cells))
            sheets[ws.title] = rows
    finally:
        wb.close()
    if not sheets or not any(any(c.strip() for c in cells) for rows in sheets.values() for _, cells in rows):
        raise BadFile("表格是空的：第一行应为列名，从第二行起每行一个事项")
    names = list(sheets)
    main_name = MAIN_SHEET if MAIN_SHEET in sheets else names[0]
    main = _table(main_name, sheets[main_name])
    materials = None
    mat_name = MATERIAL_SHEET if MATERIAL_SHEET in sheets else None
    if mat_name and mat_name != main_name and any(any(c.strip() for c in cells) for _, cells in sheets[mat_name]):
        materials = _table(mat_name, sheets[mat_name])
        missing = [h for h in ("事项编码", "材料名称") if h not in materials.headers]
        if missing:
            raise BadFile(f"工作表“{mat_name}”缺少列：{'、'.join(missing)}")
    return Sheets(filename, main, materials)


def _read_csv(filename: str, data: bytes) -> Sheets:
    # Excel saves CSV as UTF-8 with a BOM or, on Chinese Windows, as GBK.
    text = kb.decode_text(data)
    if text is None:
        raise BadFile("无法识别文件编码，请在 Excel 中“另存为 CSV UTF-8（逗号分隔）”后再上传")
    if "\x00" in text:
        raise BadFile("无法识别文件编码（像是 UTF-16 文本），请另存为 CSV UTF-8（逗号分隔）后再上传")
    try:
        raw = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise BadFile(f"CSV 格式有误：{exc}")
    rows = []
    for r, cells in enumerate(raw, start=1):
        for c, value in enumerate(cells):
            if value.startswith("="):
                raise BadFile(f"第{r}行{column_letter(c)}列含有公式，请把公式转为数值后再上传")
        rows.append((r, [_unescape(v.replace("\r\n", "\n")) for v in cells]))
    if not any(any(c.strip() for c in cells) for _, cells in rows):
        raise BadFile("表格是空的：第一行应为列名，从第二行起每行一个事项")
    return Sheets(filename, _table("CSV", rows))


def read(filename: str, data: bytes, max_bytes: int, max_rows: int) -> Sheets:
    """The file's sheets as text; BadFile (a Chinese message) when it is not a readable guide spreadsheet."""
    name = (filename or "").lower()
    if not data:
        raise BadFile("文件是空的")
    if len(data) > max_bytes:
        raise BadFile(f"文件过大（上限 {max_bytes // (1024 * 1024)} MB），请拆分成几个文件分别导入")
    if name.endswith(".xls"):
        raise BadFile("不支持旧版 Excel (.xls) 文件，请另存为 .xlsx 后再上传")
    if name.endswith(".xlsx"):
        sheets = _read_xlsx(filename, data, max_bytes)
    elif name.endswith(".csv"):
        sheets = _read_csv(filename, data)
    else:
        raise BadFile("只支持 Excel (.xlsx) 和 CSV (.csv) 文件")
    if len(sheets.main.rows) > max_rows:
        raise BadFile(f"一次最多导入 {max_rows} 个事项（本文件 {len(sheets.main.rows)} 行），请拆分后分别导入")
    return sheets


# ---------- the column mapping ----------
def _key(header: str) -> str:
    return re.sub(r"[\s（）()*＊:：]", "", header).lower()


def guess_mapping(headers: list[str]) -> list[str]:
    """Each column's guide field, recognised by its header (the export's headers and common synonyms)."""
    known = {}
    for f, (title, others) in COLUMNS.items():
        for h in (title, *others):
            known.setdefault(_key(h), f)
    out, used = [], set()
    for h in headers:
        f = known.get(_key(h), IGNORE)
        if f in used:
            f = IGNORE  # a second column with the same meaning is shown, not silently merged
        used.add(f)
        out.append(f)
    return out


def field_choices() -> list[tuple[str, str]]:
    """(field, label) for the mapping's drop-downs."""
    return [(IGNORE, "（不导入）")] + [(f, title + ("（只导出）" if f in EXPORT_ONLY else ""))
                                      for f, (title, _) in COLUMNS.items()]


# ---------- cells → guide values ----------
def _lines(text: str) -> list[str]:
    return [_NUMBERED.sub("", line).strip() for line in text.split("\n") if line.strip()]


def _parts(line: str) -> list[str]:
    return [p.strip() for p in re.split(r"\s*[|｜]\s*", line)]


def _limit(text: str):
    t = text.strip()
    if not t:
        return None
    if t in ("即办", "即办件", "当场办结"):
        return "即办"
    m = re.fullmatch(r"(\d+)\s*(?:个)?(?:工作日|天|日)?", t)
    return int(m.group(1)) if m else t  # anything else: the validator says what is wrong


def _int(text: str):
    t = text.strip()
    if not t:
        return None
    m = re.fullmatch(r"(\d+)\s*(?:次|份)?", t)
    return int(m.group(1)) if m else t


def _date(text: str):
    t = (text or "").strip()
    if not t:
        return None
    try:
        return dt.date.fromisoformat(t.replace("/", "-"))
    except ValueError:
        return t


def _yes(text: str) -> bool | str:
    t = text.strip()
    if t in ("是", "需要", "须", "必须", "true", "True", "1", "Y", "y"):
        return True
    if t in ("否", "不需要", "无需", "false", "False", "0", "N", "n", ""):
        return False
    return t


def _material(parts: list[str]) -> dict:
    """`名称 | 原件 | 2份 | 容缺 | 电子证照 | 情形：… | 备注：…` (any order after the name)."""
    m: dict = {"name": parts[0]}
    for p in parts[1:]:
        if not p:
            continue
        if p in ("原件", "复印件", "原件及复印件", "电子材料"):
            m["form"] = p
        elif re.fullmatch(r"\d+\s*份?", p):
            m["copies"] = int(re.sub(r"\D", "", p))
        elif p in ("容缺", "容缺受理", "可容缺", "容缺后补"):
            m["waivable"] = True
        elif p in ("必要", "必须"):
            continue
        elif p in ("电子证照", "可用电子证照"):
            m["e_license"] = True
        elif re.match(r"^(?:情形|适用情形|条件)[:：]", p):
            m["condition"] = re.sub(r"^\S+?[:：]\s*", "", p, count=1)
        else:
            m["notes"] = re.sub(r"^备注[:：]\s*", "", p)
    return m


def _materials_cell(text: str) -> list[dict]:
    return [_material(_parts(line)) for line in _lines(text)]


def _material_row(cells: dict[str, str]) -> dict:
    m: dict = {"name": cells.get("材料名称", "").strip()}
    if cells.get("材料形式", "").strip():
        m["form"] = cells["材料形式"].strip()
    if cells.get("份数", "").strip():
        m["copies"] = _int(cells["份数"])
    if cells.get("必要性", "").strip() in ("容缺", "容缺受理", "可容缺", "容缺后补"):
        m["waivable"] = True
    if cells.get("适用情形", "").strip():
        m["condition"] = cells["适用情形"].strip()
    if cells.get("电子证照", "").strip():
        m["e_license"] = _yes(cells["电子证照"])
    if cells.get("备注", "").strip():
        m["notes"] = cells["备注"].strip()
    return m


def _positional(text: str, names: tuple[str, ...]) -> list[dict]:
    out = []
    for line in _lines(text):
        parts = _parts(line)
        out.append({n: v for n, v in zip(names, parts) if v})
    return out


def _sources(text: str) -> dict:
    out = {}
    for entry in _positional(text, SOURCE_PARTS):
        key = entry.pop("key", None) or entry.get("title")
        for d in ("issued", "seen"):
            if d in entry:
                entry[d] = _date(entry[d])
        if key:
            out[key] = entry
    return out


def _provenance(text: str) -> dict:
    out = {}
    for entry in _positional(text, PROVENANCE_PARTS):
        fact = entry.pop("fact", None)
        if "reviewed" in entry:
            entry["reviewed"] = _date(entry["reviewed"])
        if fact:
            out[fact] = entry
    return out


_APPT = {"渠道": "channels", "预约渠道": "channels", "须预约": "required", "必须预约": "required",
         "可现场取号": "walk_in", "现场取号": "walk_in", "说明": "notes"}


def _appointment(text: str):
    if not text.strip():
        return None
    out: dict = {}
    for line in _lines(text):
        label, _, value = re.split(r"([:：])", line, maxsplit=1) if re.search(r"[:：]", line) else (line, "", "")
        key = _APPT.get(label.strip())
        if key is None:  # a line without a known label is a note
            out["notes"] = (out.get("notes", "") + "\n" + line).strip() if out.get("notes") else line
        elif key == "channels":
            out[key] = [c.strip() for c in re.split(r"[、,，]", value) if c.strip()]
        elif key in ("required", "walk_in"):
            out[key] = _yes(value)
        else:
            out[key] = value.strip()
    return out


def _channels(text: str) -> list[str]:
    return [c.strip() for c in re.split(r"[、,，;；\n]", text) if c.strip()]


def _kind(text: str) -> str:
    t = text.strip()
    return next((k for k, label in KIND_LABELS.items() if label == t), t) or "matter"


def cell_value(name: str, text: str):
    """A cell's text as the guide field's value (what cannot be read is passed on for the validator to name)."""
    text = text.strip()
    if name == "id":
        return text.lower()
    if name == "kind":
        return _kind(text)
    if name in LINE_LISTS:
        return _lines(text)
    if name == "materials":
        return _materials_cell(text)
    if name in ("legal_limit", "promised_limit"):
        return _limit(text)
    if name == "trips":
        return _int(text)
    if name == "channels":
        return _channels(text)
    if name == "locations":
        return _positional(text, LOCATION_PARTS)
    if name == "appointment":
        return _appointment(text)
    if name == "sources":
        return _sources(text)
    if name == "provenance":
        return _provenance(text)
    return text or None


# ---------- guide values → cells ----------
def _escape(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_START) else text


def _join(parts: list) -> str:
    parts = ["" if p is None else str(p) for p in parts]
    while parts and not parts[-1]:
        parts.pop()
    return " | ".join(parts)


def _material_text(m: dict) -> str:
    parts = [m["name"], m.get("form", "原件"), f"{m.get('copies', 1)}份"]
    if m.get("waivable"):
        parts.append("容缺")
    if m.get("e_license"):
        parts.append("电子证照")
    if m.get("condition"):
        parts.append(f"情形：{m['condition']}")
    if m.get("notes"):
        parts.append(f"备注：{m['notes']}")
    return " | ".join(parts)


def cell_text(name: str, g: dict) -> str:
    """A guide field (validated dump, mode json) as the cell's text; `cell_value` reads it back unchanged."""
    v = g.get(name)
    if name == "online":
        return "是" if ONLINE_CHANNELS & set(g.get("channels") or []) else "否"
    if v in (None, "", []) and name != "kind":
        return ""
    if name == "kind":
        return KIND_LABELS.get(v or "matter", v)
    if name in LINE_LISTS:
        return "\n".join(v)
    if name == "materials":
        return "\n".join(_material_text(m) for m in v)
    if name in ("legal_limit", "promised_limit", "trips"):
        return str(v)
    if name == "channels":
        return "、".join(v)
    if name == "locations":
        return "\n".join(_join([loc.get(p) for p in LOCATION_PARTS]) for loc in v)
    if name == "appointment":
        lines = []
        if v.get("channels"):
            lines.append("渠道：" + "、".join(v["channels"]))
        lines.append("须预约：" + ("是" if v.get("required") else "否"))
        lines.append("可现场取号：" + ("是" if v.get("walk_in", True) else "否"))
        if v.get("notes"):
            lines.append("说明：" + v["notes"])
        return "\n".join(lines)
    if name == "sources":
        return "\n".join(_join([k] + [s.get(p) for p in SOURCE_PARTS[1:]]) for k, s in v.items())
    if name == "provenance":
        return "\n".join(_join([k] + [p.get(x) for x in PROVENANCE_PARTS[1:]]) for k, p in v.items())
    return str(v)


# ---------- the dry run ----------
def _canonical(data: dict) -> dict | None:
    guide, problems = validate_data("", data)
    return guide.model_dump(mode="json") if guide else None


def _show(value) -> str:
    if value in (None, "", [], {}):
        return "（空）"
    if isinstance(value, (dict, list)):
        return yaml.dump(value, Dumper=_DUMPER, allow_unicode=True, sort_keys=False, width=10_000).strip()
    return str(value)


_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _problem_column(p: Problem, columns: dict[str, str]) -> str:
    f = kb.problem_field(p)
    if f not in FIELD_LABELS:  # a rule about the whole guide (e.g. provenance naming a missing fact)
        f = "provenance" if p.message.startswith("provenance") else ""
    detail = p.field.split(" > ", 1)[1] if " > " in p.field else ""
    where = columns.get(f) or (f"{FIELD_LABELS.get(f, f)}（未导入的列，沿用现有内容）" if f else "")
    return f"{where} > {detail}" if where and detail else where or p.field


def dry_run(session: Session, sheets: Sheets, mapping: list[str] | None = None) -> DryRun:
    """What importing the file would do, row by row; writes nothing."""
    main = sheets.main
    mapping = list(mapping) if mapping is not None else guess_mapping(main.headers)
    mapping = (mapping + [IGNORE] * len(main.headers))[:len(main.headers)]
    result = DryRun(sheets.filename, main.headers, mapping, [], materials_sheet=sheets.materials is not None)
    fields = {}
    for i, f in enumerate(mapping):
        if f and f not in COLUMNS:
            result.problems.append(f"第{column_letter(i)}列“{main.headers[i]}”：不认识的字段 {f}")
        elif f in fields:
            result.problems.append(f"“{COLUMNS[f][0]}”对应了两列（{column_letter(fields[f])}、{column_letter(i)}），只能选一列")
        elif f and f not in EXPORT_ONLY:
            fields[f] = i
    for need in ("id", "name"):
        if need not in fields:
            result.problems.append(f"缺少“{COLUMNS[need][0]}”列：请在列对应中指定哪一列是{COLUMNS[need][0]}")
    if result.problems:
        return result
    columns = {f: f"{column_letter(i)}列“{main.headers[i]}”" for f, i in fields.items()}
    materials: dict[str, list[tuple[int, dict]]] = {}
    if sheets.materials is not None:
        heads = sheets.materials.headers
        for n, cells in sheets.materials.rows:
            row = dict(zip(heads, cells))
            materials.setdefault(row.get("事项编码", "").strip().lower(), []).append((n, _material_row(row)))
        columns["materials"] = f"工作表“{sheets.materials.name}”"

    current = {rev.key: rev for rev in kb.current_all(session, kb.GUIDE)}
    seen_ids: dict[str, int] = {}
    parsed: list[tuple[RowResult, dict]] = []
    for n, cells in main.rows:
        gid = cell_value("id", cells[fields["id"]])
        r = RowResult(n, gid, cells[fields["name"]].strip())
        if not gid:
            r.problems.append(RowProblem(n, columns["id"], "缺少事项编码"))
        elif gid in seen_ids:
            r.problems.append(RowProblem(n, columns["id"], f"与第{seen_ids[gid]}行的事项编码重复"))
        seen_ids.setdefault(gid, n)
        rev = current.get(gid)
        base = kb.guide_data(rev) if rev is not None else {}
        data = dict(base)
        for f, i in fields.items():
            value = cell_value(f, cells[i])
            if value in (None, [], {}) and f not in base:
                continue  # an empty cell adds nothing to a new guide
            data[f] = value
        if sheets.materials is not None:
            mats = materials.get(gid, [])
            if mats or "materials" in base:
                data["materials"] = [m for _, m in mats]
        parsed.append((r, data))
    # Names and aliases of the guides this file leaves alone (the file's own rows may rename theirs).
    claims: dict[str, str] = {}
    for key, rev in current.items():
        if key in seen_ids:
            continue
        d = kb.guide_data(rev)
        for t in [d.get("name"), *(d.get("aliases") or [])]:
            if isinstance(t, str):
                claims.setdefault(t, key)
    in_file = _names_in_file(parsed)
    for r, data in parsed:
        gid = r.id
        # A name or alias that another guide already answers to: the chat could not tell them apart.
        for t in [data.get("name"), *(data.get("aliases") or [])]:
            owner = claims.get(t) if isinstance(t, str) else None
            if owner:
                col = columns["name"] if t == data.get("name") else columns.get("aliases", columns["name"])
                r.problems.append(RowProblem(r.row, col, f"“{t}”已是另一事项（{owner}）的名称或别名"))
        for t, first in in_file.get(gid, []):
            r.problems.append(RowProblem(r.row, columns["name"], f"“{t}”与第{first}行事项的名称或别名相同"))
        guide, problems = validate_data(f"第{r.row}行", data)
        for p in problems:
            r.problems.append(RowProblem(r.row, _problem_column(p, columns), p.message))
        if r.problems:
            r.status = "error"
            continue
        new = guide.model_dump(mode="json")
        rev = current.get(gid)
        old = _canonical(kb.guide_data(rev)) if rev is not None else None
        if old == new:
            continue
        r.status = "changed" if old is not None else "new"
        for name in Guide.model_fields:
            if (old or {}).get(name) != new.get(name) and not (old is None and new.get(name) in (None, [], {})):
                r.changes.append({"field": name, "label": FIELD_LABELS.get(name, name),
                                  "old": _show((old or {}).get(name)) if old is not None else "",
                                  "new": _show(new.get(name))})
        r.data = data
    result.rows = [r for r, _ in parsed]
    return result


def _names_in_file(parsed: list[tuple[RowResult, dict]]) -> dict[str, list[tuple[str, int]]]:
    """Rows whose name or alias an earlier row of the same file already uses: gid → [(term, earlier row)]."""
    first: dict[str, tuple[str, int]] = {}
    out: dict[str, list[tuple[str, int]]] = {}
    for r, data in parsed:
        for t in {data.get("name"), *(data.get("aliases") or [])}:
            if not isinstance(t, str) or not t:
                continue
            if t in first and first[t][0] != r.id:
                out.setdefault(r.id, []).append((t, first[t][1]))
            else:
                first.setdefault(t, (r.id, r.row))
    return out


class NotImported(ValueError):
    """The file still has problems: nothing was written."""


def apply(session: Session, sheets: Sheets, mapping: list[str] | None, author: str) -> dict:
    """Write every new or changed row as a revision, in the caller's transaction (why = the file's name).

    Refuses (NotImported, nothing written) while the dry run reports any problem."""
    run = dry_run(session, sheets, mapping)
    if not run.ok:
        bad = run.problems or [str(p) for r in run.rows for p in r.problems]
        raise NotImported(f"文件仍有 {len(bad)} 处错误，未导入任何事项：{bad[0]}")
    reason = f"表格导入：{sheets.filename}"
    current = {rev.key: rev for rev in kb.current_all(session, kb.GUIDE)}
    written = 0
    for r in run.rows:
        if r.data is None:
            continue
        prev = current.get(r.id)
        data = r.data if prev is not None else _ordered(r.data)
        kb.save(session, kb.GUIDE, r.id, kb.guide_yaml(data, prev.content if prev else None), author, reason,
                action="import")
        written += 1
    counts = run.counts
    audit.record(session, author, "guide.import_sheet", f"file/{sheets.filename}",
                 {"new": counts["new"], "changed": counts["changed"], "unchanged": counts["unchanged"]})
    return {**counts, "written": written}


def _ordered(data: dict) -> dict:
    """A new guide's keys in the schema's order (as the repository's files have them)."""
    return {k: data[k] for k in Guide.model_fields if k in data}


# ---------- export and the template ----------
def _guides(session: Session) -> list[dict]:
    out = []
    for rev in kb.current_all(session, kb.GUIDE):
        g = _canonical(kb.guide_data(rev))
        if g is not None:
            out.append(g)
    return out


def rows_of(guides: list[dict], materials_in_cell: bool) -> tuple[list[str], list[list[str]], list[list[str]]]:
    """(headers, main rows, material rows) of the export layout."""
    fields = [f for f in COLUMNS if materials_in_cell or f != "materials"]
    headers = [COLUMNS[f][0] for f in fields]
    main = [[cell_text(f, g) for f in fields] for g in guides]
    mats = []
    if not materials_in_cell:
        for g in guides:
            for m in g.get("materials") or []:
                mats.append([g["id"], m["name"], m.get("form", "原件"), str(m.get("copies", 1)),
                             "容缺" if m.get("waivable") else "必要", m.get("condition") or "",
                             "是" if m.get("e_license") else "", m.get("notes") or ""])
    return headers, main, mats


def to_xlsx(guides: list[dict]) -> bytes:
    import openpyxl
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    headers, main, mats = rows_of(guides, materials_in_cell=False)
    wb = openpyxl.Workbook(write_only=True)  # streams rows: thousands of guides in seconds
    for title, head, rows in ((MAIN_SHEET, headers, main), (MATERIAL_SHEET, list(MATERIAL_COLUMNS), mats)):
        sheet = wb.create_sheet(title)
        sheet.freeze_panes = "B2"
        bold = []
        for h in head:
            cell = WriteOnlyCell(sheet, value=h)
            cell.font = Font(bold=True)
            bold.append(cell)
        sheet.append(bold)
        for row in rows:
            # Text that starts like a formula is escaped, so every cell is stored as a string.
            sheet.append([_escape(v) if v else None for v in row])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def to_csv(guides: list[dict]) -> bytes:
    headers, main, _ = rows_of(guides, materials_in_cell=True)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(headers)
    for row in main:
        w.writerow([_escape(v) for v in row])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")  # BOM: Excel opens UTF-8 Chinese correctly only with it


def export(session: Session, fmt: str = "xlsx") -> bytes:
    guides = _guides(session)
    return to_xlsx(guides) if fmt == "xlsx" else to_csv(guides)


EXAMPLE = {
    "id": "example-matter", "name": "〔示例〕某某证明开具", "matter_type": "公共服务", "kind": "matter",
    "category": None, "region": "厦门市", "aliases": ["〔示例〕开某某证明"],
    "questions": ["〔示例〕开某某证明要带什么"], "summary": "〔示例〕本行是填写示例，导入前请删除或改成真实事项。",
    "department": "厦门市某某局", "applicants": "本市户籍居民", "legal_basis": ["《某某条例》第十条"],
    "conditions": ["申请人为本市户籍居民"],
    "materials": [{"name": "本人有效居民身份证", "form": "原件", "copies": 1},
                  {"name": "委托书", "form": "原件", "copies": 1, "condition": "委托他人代办的"}],
    "steps": ["到窗口取号", "提交材料", "当场领取证明"], "legal_limit": 5, "promised_limit": "即办",
    "fee": "免费", "locations": [{"name": "厦门市民中心", "district": "思明区", "address": "厦门市思明区某某路1号",
                                  "hours": "工作日 9:00-17:00"}],
    "trips": 1, "channels": ["窗口", "i厦门"], "scope": "全城通办", "phone": "0592-12345",
    "complaint_phone": "12345",
    "sources": {"示例来源": {"title": "〔示例〕某某事项办事指南", "url": "https://example.invalid/guide"}},
    "provenance": {"materials": {"source": "示例来源", "clause": "申请材料"},
                   "fee": {"check": "〔示例〕收费标准尚未核实：请对照收费文件核实后填写来源。"}},
}


def template_xlsx() -> bytes:
    """The columns and one example row (clearly marked 〔示例〕), generated so it always matches the schema."""
    return to_xlsx([_canonical(EXAMPLE)])


# ---------- an upload between its dry run and the admin's confirmation ----------
STASH_TTL = 2 * 3600  # an admin reads the dry run, adjusts the mapping and confirms within this time


def stash(store, filename: str, data: bytes, author: str) -> str:
    """Keep the uploaded file in the shared store (any worker or replica may get the confirmation)."""
    import base64
    import json
    import secrets

    token = secrets.token_urlsafe(18)
    store.set(f"sheet-import:{token}", json.dumps({"filename": filename, "author": author, "mapping": None,
                                                   "data": base64.b64encode(data).decode()}), STASH_TTL)
    return token


def unstash(store, token: str, author: str) -> dict | None:
    """The stashed upload ({filename, data, mapping}) of this admin, or None (unknown, expired, someone else's)."""
    import base64
    import json

    raw = store.get(f"sheet-import:{token}") if re.fullmatch(r"[\w-]{10,64}", token or "") else None
    if not raw:
        return None
    entry = json.loads(raw)
    if entry.get("author") != author:
        return None
    entry["data"] = base64.b64decode(entry["data"])
    return entry


def remember_mapping(store, token: str, entry: dict, mapping: list[str]) -> None:
    import base64
    import json

    store.set(f"sheet-import:{token}", json.dumps({**entry, "mapping": mapping,
                                                   "data": base64.b64encode(entry["data"]).decode()}), STASH_TTL)


def forget(store, token: str) -> None:
    store.set(f"sheet-import:{token}", "", 1)
