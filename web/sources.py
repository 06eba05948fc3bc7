"""The texts the system holds, as citizens read them: a law's articles (or a notice's clauses) with
anchors, so an answer's 「依据」 link opens the clause a fact rests on.

    GET /sources/{key}                    the whole text, one anchor per article (#第九条)
    GET /api/sources/{key}                the text's metadata and its article labels
    GET /api/sources/{key}/{article}      one article's text

Thin adapter over knowledge/grounding.py (the held texts are the repository's knowledge/sources/).
A superseded text is shown with its status and what replaced it, never as current.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field

from knowledge.grounding import HeldText, article_url, held_texts

router = APIRouter(tags=["citizens"])
templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent / "templates"))
NOT_FOUND = "没有收录这份文件"
NO_ARTICLE = "这份文件没有这一条"


class SourceMeta(BaseModel):
    key: str
    title: str
    issuer: str
    doc_number: str | None
    version_date: str = Field(description="date of the text held (公布 or last amendment)")
    superseded: str | None = Field(description="date another text replaced it; null while current")
    superseded_by: str | None
    region: str
    note: str | None
    articles: list[str]


class ArticleOut(BaseModel):
    source: str
    title: str
    article: str
    chapter: str
    text: str
    url: str
    current: bool


def _held(key: str) -> HeldText:
    h = held_texts().get(key)
    if h is None:
        raise HTTPException(404, NOT_FOUND)
    return h


def _meta(h: HeldText) -> SourceMeta:
    d = h.doc
    return SourceMeta(key=h.key, title=d.title, issuer=d.issuer, doc_number=d.doc_number, version_date=d.date,
                      superseded=d.superseded, superseded_by=d.superseded_by, region=d.region, note=d.note,
                      articles=list(h.articles))


@router.get("/api/sources/{key}", response_model=SourceMeta, summary="A held text's metadata and its article labels")
def source_meta(key: str) -> SourceMeta:
    return _meta(_held(key))


@router.get("/api/sources/{key}/{article}", response_model=ArticleOut, summary="One article of a held text")
def source_article(key: str, article: str) -> ArticleOut:
    h = _held(key)
    a = h.articles.get(article)
    if a is None:
        raise HTTPException(404, NO_ARTICLE)
    return ArticleOut(source=h.key, title=h.doc.short_title, article=a.label, chapter=a.chapter, text=a.text,
                      url=article_url(h.key, a.label), current=h.doc.current)


@router.get("/sources/{key}", response_class=HTMLResponse, include_in_schema=False)
def source_page(key: str, request: Request):
    h = held_texts().get(key)
    if h is None:
        return templates.TemplateResponse(request, "citizen/404.html", {}, status_code=404)
    return templates.TemplateResponse(request, "citizen/source.html", {"s": _meta(h), "doc": h.doc,
                                                                       "articles": list(h.articles.values())})
