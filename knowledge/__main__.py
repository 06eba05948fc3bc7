"""Admin command: validate every knowledge source and print a summary with the provenance report.

    python -m knowledge                      # exits 1 on any error, with one line per problem
    python -m knowledge --max-age-days 180   # reviews older than this are stale (default: settings)
    python -m knowledge --brief              # figures only, no per-fact lines

Facts without a source, facts flagged 待核实 and stale reviews are reported, not errors: a guide
stays publishable while its facts are being checked, and the answers say what is unconfirmed.
The grounding report (knowledge/grounding.py) checks every fact that cites a held text and an
article against that article; a fact its article contradicts is an error.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from knowledge.grounding import CONTRADICTED, STATUS_LABELS, contradiction, format_counts, grounding_report, load_held
from knowledge.guides import name_claims
from knowledge.provenance import provenance_report
from knowledge.records import GUIDES_DIR, SOURCES_DIR, load_knowledge
from settings import get_settings


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m knowledge", description=__doc__)
    ap.add_argument("--guides", type=Path, default=GUIDES_DIR)
    ap.add_argument("--sources", type=Path, default=SOURCES_DIR)
    ap.add_argument("--max-age-days", type=int, default=None,
                    help="a fact review older than this is stale (default: BST_FACT_REVIEW_MAX_AGE_DAYS)")
    ap.add_argument("--brief", action="store_true", help="print the figures only")
    args = ap.parse_args(argv)
    max_age = args.max_age_days if args.max_age_days is not None else get_settings().fact_review_max_age_days

    try:
        kb = load_knowledge(args.guides, args.sources)
    except Exception as exc:  # a broken documents.yaml or unreadable source: say which, don't trace
        print(f"错误: 无法读取政策文件: {exc}", file=sys.stderr)
        return 1
    kinds = Counter(g.kind for g in kb.guides)
    sources = Counter(p.source_type for p in kb.passages)
    print(f"办事指南 {len(kb.guides)} 篇（事项 {kinds['matter']}，服务 {kinds['service']}，服务中心 {kinds['centre']}）")
    print(f"检索段落 {len(kb.passages)} 条（政策条款 {sources['policy']}，指南段落 {sources['guide']}）")
    _print_provenance(kb.guides, max_age, args.brief)
    contradicted = _print_grounding(kb.guides, args.sources, args.brief)
    for g in kb.guides:
        if g.region != "厦门市":
            print(f"  区域性规定: {g.id}（{g.name}）仅适用于{g.region}")
    conflicts = {t: ids for t, ids in name_claims(kb.guides).items() if len(set(ids)) > 1}
    for term, ids in sorted(conflicts.items()):
        print(f"警告: 名称/别名“{term}”被多篇指南使用: {', '.join(sorted(set(ids)))}")
    for p in kb.problems:
        print(f"错误: {p}", file=sys.stderr)
    for f in contradicted:
        print(f"错误: {f.guide}.yaml: {contradiction(f)}", file=sys.stderr)
    if kb.problems or contradicted:
        print(f"共 {len(kb.problems) + len(contradicted)} 个错误，请修改后重试。", file=sys.stderr)
        return 1
    print("校验通过。")
    return 0


def _print_provenance(guides, max_age: int, brief: bool) -> None:
    r = provenance_report(guides, max_age)
    print(f"事实来源：共 {r.facts} 项事实，有来源 {r.sourced} 项（已审核 {r.reviewed} 项），"
          f"无来源 {len(r.unsourced)} 项，待核实 {len(r.flagged)} 项，审核超过 {max_age} 天 {len(r.stale)} 项")
    if brief:
        return
    for gid, issues in sorted(r.by_guide(r.unsourced).items()):
        print(f"  无来源 {gid}: {', '.join(i.path for i in issues)}")
    for i in r.flagged:
        print(f"  待核实 {i.guide} {i.path}: {i.detail}")
    for i in r.stale:
        print(f"  审核过期 {i.guide} {i.path}: {i.detail} 审核")


def _print_grounding(guides, sources: Path, brief: bool) -> list:
    """Print the grounding report per guide and in total; return the contradicted facts."""
    held = load_held(sources)
    laws = [h.doc for h in held.values() if h.doc.kind == "law"]
    print(f"收录法律法规 {len(laws)} 部（其中已被取代 {sum(not d.current for d in laws)} 部），"
          f"条文 {sum(len(h.articles) for h in held.values() if h.doc.kind == 'law')} 条")
    r = grounding_report(guides, held)
    print(f"事实依据核对（共 {len(r.facts)} 项）：{format_counts(r.counts())}")
    if not brief:
        for gid in r.guides:
            print(f"  {gid}: {format_counts(r.counts(gid))}")
        for f in r.facts:
            if f.status not in ("grounded", "unsourced") or f.detail:
                print(f"  {STATUS_LABELS[f.status]} {f.guide} {f.path}: {f.detail}")
    return [f for f in r.facts if f.status == CONTRADICTED]


if __name__ == "__main__":
    sys.exit(main())
