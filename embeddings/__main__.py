"""Admin command for the retrieval index.

    python -m embeddings build [--force]   validate sources, rebuild if stale, make it current
    python -m embeddings build --stage     build a new version without publishing it
    python -m embeddings versions          list versions (newest first), marking the current one
    python -m embeddings activate VERSION  point CURRENT at VERSION (roll back or forward)

A running server picks a new CURRENT up through POST /api/admin/reload, without downtime.
"""

from __future__ import annotations

import argparse
import sys

from embeddings import index as idx
from knowledge.records import load_knowledge
from settings import get_settings


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m embeddings", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--force", action="store_true", help="rebuild even if sources are unchanged")
    b.add_argument("--stage", action="store_true",
                   help="build without making it current (check it with `python -m assistant.check`, then activate)")
    sub.add_parser("versions")
    a = sub.add_parser("activate")
    a.add_argument("version")
    args = ap.parse_args(argv)
    s = get_settings()

    if args.cmd == "versions":
        cur = idx.current_version(s.index_dir)
        for m in idx.list_versions(s.index_dir):
            mark = "*" if m["version"] == cur else " "
            print(f"{mark} {m['version']}  {m['passages']} passages  {m['guides']} guides  {m['model']}  {m['built_at']}")
        return 0
    if args.cmd == "activate":
        from embeddings.encoder import signature

        try:
            idx.set_current(s.index_dir, args.version, encoder=signature(s.encoder_dir))
        except (FileNotFoundError, idx.IncompatibleIndex) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"current index: {args.version}")
        return 0

    kb = load_knowledge()
    if kb.problems:
        for p in kb.problems:
            print(f"错误: {p}", file=sys.stderr)
        print("knowledge sources have errors (see above); the index was not rebuilt", file=sys.stderr)
        return 1
    from embeddings.encoder import Encoder  # loads torch: only when a build is needed

    model_name = s.encoder_dir.name
    if not args.force and not args.stage and not idx.is_stale(s.index_dir, kb, model_name):
        print(f"index up to date: {idx.current_version(s.index_dir)}")
        return 0
    path = idx.build(kb, Encoder(s.encoder_dir), s.index_dir, keep=s.keep_index_versions, activate=not args.stage,
                     reuse=not args.force)  # --force re-encodes every passage
    print(f"staged index: {path.name}" if args.stage else f"current index: {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
