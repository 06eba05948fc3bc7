"""材料预审: compare what a citizen says they have with a guide's checklist, once and completely."""

from __future__ import annotations

import re

from assistant import wording
from assistant.answer import source_line, unconfirmed_lines
from embeddings.text import normalize
from knowledge.schema import Guide, Material

# Everyday names → the words official checklists use.
SYNONYMS = {
    "户口本": "户口簿", "户口": "户口簿", "相片": "照片", "证件照": "照片", "合照": "照片", "合影": "照片",
    "身份证复印件": "身份证", "老照片": "照片", "结婚证书": "结婚证", "离婚证书": "离婚证",
    "驾照": "驾驶证", "行驶本": "行驶证", "社保卡": "社会保障卡", "护照本": "护照",
}
# Words that describe a document without identifying it.
_GENERIC = re.compile(r"本人|有效|近期|半身|免冠|彩色|原件|复印件|双方|一份|各|的|《|》|（.*?）|\(.*?\)|\d+寸|申请|证明材料")


def _key(m: Material) -> str:
    name = _GENERIC.sub("", m.name)
    for k in ("身份证", "户口簿", "照片", "结婚证", "离婚证", "驾驶证", "行驶证", "护照", "出生医学证明",
              "声明书", "协议书", "申请表", "社会保障卡", "营业执照", "房产证", "不动产权证"):
        if k in m.name:
            return k
    return name[:6] or m.name


def has_material(text: str, m: Material) -> bool:
    text = normalize(text)
    for word, official in SYNONYMS.items():
        text = text.replace(word, official)
    key = _key(m)
    return key in text or m.name in text


def check_materials(g: Guide, text: str) -> str:
    # "我没带户口本" must not count as having it: drop negated mentions first.
    positive = re.sub(r"(没有?|缺|忘带了?|忘了带|还没)[^，,。；;、和与及]{0,8}", "", normalize(text))
    # A material needed only in some cases ("监护人身份证件" for minors) is never counted as had from a
    # general word ("身份证"): it is listed under 另 with its condition.
    have = [m for m in g.materials if has_material(positive, m) and not m.condition]
    missing = [m for m in g.materials if m not in have and not m.condition]
    conditional = [m for m in g.materials if m not in have and m.condition]
    lines = []
    if not missing:
        lines.append(f"办理{g.name}的必备材料您都已准备齐全（已有：{'、'.join(m.name for m in have)}）。")
    else:
        lines.append(f"办理{g.name}，您还缺{len(missing)}项材料：")
        for i, m in enumerate(missing, 1):
            lines.append(f"{i}. {wording.material_line(m)}")  # the checklist's own line
        if have:
            lines.append(f"已有：{'、'.join(m.name for m in have)}。")
    for m in conditional:
        lines.append(f"另：{m.condition}的，还需{m.name}。")
    paths = [f"materials.{i}" for i in range(len(g.materials))]
    lines.extend(unconfirmed_lines(g, paths))
    lines.append(source_line(g, paths))
    return "\n".join(lines)
