"""12345 hotline agents: search over guides and policy clauses, ready answers, hand-overs."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from assistant.answer import Context
from assistant.db import Handoff, sessions
from assistant import audit
from web.deps import AgentDep, EngineDep, SettingsDep, current_agent, rate_limit

router = APIRouter(tags=["hotline"], dependencies=[Depends(current_agent)])


class SearchHit(BaseModel):
    id: str
    text: str
    title: str
    doc_number: str | None
    issuer: str | None
    date: str | None
    clause: str | None
    region: str
    source_type: str
    score: float


class SearchResponse(BaseModel):
    query: str
    index_version: str
    hits: list[SearchHit]


class AnswerRequest(BaseModel):
    question: str = Field(min_length=1, max_length=20000)
    matter: str | None = Field(default=None, max_length=80)


class AnswerResponse(BaseModel):
    kind: str
    text: str
    matter: str | None
    qtype: str | None
    confidence: float
    buttons: list[dict]
    sources: list[dict]
    hits: list[SearchHit]


def to_hit(h) -> SearchHit:
    p = h.passage
    return SearchHit(id=p.id, text=p.text, title=p.title, doc_number=p.doc_number, issuer=p.issuer,
                     date=p.date, clause=p.clause, region=p.region, source_type=p.source_type,
                     score=round(h.score, 4))


@router.get("/api/search", response_model=SearchResponse, summary="Ranked passages (guides and policy clauses)",
            dependencies=[Depends(rate_limit("search", "search_per_minute"))])
def search(eng: EngineDep,
           q: Annotated[str, Query(min_length=1, max_length=2000)],
           k: Annotated[int, Query(ge=1, le=50)] = 5,
           mode: Annotated[str, Query(pattern="^(hybrid|bm25|dense)$")] = "hybrid"):
    cur = eng.get()
    # One hit per guide: an agent wants different guides and clauses, not five sections of one.
    hits, seen = [], set()
    for h in cur.searcher.run(q, k=k * 6, mode=mode):
        key = h.passage.doc_id if h.passage.source_type == "guide" else h.passage.id
        if key not in seen:
            seen.add(key)
            hits.append(h)
    return SearchResponse(query=q, index_version=cur.version, hits=[to_hit(h) for h in hits[:k]])


@router.post("/api/answer", response_model=AnswerResponse, summary="A ready answer with its sources")
def answer(req: AnswerRequest, eng: EngineDep):
    a = eng.get().answerer.run(req.question, Context(), matter=req.matter)
    return AnswerResponse(kind=a.kind, text=a.text, matter=a.matter, qtype=a.qtype, confidence=a.confidence,
                          buttons=[b.__dict__ for b in a.buttons], sources=a.sources,
                          hits=[to_hit(h) for h in a.hits[:5]])


class HandoffOut(BaseModel):
    id: int
    sender: str
    reason: str
    matter: str | None
    status: str
    created_at: str
    summary: dict


@router.get("/api/handoffs", response_model=list[HandoffOut], summary="Conversations waiting for an agent")
def handoffs(settings: SettingsDep,
             status: Annotated[str, Query(pattern="^(waiting|taken|closed|all)$")] = "waiting"):
    from sqlalchemy import select

    with sessions(settings.database_url)() as s:
        q = select(Handoff).order_by(Handoff.created_at)
        if status != "all":
            q = q.where(Handoff.status == status)
        rows = s.scalars(q).all()
    return [HandoffOut(id=h.id, sender=h.sender, reason=h.reason, matter=h.matter, status=h.status,
                       created_at=h.created_at.isoformat(timespec="seconds"), summary=json.loads(h.summary))
            for h in rows]


class HandoffUpdate(BaseModel):
    status: str = Field(pattern="^(taken|closed)$")


@router.post("/api/handoffs/{handoff_id}", response_model=HandoffOut, summary="Take or close a hand-over")
def update_handoff(handoff_id: int, req: HandoffUpdate, settings: SettingsDep, user: AgentDep):
    with sessions(settings.database_url)() as s:
        h = s.get(Handoff, handoff_id)
        if h is None:
            raise HTTPException(404, "没有这个转人工记录")
        h.status = req.status
        audit.record(s, user.username, f"handoff.{'take' if req.status == 'taken' else 'close'}", f"handoff:{h.id}")
        s.commit()
        return HandoffOut(id=h.id, sender=h.sender, reason=h.reason, matter=h.matter, status=h.status,
                          created_at=h.created_at.isoformat(timespec="seconds"), summary=json.loads(h.summary))
