"""One-off migration of knowledge/guides/*.yaml to per-fact provenance (issue 14).

    python scripts/migrate_provenance.py [--dry-run]

Old shape: `sources` (a list), a guide-wide `reviewed` date and `needs_check` (field names).
New shape: `sources` (key → document), `provenance` (fact path → source/clause/reviewed/check).

What the migration does, mechanically and without inventing anything:
- each old source becomes `sources[<文号 or title>]`;
- a fact whose own text cites an old source's 文号 gets that source (and the old clause when the
  text names it too) — the fact states where it comes from; it is NOT marked reviewed;
- each old `needs_check` entry becomes a `check` text saying what to confirm and with whom;
- the guide-wide `reviewed` date is dropped: nobody checked each fact on that date.
Entries it cannot carry over (a flag on an empty list, on legal_basis) are printed.
Only the tail of each file (from `sources:`) is rewritten, so comments and layout above stay.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from knowledge.schema import FACT_FIELDS, ITEMISED_FACTS  # noqa: E402

GUIDES = ROOT / "knowledge/guides"


_PARTS = {"hours": "办公时间", "address": "地址", "phone": "电话", "district": "所在区"}


def _check_text(path: str, data: dict) -> str:
    who = data.get("department") or "办理窗口"
    phone = data.get("phone") or "12345"
    field, *rest = path.split(".")
    if field == "materials":
        if not rest:
            return f"材料清单是否齐全尚未核实，办理前请向{who}确认。"
        name = data["materials"][int(rest[0])]["name"]
        return f"“{name}”是否需要及其规格、份数尚未核实，办理前请向{who}确认。"
    if field == "locations" and rest:
        loc = data["locations"][int(rest[0])]
        part = _PARTS.get(rest[1] if len(rest) > 1 else "", "地址和办公时间")
        return f"“{loc['name']}”的{part}尚未核实，前往前请拨打{phone}确认。"
    texts = {
        "conditions": f"该办理条件尚未核实，请向{who}确认。",
        "fee": f"收费标准尚未核实，缴费前请向{who}确认。",
        "promised_limit": f"承诺办理时限尚未核实，请向{who}确认。",
        "legal_limit": f"法定办理时限尚未核实，请向{who}确认。",
        "time_notes": f"时限说明尚未核实，请向{who}确认。",
        "trips": f"跑动次数尚未核实，请向{who}确认。",
        "department": f"实施部门尚未核实，请拨打{phone}确认。",
        "channels": f"办理渠道（线上或窗口）尚未核实，请拨打{phone}确认。",
        "scope": f"能否跨区、异地办理尚未核实，前往前请向{who}确认。",
        "scope_notes": f"通办说明尚未核实，前往前请向{who}确认。",
        "summary": f"概述中的部分说法尚未核实，请以{who}的答复为准。",
        "phone": "咨询电话尚未核实，可拨打12345确认。",
        "appointment": f"预约方式尚未核实，请拨打{phone}确认。",
        "steps": f"办理流程尚未核实，请以{who}的要求为准。",
        "locations": f"办理地点、地址和办公时间尚未核实，前往前请拨打{phone}确认。",
        "applicants": f"申请对象尚未核实，请向{who}确认。",
    }
    if field == "steps" and rest:
        return f"办理流程第{int(rest[0]) + 1}步尚未核实，请以{who}的要求为准。"
    return texts[field]


def _exists(data, path: str) -> bool:
    value = data
    for part in path.split("."):
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return False
    return value not in (None, "", [])


def _leaves(data: dict):
    """(fact path, text) for every fact, to find facts that cite a document themselves."""
    for name in FACT_FIELDS:
        value = data.get(name)
        if value in (None, "", []):
            continue
        if name in ITEMISED_FACTS:
            for i, item in enumerate(value):
                yield f"{name}.{i}", yaml.safe_dump(item, allow_unicode=True)
        else:
            yield name, yaml.safe_dump(value, allow_unicode=True)


def migrate(data: dict) -> tuple[dict, list[str]]:
    notes: list[str] = []
    sources: dict[str, dict] = {}
    old = data.get("sources") or []
    if isinstance(old, dict):
        return {}, ["already migrated"]
    for s in old:
        key = s.get("doc_number") or s["title"]
        sources[key] = {k: v for k, v in s.items() if k in ("title", "url", "doc_number") and v}
    provenance: dict[str, dict] = {}
    for path, text in _leaves(data):
        for s in old:
            number = s.get("doc_number")
            if number and number in text:
                entry = {"source": number}
                if s.get("clause") and s["clause"] in text:
                    entry["clause"] = s["clause"]
                provenance[path] = entry
                break
    parts: dict[str, list[str]] = {}  # location path → the parts of it flagged (地址, 办公时间 …)
    for path in data.get("needs_check") or []:
        field = path.split(".")[0]
        if field not in FACT_FIELDS or data.get(field) in (None, "", []):
            notes.append(f"flag on {path} dropped (not a fact, or the field is empty)")
            continue
        bits = path.split(".")
        if field == "locations" and len(bits) == 3:
            parts.setdefault(".".join(bits[:2]), []).append(_PARTS.get(bits[2], bits[2]))
            if not _exists(data, path):  # a flag on a missing part (no address yet) goes to its holder
                continue
        provenance.setdefault(path, {})["check"] = _check_text(path, data)
    for path, names in parts.items():
        loc = data["locations"][int(path.split(".")[1])]
        missing = [n for n in names if n not in {_PARTS.get(k) for k, v in loc.items() if v}]
        if missing:
            provenance.setdefault(path, {})["check"] = (
                f"“{loc['name']}”的{'、'.join(missing)}尚未核实，前往前请拨打{data.get('phone') or '12345'}确认。")
    return {"sources": sources, "provenance": provenance}, notes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args(argv)
    for path in sorted(GUIDES.glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
        tail, notes = migrate(data)
        for n in notes:
            print(f"{path.name}: {n}")
        if not tail:
            continue
        head = text[: text.index("\nsources:") + 1]
        new = head + yaml.safe_dump(tail, allow_unicode=True, sort_keys=False, width=200)
        if not args.dry_run:
            path.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
