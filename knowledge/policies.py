"""Policy documents (raw scraped text) → clause-level passages.

The raw files are kept byte for byte as received; everything a scraper left behind (breadcrumbs,
"返回顶部", copyright blocks, QR-code prompts, replacement characters) is removed here, never by hand.
Documents are registered with their metadata in sources/documents.yaml; two layouts are parsed:

* ``clauses``: headings 一、 / （一） / 1. (or 1、), with 责任单位/牵头单位/完成时限 lines attached to the
  clause they follow. One passage per lowest-level clause; long clauses are split at sentence ends.
* ``table``: a responsibility table whose cells are one per line: 序号, 工作任务, 主要内容, 完成时限, 责任单位.
  One passage per task row.
* ``articles``: a national law or regulation (kind ``law``, Markdown as published in LawRefBook/Laws):
  articles 第X条 under 第X章/第X节 headings. One passage per article (long ones split at sentence
  ends). Laws are held so facts can be checked against them (knowledge/grounding.py) and citizens can
  read the clause; they are not put in the retrieval index (`policy_passages` skips them), so a
  national article never stands in for Xiamen's procedure and a superseded text is never served.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel

from knowledge.schema import DocRegion, Passage

MAX_CHARS = 360  # e5-small reads 512 tokens; ~360 Chinese characters keeps a chunk well inside that

L1 = re.compile(r"^([一二三四五六七八九十]+)、")
L2 = re.compile(r"^[（(]([一二三四五六七八九十]+)[）)]")
L3 = re.compile(r"^(\d{1,2})[、.．](?!\d)")
# 第九条 / 第一百零八条 at the start of a line, then the article's text.
ARTICLE = re.compile(r"^(第[零〇一二三四五六七八九十百千]+条(?:之[一二三四五六七八九十]+)?)\s*(.*)$")
CHAPTER = re.compile(r"^#*\s*(第[零〇一二三四五六七八九十百]+[编章节])\s*(.*)$")
META = re.compile(r"^(责任单位|责任部门|牵头单位|配合单位|完成时限)[:：]\s*(.*)$")

# Lines that are page furniture, not document text.
CHROME = re.compile(
    r"^(当前位置|首页\s*>>|发布机构|发布日期|WWW\.|- 索 引 号|- 发布机构|- 公文生成日期|扫描二维码|扫一扫|"
    r"返回顶部|【?打\s*印】|“中国东平”网站版权|[①②③④](凡本网|本网|如本网)|抄送|\(此件主动公开\)|（此件主动公开）|附件$)"
)


class PolicyDocument(BaseModel):
    file: str
    title: str
    short_title: str
    issuer: str
    date: str
    doc_number: str | None = None
    region: DocRegion
    layout: str = "clauses"
    # National laws and regulations (kind "law") also record their version: `date` is the date of the
    # text held (公布 or the last amendment); `superseded` the date another text replaced it, and
    # `superseded_by` which (a superseded text is kept, marked, and never cited as current).
    kind: str = "policy"
    superseded: str | None = None
    superseded_by: str | None = None
    note: str | None = None  # where the text comes from, what was checked about its version

    @property
    def key(self) -> str:
        """The document's key in URLs (/sources/<key>): its file name without folder and suffix."""
        return Path(self.file).stem

    @property
    def current(self) -> bool:
        return self.superseded is None


def clean_text(raw: str) -> list[str]:
    """Normalise scraped text into meaningful lines (page chrome and debris dropped)."""
    out = []
    for line in raw.splitlines():
        line = line.replace("\ufffd", "").replace("\u3000", " ").replace("\xa0", " ")
        line = "".join(ch for ch in line if unicodedata.category(ch)[0] != "C" or ch == "\t")
        line = line.strip().strip("\t").strip()
        # Scraped pages sometimes drop the closing bracket and 号 of a document number: 〔201728
        if not line or CHROME.match(line) or re.fullmatch(r"[\d\s]*〔[\d\s]*|\d{5,}", line):
            continue
        out.append(line)
    return out


def _split_long(text: str, limit: int = MAX_CHARS) -> list[str]:
    if len(text) <= limit:
        return [text]
    sentences = re.split(r"(?<=[。；;！？])", text)
    chunks, cur = [], ""
    for s in sentences:
        if cur and len(cur) + len(s) > limit:
            chunks.append(cur)
            cur = ""
        cur += s
    if cur:
        chunks.append(cur)
    return chunks


@dataclass
class _Clause:
    label: str
    heading: str  # heading path, e.g. "一、创新审批服务方式 (一)大力推动“全城通办”"
    body: list[str]
    responsible: str | None = None
    deadline: str | None = None


def _parse_clauses(lines: list[str]) -> list[_Clause]:
    clauses: list[_Clause] = []
    l1 = l2 = ("", "")  # (label, heading text)
    cur: _Clause | None = None
    for line in lines:
        if m := META.match(line):
            if cur is not None:
                if m.group(1) == "完成时限":
                    cur.deadline = m.group(2).strip()
                else:
                    # 牵头单位 and 责任部门 may both be given: keep both, lead first.
                    part = f"{m.group(1)}：{m.group(2).strip()}"
                    cur.responsible = f"{cur.responsible}；{part}" if cur.responsible else part
                continue
        m1, m2, m3 = L1.match(line), L2.match(line), L3.match(line)
        if m1:
            l1, l2 = (m1.group(1) + "、", line), ("", "")
            # A level-1 heading with its own text (one line) is itself a clause until children appear.
            cur = _Clause(l1[0], "", [line])
            clauses.append(cur)
        elif m2:
            l2 = (f"({m2.group(1)})", line)
            cur = _Clause(l1[0] + l2[0], l1[1][:40], [line])
            clauses.append(cur)
        elif m3:
            heading = " ".join(h for h in (l1[1][:40], l2[1].split("。")[0][:40]) if h)
            cur = _Clause(l1[0] + l2[0] + m3.group(1) + ".", heading, [line])
            clauses.append(cur)
        elif cur is None:
            cur = _Clause("正文", "", [line])
            clauses.append(cur)
        else:
            cur.body.append(line)
    # Drop bare level-1/level-2 headings that only introduce children (their text lives in the
    # children's heading path), keep those with a body of their own.
    kept = []
    for i, c in enumerate(clauses):
        nxt = clauses[i + 1] if i + 1 < len(clauses) else None
        is_parent = nxt is not None and nxt.label.startswith(c.label) and nxt.label != c.label
        if is_parent and len(c.body) == 1 and len(c.body[0]) < 40:
            continue
        kept.append(c)
    return kept


def _parse_table(lines: list[str]) -> list[_Clause]:
    rows: list[_Clause] = []
    section = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if L1.match(line):
            section = line
        elif re.fullmatch(r"\d{1,3}", line) and i + 4 < len(lines):
            task, content, deadline, units = lines[i + 1 : i + 5]
            rows.append(_Clause(f"第{line}项", section, [f"{task}：{content}"], units, deadline))
            i += 5
            continue
        i += 1
    return rows


@dataclass(frozen=True)
class Article:
    label: str  # 第九条
    chapter: str  # 第二章 结婚登记 ('' before the first chapter)
    text: str  # the article's paragraphs, joined by newlines, without its label


def parse_articles(text: str) -> list[Article]:
    """A law's articles in order. The Markdown header (title and enactment lines up to
    `<!-- INFO END -->`) is not part of any article."""
    lines = clean_text(text)
    if "<!-- INFO END -->" in lines:
        lines = lines[lines.index("<!-- INFO END -->") + 1:]
    out: list[Article] = []
    chapter, label, body = "", None, []

    def flush() -> None:
        if label:
            out.append(Article(label, chapter, "\n".join(body)))

    for line in lines:
        if m := CHAPTER.match(line):
            if m.group(1).endswith(("章", "编")):
                chapter = " ".join(x for x in (m.group(1), m.group(2).replace(" ", "")) if x)
            continue
        if line.startswith("#"):
            continue
        if m := ARTICLE.match(line):
            flush()
            label, body = m.group(1), [m.group(2)] if m.group(2) else []
        elif label:
            body.append(line)
    flush()
    return out


def _parse_articles_as_clauses(text: str) -> list[_Clause]:
    return [_Clause(a.label, a.chapter, [a.text.replace("\n", "")]) for a in parse_articles(text)]


def document_passages(doc: PolicyDocument, text: str) -> list[Passage]:
    if doc.layout == "articles":
        return _passages(doc, _parse_articles_as_clauses(text), prefix="law", stem=doc.key)
    lines = clean_text(text)
    # Drop the title block and signature lines that restate metadata rather than rules.
    lines = [l for l in lines if l not in (doc.title, doc.issuer) and not re.fullmatch(r"\d{4}年\d{1,2}月\d{0,2}日?(印发)?", l)]
    parsed = _parse_table(lines) if doc.layout == "table" else _parse_clauses(lines)
    return _passages(doc, parsed, prefix="policy", stem=doc.file.split("_")[0])


def _passages(doc: PolicyDocument, parsed: list[_Clause], prefix: str, stem: str) -> list[Passage]:
    passages = []
    for n, clause in enumerate(parsed):
        body = "".join(clause.body)
        for j, chunk in enumerate(_split_long(body)):
            extra = []
            if clause.responsible:
                extra.append(clause.responsible if "：" in clause.responsible else f"责任单位：{clause.responsible}")
            if clause.deadline:
                extra.append(f"完成时限：{clause.deadline}")
            text_ = " ".join([chunk, *extra]) if j == 0 else chunk
            if clause.heading and not chunk.startswith(clause.heading):
                text_ = f"{clause.heading} {text_}"
            passages.append(
                Passage(
                    id=f"{prefix}-{stem}-{n:03d}" + (f"-{j}" if j else ""),
                    text=text_,
                    source_type="law" if doc.kind == "law" else "policy",
                    doc_id=stem,
                    title=doc.short_title,
                    doc_number=doc.doc_number,
                    issuer=doc.issuer,
                    date=doc.date,
                    clause=clause.label,
                    region=doc.region,
                    responsible=clause.responsible,
                    deadline=clause.deadline,
                )
            )
    return passages


def load_documents(folder: Path) -> list[PolicyDocument]:
    data = yaml.safe_load((folder / "documents.yaml").read_text(encoding="utf-8"))
    return [PolicyDocument.model_validate(d) for d in data["documents"]]


def read_text(folder: Path, doc: PolicyDocument) -> str:
    return (folder / doc.file).read_bytes().decode("utf-8", errors="replace")


def policy_passages(folder: Path) -> list[Passage]:
    """The retrieval index's policy clauses (laws are held for grounding, not indexed: see above)."""
    passages = []
    for doc in load_documents(folder):
        if doc.kind != "law":
            passages.extend(document_passages(doc, read_text(folder, doc)))
    return passages


def law_passages(folder: Path) -> list[Passage]:
    """Every held law's articles, parsed by the same clause parser (validation counts them)."""
    passages = []
    for doc in load_documents(folder):
        if doc.kind == "law":
            passages.extend(document_passages(doc, read_text(folder, doc)))
    return passages

