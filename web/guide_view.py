"""A guide (knowledge/schema.py Guide) as the guide page shows it.

The templates read only what `view` returns, so a change to the guide schema (e.g. a source per
fact) is adapted here, in one place. Every fact carries `check`: True when it awaits an official
check (待核实) so the page marks it.
"""

from __future__ import annotations

from collections import defaultdict

from assistant import wording  # the same wording as the chat's answers
from assistant.answer import booking_lines
from knowledge.grounding import GROUNDED, article_url, check_guide
from knowledge.schema import Guide

OTHER = "其他"


def by_category(guides: list[Guide]) -> list[tuple[str, list[dict]]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for g in sorted(guides, key=lambda g: g.name):
        groups[g.category or OTHER].append({
            "id": g.id, "name": g.name, "summary": g.summary or "", "region": g.region,
            "search": " ".join([g.name, g.category or "", *g.aliases]),
        })
    return sorted(groups.items(), key=lambda kv: (kv[0] == OTHER, kv[0]))


def _fact(g: Guide, field: str, value) -> dict:
    return {"value": value, "check": g.flagged(field)}


def materials(g: Guide) -> list[dict]:
    out = []
    for i, m in enumerate(g.materials):
        out.append({"name": m.name, "condition": m.condition, "notes": "，".join(wording.material_notes(m, condition=False)),
                    "detail": m.notes,
                    "check": g.flagged(f"materials.{i}") or "materials" in g.needs_check})
    return out


def time_limit(g: Guide) -> list[dict]:
    out = []
    if g.promised_limit is not None:
        out.append(_fact(g, "promised_limit", wording.promised_limit(g.promised_limit)))
    if g.legal_limit is not None:
        out.append(_fact(g, "legal_limit", wording.legal_limit(g.legal_limit)))
    if g.time_notes:
        out.append(_fact(g, "time_notes", g.time_notes))
    if g.trips is not None:
        out.append(_fact(g, "trips", wording.trips(g.trips)))
    return out


def scope_text(g: Guide) -> str:
    return wording.scope_sentence(g, "本事项")


def sources(g: Guide) -> list[dict]:
    """Each document or page, with the facts that rest on it (clause and the date each was checked)."""
    out = []
    for key, src in g.sources.items():
        facts = [{"fact": field_name(path), "clause": p.clause, "reviewed": p.reviewed.isoformat() if p.reviewed else None}
                 for path, p in g.provenance.items() if p.source == key]
        out.append({"title": src.title, "doc_number": src.doc_number, "url": src.url,
                    "seen": src.seen.isoformat() if src.seen else None, "facts": facts})
    return out


def grounding(g: Guide) -> list[dict]:
    """Each fact with the article it rests on: a link to the clause when the article says it
    (grounded), otherwise what the check found (not held, no article named …). Unsourced facts are
    left out: the page's 待核实 list already says what to check for them."""
    out = []
    for f in check_guide(g):
        if f.status == "unsourced":
            continue
        src = g.sources[f.source]
        out.append({"fact": field_name(f.path), "path": f.path, "status": f.status, "label": f.label,
                    "source": src.title, "detail": f.detail,
                    "articles": [{"label": a, "url": article_url(f.held, a)} for a in f.articles]
                    if f.status == GROUNDED else []})
    return out


def checks(g: Guide) -> list[dict]:
    """Every 待核实 fact and what to check, as the chat's answers say it."""
    return [{"fact": field_name(path), "check": p.check} for path, p in g.provenance.items() if p.check]


def view(g: Guide) -> dict:
    return {
        "id": g.id, "name": g.name, "category": g.category, "region": g.region, "summary": g.summary,
        "kind": g.kind,
        "department": _fact(g, "department", g.department) if g.department else None,
        "applicants": _fact(g, "applicants", g.applicants) if g.applicants else None,
        "conditions": _fact(g, "conditions", g.conditions) if g.conditions else None,
        "materials": materials(g),
        "materials_check": "materials" in g.needs_check,  # the whole list; items carry their own mark
        "steps": _fact(g, "steps", g.steps) if g.steps else None,
        "time": time_limit(g),
        "fee": _fact(g, "fee", g.fee) if g.fee else None,
        "channels": _fact(g, "channels", "、".join(g.channels)) if g.channels else None,
        "locations": _fact(g, "locations", [l.model_dump() for l in g.locations]),
        "phone": _fact(g, "phone", g.phone) if g.phone else None,
        "scope": _fact(g, "scope", scope_text(g)) if g.scope else None,
        "scope_notes": g.scope_notes,
        "booking": _fact(g, "appointment", booking_lines(g)),
        "legal_basis": _fact(g, "legal_basis", g.legal_basis) if g.legal_basis else None,
        "sources": sources(g),
        "grounding": grounding(g),
        "reviewed": g.reviewed.isoformat() if g.reviewed else None,
        "needs_check": [field_name(f) for f in g.needs_check],
        "checks": checks(g),
        "region_note": "" if g.region == "厦门市" else (
            "本页内容出自山东省东平县的文件，不是厦门市的规定，仅供参考。" if g.region == "东平县"
            else f"本页是{g.region}的做法，仅适用于{g.region}。"),
    }


def field_name(field: str) -> str:
    from knowledge.schema import FIELD_LABELS

    head, _, rest = field.partition(".")
    label = FIELD_LABELS.get(head, head)
    return f"{label}第{int(rest) + 1}项" if rest.isdigit() else label
