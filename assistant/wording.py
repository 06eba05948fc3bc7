"""How a guide's facts are worded — once, for the chat (assistant/answer.py), 材料预审
(assistant/materials.py), WeChat (which sends the chat's text) and the guide page (web/guide_view.py).

Each function words one fact and nothing else: no 待核实 flag (the chat appends its own, the page
marks facts itself), no numbering, no trailing punctuation unless the wording is a whole sentence.
A citizen who reads "可容缺受理，先办后补" in the chat must find the same words on the guide page.
"""

from __future__ import annotations

from knowledge.schema import Guide, Material

WAIVABLE = "可容缺受理，先办后补"
E_LICENSE = "可用电子证照代替"

# 厦府办〔2018〕138号 一、(一): 全城通办 is reached step by step (逐步推动); being on its list does not
# make a matter 通办 today, so without a checked source nothing promises every counter in the city.
CITYWIDE_BASIS = "厦府办〔2018〕138号 一、(一)"


def working_days(v) -> str:
    """A time limit: "即办" or a number of working days."""
    return "即办（当场办结）" if v == "即办" else f"{v}个工作日"


def promised_limit(v) -> str:
    return f"承诺时限{working_days(v)}"


def legal_limit(v) -> str:
    return f"法定时限{working_days(v)}"


def trips(n: int) -> str:
    return "一趟不用跑（全程网办）" if n == 0 else f"最多跑{n}趟"


def material_form(m: Material) -> str:
    """原件, or the form and number of copies when it is not one original."""
    return f"{m.form}{m.copies}份" if m.copies != 1 or m.form != "原件" else "原件"


def material_notes(m: Material, condition: bool = True) -> list[str]:
    """What is said about one material besides its name, in order: when it applies, its form, and
    what may replace it. `condition=False` when the caller words the condition itself."""
    notes = [m.condition] if condition and m.condition else []
    notes.append(material_form(m))
    if m.waivable:
        notes.append(WAIVABLE)
    if m.e_license:
        notes.append(E_LICENSE)
    return notes


def material_line(m: Material, condition: bool = True) -> str:
    """One checklist line without its number: "居民身份证（原件，可用电子证照代替）：说明"."""
    line = f"{m.name}（{'，'.join(material_notes(m, condition))}）"
    return line + (f"：{m.notes}" if m.notes else "")


def scope_hedged(g: Guide) -> bool:
    """全城通办 without a checked, current source: the sentence itself says it is not confirmed."""
    return g.scope == "全城通办" and not g.confirmed("scope")


def scope_sentence(g: Guide, subject: str | None = None) -> str:
    """Where the matter may be handled (通办 scope), as one sentence; "" without a scope.
    `subject` starts the sentence (the chat names the matter; the page says 本事项)."""
    s = g.name if subject is None else subject
    if scope_hedged(g):
        return (f"{s}在厦门市全城通办的推进范围内（{CITYWIDE_BASIS} 要求逐步推动全城通办），"
                "但目前能否在任一区的服务点办理尚未核实：请先拨打12345或所去服务点电话确认，再前往办理。")
    return {
        "全城通办": f"{s}已纳入全城通办，可在厦门任一区的服务点办理，不受户籍或住所所在区限制。",
        "全省通办": f"{s}可在福建省内通办。",
        "全国通办": f"{s}可跨省通办。",
        "属地办理": f"{s}须在属地（户籍或住所所在地）办理，暂不能跨区通办。",
    }.get(g.scope or "", "")
