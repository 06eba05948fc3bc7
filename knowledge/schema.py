"""Pydantic models of the knowledge base: procedure guides (办事指南) and policy passages.

A guide is one YAML file under knowledge/guides/. Admins edit those files by hand, so every
field has a plain meaning and validation messages name the field in Chinese (see FIELD_LABELS).
Facts that still await an official check are listed by field name in `needs_check`; the answer
composer marks them in replies ("待核实") instead of presenting them as confirmed.
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
    title: str
    url: str | None = None
    doc_number: str | None = None  # 文号, e.g. 厦府办〔2018〕138号
    clause: str | None = None


class Guide(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    kind: Kind = "matter"
    name: str = Field(min_length=2)
    category: str | None = None  # matters sharing a category are told apart by asking (结婚/离婚/补领)
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
    legal_basis: list[str] = Field(default_factory=list)
    sources: list[Source] = Field(min_length=1)
    reviewed: dt.date
    needs_check: list[str] = Field(default_factory=list)

    @field_validator("aliases", "questions")
    @classmethod
    def _no_blank(cls, values: list[str]) -> list[str]:
        if any(not v.strip() for v in values):
            raise ValueError("不能有空白项")
        return values

    @model_validator(mode="after")
    def _check(self) -> "Guide":
        unknown = [f for f in self.needs_check if f.split(".")[0] not in type(self).model_fields]
        if unknown:
            raise ValueError(f"needs_check 中的字段不存在: {', '.join(unknown)}")
        if self.kind == "matter" and not (self.materials or self.steps or self.summary):
            raise ValueError("办事事项至少要写 materials、steps 或 summary 之一")
        return self

    def flagged(self, field: str) -> bool:
        return any(f == field or f.startswith(field + ".") for f in self.needs_check)


class Passage(_Strict):
    """One retrievable unit: a policy clause or one section of a guide."""

    id: str
    text: str
    source_type: Literal["policy", "guide"]
    doc_id: str  # seed file stem or guide id
    title: str  # document title or guide name
    doc_number: str | None = None
    issuer: str | None = None
    date: str | None = None
    clause: str | None = None  # 一、(一) or the guide section name
    region: Region = "厦门市"
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
    "appointment": "预约方式", "locations": "办理地点", "phone": "咨询电话", "legal_basis": "设定依据",
    "sources": "信息来源", "reviewed": "审核日期", "needs_check": "待核实字段",
}
