"""Procedure guides (YAML, one file per matter) → validated Guide objects and guide passages.

A broken file never stops the others from loading: `load_guides` returns the good guides and a
list of problems, each naming the file, the field (in Chinese) and what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from knowledge.schema import FIELD_LABELS, Guide, Passage

# libyaml's safe loader when available (same result, ~20× faster: thousands of guides are validated
# on a spreadsheet import).
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Pydantic error types → what an admin should read.
_MESSAGES = {
    "missing": "缺少必填字段",
    "extra_forbidden": "不认识的字段（拼写错误？）",
    "string_too_short": "不能为空",
    "too_short": "至少要有一项",
    "literal_error": "取值不在允许范围内",
    "int_parsing": "应为整数",
    "int_type": "应为整数",
    "date_from_datetime_parsing": "日期格式应为 YYYY-MM-DD",
    "date_parsing": "日期格式应为 YYYY-MM-DD",
    "date_type": "日期格式应为 YYYY-MM-DD",
    "string_pattern_mismatch": "格式不对（只能用小写字母、数字和连字符）",
    "list_type": "应为列表",
    "string_type": "应为文字",
    "bool_parsing": "应为 true 或 false",
    "greater_than_equal": "数值太小",
    "less_than_equal": "数值太大",
}


@dataclass(frozen=True)
class Problem:
    file: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.message}"


def _field_name(loc: tuple) -> str:
    parts = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"第{item + 1}项")
        elif item in FIELD_LABELS:
            parts.append(f"{FIELD_LABELS[item]}({item})")
        elif not str(item).startswith(("int", "literal", "function")):
            parts.append(str(item))
    return " > ".join(parts) or "(整个文件)"


def validate_data(file: str, data: dict) -> tuple[Guide | None, list[Problem]]:
    """A guide from already-parsed data (a YAML file, a spreadsheet row), problems in the admins' words."""
    try:
        return Guide.model_validate(data), []
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            msg = _MESSAGES.get(err["type"], err["msg"])
            if err["type"] == "literal_error":
                msg += f"，可选: {err.get('ctx', {}).get('expected', '')}"
            elif err["type"] == "value_error":
                msg = err["msg"].removeprefix("Value error, ")
            problems.append(Problem(file, _field_name(err["loc"]), msg))
        return None, problems


def parse_guide(path: Path) -> tuple[Guide | None, list[Problem]]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        return None, [Problem(path.name, "(整个文件)", f"不是有效的 YAML/UTF-8 文本: {exc}".splitlines()[0])]
    if not isinstance(data, dict):
        return None, [Problem(path.name, "(整个文件)", "文件内容应为键值对（字段: 值）")]
    guide, problems = validate_data(path.name, data)
    if guide is None:
        return None, problems
    if path.stem != guide.id:
        return None, [Problem(path.name, "编号(id)", f"文件名应与编号一致: {guide.id}.yaml")]
    return guide, []


def load_guides(folder: Path) -> tuple[list[Guide], list[Problem]]:
    guides, problems, seen = [], [], {}
    for path in sorted(folder.glob("*.yaml")):
        guide, errs = parse_guide(path)
        problems.extend(errs)
        if guide is None:
            continue
        if guide.id in seen:
            problems.append(Problem(path.name, "编号(id)", f"与 {seen[guide.id]} 重复"))
            continue
        seen[guide.id] = path.name
        guides.append(guide)
    return guides, problems


def name_claims(guides: list[Guide]) -> dict[str, list[str]]:
    """Every name/alias → the guide ids that claim it (more than one is a conflict to report)."""
    claims: dict[str, list[str]] = {}
    for g in guides:
        for term in {g.name, *g.aliases}:
            claims.setdefault(term, []).append(g.id)
    return claims


def _limit(value) -> str | None:
    if value is None:
        return None
    return "即办（当场办结）" if value == "即办" else f"{value}个工作日"


def guide_sections(g: Guide) -> dict[str, str]:
    """The text of each answerable section of a guide (used for indexing and for the hotline)."""
    s: dict[str, str] = {}
    head = f"{g.name}（{'、'.join(g.aliases[:6])}）" if g.aliases else g.name
    s["overview"] = " ".join(x for x in (head, g.summary, g.applicants and f"申请对象：{g.applicants}") if x)
    if g.materials:
        s["materials"] = f"{g.name}所需材料：" + "；".join(
            m.name + (f"（{m.condition}）" if m.condition else "") for m in g.materials
        )
    if g.conditions:
        s["conditions"] = f"{g.name}办理条件：" + "；".join(g.conditions)
    if g.steps:
        s["process"] = f"{g.name}办理流程：" + "；".join(g.steps)
    times = [x for x in (_limit(g.legal_limit) and f"法定时限{_limit(g.legal_limit)}",
                         _limit(g.promised_limit) and f"承诺时限{_limit(g.promised_limit)}", g.time_notes) if x]
    if times:
        s["time"] = f"{g.name}办理时限（多久能办好）：" + "，".join(times)
    if g.fee:
        s["fee"] = f"{g.name}收费标准（要多少钱）：{g.fee}"
    where = [loc.name + (f"（{loc.address}）" if loc.address else "") for loc in g.locations]
    if where or g.department or g.channels:
        s["where"] = f"{g.name}办理地点（去哪里办）：" + "；".join(
            x for x in ("、".join(where), g.department and f"实施主体{g.department}",
                        g.channels and "渠道：" + "、".join(g.channels)) if x)
    if g.scope or g.scope_notes:
        s["scope"] = f"{g.name}通办范围：" + "，".join(x for x in (g.scope, g.scope_notes) if x)
    if g.appointment:
        a = g.appointment
        s["booking"] = f"{g.name}预约方式：" + "，".join(x for x in (
            "、".join(a.channels), "须预约" if a.required else "可不预约", a.notes) if x)
    return s


def guide_passages(g: Guide) -> list[Passage]:
    """One passage per guide section, plus one for its example questions (all point back to g.id)."""
    sections = guide_sections(g)
    if g.questions:
        sections["questions"] = f"{g.name} 常见问题：" + " ".join(g.questions)
    source = next(iter(g.sources.values()))
    return [
        Passage(
            id=f"guide-{g.id}-{name}",
            text=text,
            source_type="guide",
            doc_id=g.id,
            title=g.name,
            doc_number=source.doc_number,
            issuer=g.department,
            date=g.reviewed and g.reviewed.isoformat(),
            clause=name,
            region=g.region,
            section=name,
        )
        for name, text in sections.items()
    ]
