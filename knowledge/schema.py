"""Pydantic models of the knowledge base: procedure guides (办事指南) and policy passages.

A guide is one YAML file under knowledge/guides/. Admins edit those files by hand, so every
field has a plain meaning and validation messages name the field in Chinese (see FIELD_LABELS).

Provenance is per fact, not per guide. `sources` names the documents and web pages a guide draws
on (by a short key, usually the 文号 or title); `provenance` maps a fact's path in the guide
("fee", "materials.0", "locations.1.hours") to where that fact is stated (source key + clause),
the date someone checked it against that source (`reviewed`, set only after a real check), or
what is still unconfirmed and how a citizen can check it (`check`, shown in answers as 待核实).
A citizen acts on each material, fee, time limit, department, place, scope and condition, so
each of those is a fact (FACT_FIELDS); `python -m knowledge` reports the facts without a source,
the flagged ones and the ones whose review is older than the configured age.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# A time limit is a number of working days, or 即办 (handled on the spot).
TimeLimit = Union[int, Literal["即办"], None]

Channel = Literal["窗口", "i厦门", "闽政通", "网上办事大厅", "e政务自助终端", "邮寄", "电话", "微信公众号"]
Scope = Literal["全城通办", "全省通办", "全国通办", "属地办理"]
Kind = Literal["matter", "service", "centre"]
# Where a rule applies. Anything but 厦门市 is a district's or another county's rule and the
# composer says so in the answer.
Region = Literal["厦门市", "思明区", "湖里区", "集美区", "海沧区", "同安区", "翔安区", "东平县"]
# A national law or regulation applies everywhere, Xiamen included; only source texts carry it
# (a guide is always about one place).
DocRegion = Union[Region, Literal["全国"]]


class _Strict(BaseModel):
    # Unknown keys are typos in an admin's file: reject them instead of silently dropping data.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Material(_Strict):
    name: str = Field(min_length=1)
    form: Literal["原件", "复印件", "原件及复印件", "电子材料"] = "原件"
    copies: int = Field(default=1, ge=0, le=20)
    notes: str | None = None
    waivable: bool = False  # 容缺受理: may be handed in later
    e_license: bool = False  # an 电子证照 replaces the paper one
    condition: str | None = None  # only needed in this case (e.g. 户籍不在本市的)


class Location(_Strict):
    name: str
    district: Region | None = None
    address: str | None = None
    hours: str | None = None
    phone: str | None = None


class Appointment(_Strict):
    channels: list[str] = Field(default_factory=list)  # e.g. 微政务平台, i厦门
    required: bool = False
    walk_in: bool = True  # on-site numbers are never refused for lack of a booking (138号 三、(十二))
    notes: str | None = None


class Source(_Strict):
    """A document or web page. Clauses are named per fact in `provenance`, not here."""

    title: str = Field(min_length=1)
    url: str | None = None
    doc_number: str | None = None  # 文号, e.g. 厦府办〔2018〕138号
    issued: dt.date | None = None  # date of the document (公布/发布)
    seen: dt.date | None = None  # when the document or page was last read for this guide
    notes: str | None = None  # how it was seen, e.g. only through a reprint (for admins, not citizens)

    def cite(self, clause: str | None = None) -> str:
        name = f"《{self.title}》" + (f"（{self.doc_number}）" if self.doc_number else "")
        return f"{name}{clause}" if clause else name


class Provenance(_Strict):
    """Where one fact comes from and whether that was checked."""

    source: str | None = None  # a key of Guide.sources
    clause: str | None = None  # 条款 or section of the page, e.g. 第五条, 一、(一)
    reviewed: dt.date | None = None  # the fact was checked against the source on this date
    check: str | None = None  # 待核实: what is unconfirmed and what to check (told to citizens)

    @model_validator(mode="after")
    def _consistent(self) -> "Provenance":
        if self.reviewed and not self.source:
            raise ValueError("已审核(reviewed)的事实必须注明来源(source)")
        if self.reviewed and self.check:
            raise ValueError("同一事实不能既已审核(reviewed)又待核实(check)")
        if not (self.source or self.check):
            raise ValueError("请写明来源(source)或待核实说明(check)")
        return self


# The facts a citizen acts on. Itemised fields hold one fact per item (materials.0, materials.1 …);
# the others are one fact each. Provenance keys may also name a part of a fact (locations.0.hours)
# or a whole itemised list ("materials": e.g. that the checklist is complete).
ITEMISED_FACTS = ("conditions", "materials", "locations")
FACT_FIELDS = ("summary", "department", "applicants", "conditions", "materials", "steps", "legal_limit",
               "promised_limit", "time_notes", "fee", "trips", "channels", "scope", "scope_notes",
               "appointment", "locations", "phone")


class Guide(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    kind: Kind = "matter"
    name: str = Field(min_length=2)
    category: str | None = None  # matters sharing a category are told apart by asking (结婚/离婚/补领)
    matter_type: str | None = None  # 事项类型 of the official 事项库 (行政许可, 公共服务 …); informational
    region: Region = "厦门市"
    aliases: list[str] = Field(default_factory=list)
    questions: list[str] = Field(default_factory=list)
    summary: str | None = None  # one or two sentences; the answer to a general question
    department: str | None = None  # 实施主体
    applicants: str | None = None
    conditions: list[str] = Field(default_factory=list)
    materials: list[Material] = Field(default_factory=list)
    steps: list[str] = Field(default_factory=list)
    legal_limit: TimeLimit = None  # 法定时限 (working days)
    promised_limit: TimeLimit = None  # 承诺时限 (working days)
    time_notes: str | None = None
    fee: str | None = None  # "免费", "120元/本" ...
    trips: int | None = Field(default=None, ge=0, le=5)  # 0 = 一趟不用跑, 1 = 最多跑一趟
    channels: list[Channel] = Field(default_factory=list)
    scope: Scope | None = None
    scope_notes: str | None = None
    appointment: Appointment | None = None
    locations: list[Location] = Field(default_factory=list)
    phone: str | None = None
    complaint_phone: str | None = None  # 监督投诉电话 (a standard element of every 办事指南)
    legal_basis: list[str] = Field(default_factory=list)
    sources: dict[str, Source] = Field(min_length=1)
    provenance: dict[str, Provenance] = Field(default_factory=dict)

    @field_validator("aliases", "questions")
    @classmethod
    def _no_blank(cls, values: list[str]) -> list[str]:
        if any(not v.strip() for v in values):
            raise ValueError("不能有空白项")
        return values

    @model_validator(mode="after")
    def _check(self) -> "Guide":
        if self.kind == "matter" and not (self.materials or self.steps or self.summary):
            raise ValueError("办事事项至少要写 materials、steps 或 summary 之一")
        problems = []
        for path, prov in self.provenance.items():
            if path.split(".")[0] not in FACT_FIELDS or not self.has(path):
                problems.append(f"provenance 中的事实不存在或不是需要来源的事实: {path}")
            if prov.source and prov.source not in self.sources:
                problems.append(f"provenance.{path} 引用的来源“{prov.source}”不在 sources 中")
        if problems:
            raise ValueError("；".join(problems))
        return self

    def has(self, path: str) -> bool:
        """The path names a value this guide states (materials.0, locations.1.hours …)."""
        value = self
        for part in path.split("."):
            if isinstance(value, list):
                if not part.isdigit() or int(part) >= len(value):
                    return False
                value = value[int(part)]
            elif isinstance(value, BaseModel) and part in type(value).model_fields:
                value = getattr(value, part)
            else:
                return False
        return value not in (None, "", [])

    # --- provenance queries (used by the answer composer, 材料预审 and the validation report) ---
    def fact_paths(self) -> list[str]:
        """Every fact this guide states, one path each (materials.0, fee …)."""
        out = []
        for name in FACT_FIELDS:
            value = getattr(self, name)
            if value in (None, "", []):
                continue
            if name in ITEMISED_FACTS:
                out += [f"{name}.{i}" for i in range(len(value))]
            else:
                out.append(name)
        return out

    def _related(self, path: str) -> list[str]:
        """Provenance keys of the fact itself, the lists that hold it, and its parts (a whole
        itemised list's items are facts of their own, not parts of it)."""
        bits = path.split(".")
        ancestors = {".".join(bits[:i]) for i in range(1, len(bits) + 1)}
        parts = path not in ITEMISED_FACTS
        return [k for k in self.provenance if k in ancestors or (parts and k.startswith(path + "."))]

    def confirmed(self, path: str) -> bool:
        """The fact was checked against its source and nothing of it is 待核实."""
        entry = self.source_of(path)
        return bool(entry and entry.reviewed) and not self.flagged(path)

    def source_of(self, path: str) -> Provenance | None:
        """The nearest entry with a source for a fact (its own, else its list's)."""
        for key in (path, path.split(".")[0]):
            p = self.provenance.get(key)
            if p and p.source:
                return p
        return None

    def checks(self, path: str) -> list[tuple[str, str]]:
        """(path, what to check) for the fact, its list and its parts still 待核实."""
        return [(k, self.provenance[k].check) for k in self._related(path) if self.provenance[k].check]

    def flagged(self, path: str) -> bool:
        return bool(self.checks(path))

    @property
    def needs_check(self) -> list[str]:
        return [k for k, p in self.provenance.items() if p.check]

    @property
    def reviewed(self) -> dt.date | None:
        """The latest date any fact of this guide was checked (None: no fact checked yet)."""
        return max((p.reviewed for p in self.provenance.values() if p.reviewed), default=None)


class Passage(_Strict):
    """One retrievable unit: a policy clause or one section of a guide."""

    id: str
    text: str
    source_type: Literal["policy", "guide", "law"]
    doc_id: str  # seed file stem or guide id
    title: str  # document title or guide name
    doc_number: str | None = None
    issuer: str | None = None
    date: str | None = None
    clause: str | None = None  # 一、(一), 第九条 (a law's article) or the guide section name
    region: DocRegion = "厦门市"
    responsible: str | None = None  # 责任单位/牵头单位
    deadline: str | None = None  # 完成时限
    section: str | None = None  # for guides: materials, fee, time ...


# Chinese labels for validation messages and summaries shown to admins.
FIELD_LABELS = {
    "id": "编号", "kind": "类型", "name": "事项名称", "category": "类别", "region": "适用地区",
    "aliases": "别名", "questions": "常见问法", "summary": "概述", "department": "实施主体",
    "applicants": "申请对象", "conditions": "办理条件", "materials": "申请材料", "steps": "办理流程",
    "legal_limit": "法定时限", "promised_limit": "承诺时限", "time_notes": "时限说明", "fee": "收费标准",
    "trips": "跑动次数", "channels": "办理渠道", "scope": "通办范围", "scope_notes": "通办说明",
    "appointment": "预约方式", "locations": "办理地点", "phone": "咨询电话",
    "matter_type": "事项类型", "complaint_phone": "监督投诉电话", "copies": "份数", "form": "材料形式", "legal_basis": "设定依据",
    "sources": "信息来源", "provenance": "事实来源", "source": "来源", "clause": "条款",
    "reviewed": "审核日期", "check": "待核实说明", "seen": "查阅日期", "issued": "发布日期",
}
