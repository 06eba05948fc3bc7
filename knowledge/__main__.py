"""Admin command: validate every knowledge source and print a summary.

    python -m knowledge            # exits 1 on any error, with one line per problem
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from knowledge.guides import name_claims
from knowledge.records import GUIDES_DIR, SOURCES_DIR, load_knowledge


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m knowledge", description=__doc__)
    ap.add_argument("--guides", type=Path, default=GUIDES_DIR)
    ap.add_argument("--sources", type=Path, default=SOURCES_DIR)
    args = ap.parse_args(argv)

    try:
        kb = load_knowledge(args.guides, args.sources)
    except Exception as exc:  # a broken documents.yaml or unreadable source: say which, don't trace
        print(f"错误: 无法读取政策文件: {exc}", file=sys.stderr)
        return 1
    kinds = Counter(g.kind for g in kb.guides)
    sources = Counter(p.source_type for p in kb.passages)
    flagged = sum(len(g.needs_check) for g in kb.guides)
    print(f"办事指南 {len(kb.guides)} 篇（事项 {kinds['matter']}，服务 {kinds['service']}，服务中心 {kinds['centre']}）")
    print(f"检索段落 {len(kb.passages)} 条（政策条款 {sources['policy']}，指南段落 {sources['guide']}）")
    print(f"待核实字段 {flagged} 处，涉及 {sum(1 for g in kb.guides if g.needs_check)} 篇指南")
    for g in kb.guides:
        if g.region != "厦门市":
            print(f"  区域性规定: {g.id}（{g.name}）仅适用于{g.region}")
    conflicts = {t: ids for t, ids in name_claims(kb.guides).items() if len(set(ids)) > 1}
    for term, ids in sorted(conflicts.items()):
        print(f"警告: 名称/别名“{term}”被多篇指南使用: {', '.join(sorted(set(ids)))}")
    for p in kb.problems:
        print(f"错误: {p}", file=sys.stderr)
    if kb.problems:
        print(f"共 {len(kb.problems)} 个错误，请修改后重试。", file=sys.stderr)
        return 1
    print("校验通过。")
    return 0


if __name__ == "__main__":
    sys.exit(main())
