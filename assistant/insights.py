"""What admins learn from the chat: gaps (👎 answers, refused and handed-over questions) grouped by
similarity, and the overview figures (questions per day, outcomes, top matters, votes, hand-over waits).

Reads the chat_turns / feedback / handoffs tables written by the chat and hotline code; writes nothing.
Grouping is Jaccard similarity of content characters (question words and particles dropped) with
single-link greedy clustering: short Chinese questions share few whole words but many characters
("养狗要办什么证" / "养狗办证去哪里"), it is deterministic and needs no model in the app process.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from assistant.db import ChatTurn, Feedback, Handoff

SIMILAR = 0.5  # Jaccard of content characters from which two questions are "the same gap"
# Particles, pronouns and question words: they say how someone asks, not what about.
_STOP = set("的了吗呢吧啊呀么我你他她们要想请问怎如何什哪里去可以能不是有在和与及或还也就都这那个办需得该样多少几")


@dataclass
class Gap:
    question: str
    kind: str  # downvote | refused | handoff
    at: dt.datetime
    answer: str = ""
    reason: str | None = None
    matter: str | None = None
    index_version: str | None = None


@dataclass
class Group:
    items: list[Gap] = field(default_factory=list)
    tokens: list[set[str]] = field(default_factory=list)  # one set per member (single link)

    @property
    def question(self) -> str:  # the most frequent wording stands for the group
        return Counter(g.question for g in self.items).most_common(1)[0][0]

    @property
    def kinds(self) -> dict[str, int]:
        return dict(Counter(g.kind for g in self.items))

    @property
    def reasons(self) -> list[str]:
        return sorted({g.reason for g in self.items if g.reason})

    @property
    def last(self) -> dt.datetime:
        return max(g.at for g in self.items)


KIND_LABELS = {"downvote": "👎 差评", "refused": "未能回答", "handoff": "转人工"}


def tokens(text: str) -> set[str]:
    return {ch for ch in re.sub(r"[\s\W_]+", "", text.lower()) if ch not in _STOP}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def gaps(session: Session, since: dt.date | None = None, until: dt.date | None = None) -> list[Gap]:
    """👎 answers with their reasons and the questions the bot refused or handed over, newest first."""
    lo = dt.datetime.combine(since, dt.time.min) if since else None
    hi = dt.datetime.combine(until, dt.time.max) if until else None

    def window(q, col):
        if lo:
            q = q.where(col >= lo)
        if hi:
            q = q.where(col <= hi)
        return q

    out = [Gap(f.question, "downvote", f.created_at, f.answer, f.reason, None, f.index_version)
           for f in session.scalars(window(select(Feedback).where(Feedback.vote < 0), Feedback.created_at))]
    for t in session.scalars(window(select(ChatTurn).where(ChatTurn.kind.in_(("refused", "handoff"))), ChatTurn.created_at)):
        out.append(Gap(t.question, t.kind, t.created_at, t.answer, None, t.matter, t.index_version))
    return sorted(out, key=lambda g: g.at, reverse=True)


def group(items: list[Gap], threshold: float = SIMILAR) -> list[Group]:
    groups: list[Group] = []
    for item in items:
        toks = tokens(item.question)
        def sim(g: Group) -> float:
            return max(jaccard(toks, other) for other in g.tokens)

        best = max(groups, key=sim, default=None)
        if best is not None and sim(best) >= threshold:
            best.items.append(item)
            best.tokens.append(toks)
        else:
            groups.append(Group([item], [toks]))
    return sorted(groups, key=lambda g: (len(g.items), g.last), reverse=True)


# ---------- overview ----------
def matter_names(session: Session) -> dict[str, str]:
    """Guide id → its name, from the current revisions: charts show "普通护照", not "passport"."""
    from assistant import knowledge_base as kb  # the guides' home; the chat tables store only ids

    return {rev.key: kb.guide_data(rev).get("name") or rev.key for rev in kb.current_all(session, kb.GUIDE)}


def overview(session: Session, days: int = 30, today: dt.date | None = None) -> dict:
    today = today or dt.date.today()
    start = today - dt.timedelta(days=days - 1)
    lo = dt.datetime.combine(start, dt.time.min)
    per_day: dict[dt.date, Counter] = defaultdict(Counter)
    matters: Counter = Counter()
    outcomes: Counter = Counter()
    for t in session.scalars(select(ChatTurn).where(ChatTurn.created_at >= lo)):
        per_day[t.created_at.date()][t.kind or "other"] += 1
        outcomes[t.kind or "other"] += 1
        if t.matter:
            matters[t.matter] += 1
    votes = Counter()
    for f in session.scalars(select(Feedback).where(Feedback.created_at >= lo)):
        votes["up" if f.vote > 0 else "down"] += 1
    waits = []
    for h in session.scalars(select(Handoff).where(Handoff.created_at >= lo, Handoff.taken_at.is_not(None))):
        waits.append((h.taken_at - h.created_at).total_seconds() / 60)
    days_list = [start + dt.timedelta(days=i) for i in range(days)]
    return {
        "days": [(d, sum(per_day[d].values())) for d in days_list],
        "outcomes": {"answered": outcomes["answered"], "refused": outcomes["refused"], "handoff": outcomes["handoff"],
                     "other": sum(v for k, v in outcomes.items() if k not in ("answered", "refused", "handoff"))},
        "matters": matters.most_common(10),
        "votes": {"up": votes["up"], "down": votes["down"]},
        "waits": waits,
        "waiting_now": session.query(Handoff).filter(Handoff.status == "waiting").count(),
    }
