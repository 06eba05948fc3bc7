"""How well the guides' facts are sourced: the figures `python -m knowledge` prints and the admin
pages show. A fact is sourced when it (or the list holding it) names a source, reviewed when that
entry carries a review date, stale when that date is older than the allowed age, and flagged when
it or a part of it still has a 待核实 `check`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from knowledge.schema import Guide


@dataclass(frozen=True)
class FactIssue:
    guide: str  # guide id
    path: str  # fact path, e.g. materials.0
    detail: str = ""  # the check text, or the review date


@dataclass
class ProvenanceReport:
    facts: int = 0
    sourced: int = 0
    reviewed: int = 0
    unsourced: list[FactIssue] = field(default_factory=list)
    flagged: list[FactIssue] = field(default_factory=list)
    stale: list[FactIssue] = field(default_factory=list)

    def by_guide(self, issues: list[FactIssue]) -> dict[str, list[FactIssue]]:
        out: dict[str, list[FactIssue]] = {}
        for i in issues:
            out.setdefault(i.guide, []).append(i)
        return out


def provenance_report(guides: list[Guide], max_age_days: int, today: dt.date | None = None) -> ProvenanceReport:
    today = today or dt.date.today()
    oldest_ok = today - dt.timedelta(days=max_age_days)
    r = ProvenanceReport()
    for g in guides:
        for path in g.fact_paths():
            r.facts += 1
            entry = g.source_of(path)
            if entry is None:
                r.unsourced.append(FactIssue(g.id, path))
                continue
            r.sourced += 1
            if entry.reviewed:
                r.reviewed += 1
                if entry.reviewed < oldest_ok:
                    r.stale.append(FactIssue(g.id, path, entry.reviewed.isoformat()))
        r.flagged += [FactIssue(g.id, path, text) for path, text in
                      ((k, p.check) for k, p in g.provenance.items() if p.check)]
    return r
