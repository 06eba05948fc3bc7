"""The validated knowledge base: all guides and all passages, ready for embeddings/ to index."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from knowledge.guides import Problem, guide_passages, load_guides
from knowledge.policies import policy_passages
from knowledge.schema import Guide, Passage

ROOT = Path(__file__).resolve().parent
GUIDES_DIR = ROOT / "guides"
SOURCES_DIR = ROOT / "sources"


@dataclass
class KnowledgeBase:
    guides: list[Guide]
    passages: list[Passage]
    problems: list[Problem] = field(default_factory=list)
    checksums: dict[str, str] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        """Changes whenever any source file changes: the index is stale when this differs."""
        h = hashlib.sha256()
        for name, digest in sorted(self.checksums.items()):
            h.update(f"{name}={digest};".encode())
        return h.hexdigest()[:16]


def _checksums(*folders: Path) -> dict[str, str]:
    out = {}
    for folder in folders:
        for p in sorted(folder.rglob("*")):
            if p.is_file() and p.suffix in (".txt", ".yaml", ".yml", ".md"):
                out[f"{folder.name}/{p.relative_to(folder)}"] = hashlib.sha256(p.read_bytes()).hexdigest()[:16]
    return out


def load_knowledge(guides_dir: Path = GUIDES_DIR, sources_dir: Path = SOURCES_DIR) -> KnowledgeBase:
    guides, problems = load_guides(guides_dir)
    passages = policy_passages(sources_dir)
    for g in guides:
        passages.extend(guide_passages(g))
    checksums = _checksums(guides_dir, sources_dir)
    # The ingestion code shapes the passages too: changing it must make the index stale.
    for code in ("policies.py", "guides.py", "schema.py", "grounding.py"):
        checksums[f"code/{code}"] = hashlib.sha256((ROOT / code).read_bytes()).hexdigest()[:16]
    return KnowledgeBase(guides, passages, problems, checksums)
