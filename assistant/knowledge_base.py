"""Knowledge with history: guides and policy documents kept as revisions in the database.

Every save is a new `KnowledgeRevision` (who, when, why); nothing is ever updated in place, so
any two revisions can be compared and any revision restored (as a new one). A guide revision holds
the YAML text exactly as exported; a policy document revision holds the raw text file and its
entry of `sources/documents.yaml`. The repository's `knowledge/` folder is the seed of a fresh
machine and the export format: `import_folder` then `export_folder` gives the same files back byte
for byte, and importing an unchanged export adds no revision.

Validation is knowledge's own (`knowledge.guides.parse_guide`, `knowledge.policies`), so whatever
the schema requires, the admin pages report in the same words as `python -m knowledge`.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import io
import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from assistant import audit
from assistant.db import KnowledgeRevision
from knowledge.grounding import CONTRADICTED, check_guide, contradiction
from knowledge.guides import SAFE_LOADER, Problem, parse_guide
from knowledge.policies import PolicyDocument, document_passages
from knowledge.schema import FIELD_LABELS

GUIDE, DOCUMENT = "guide", "document"
REGISTRY = "documents.yaml"
REGISTRY_HEADER = """\
# Registry of policy documents. Each entry describes one raw text file in this folder.
# Metadata is recorded here by an admin (it is not reliably extractable from scraped pages);
# the clause structure is parsed from the text by knowledge/policies.py.
# region: where the document's rules apply. Only 厦门市 documents state city-wide rules.
# layout: "clauses" (一、/（一）/1. headings), "table" (responsibility table, one row per task) or
#   "articles" (a national law or regulation, 第X条; kind: law, region: 全国, files under laws/).
# kind: law — date is the version held; superseded/superseded_by say when and by what it was replaced
#   (a superseded text is kept for reference and never cited as current). Laws are held for the
#   grounding check and the citizens' clause pages, not put in the retrieval index.
documents:
"""
DOC_FIELDS = list(PolicyDocument.model_fields)  # order of keys in documents.yaml


class InvalidKnowledge(ValueError):
    """A save that knowledge validation rejects; `problems` name the field in Chinese."""

    def __init__(self, problems: list[Problem]):
        super().__init__("；".join(str(p) for p in problems))
        self.problems = problems


@dataclass
class Saved:
    revision: KnowledgeRevision
    changed: bool  # False: identical to the current revision, nothing was added


# ---------- validation ----------
def validate_guide(key: str, content: str) -> tuple[dict | None, list[Problem]]:
    """(guide as a validated dict, []) or (None, problems) — exactly what `python -m knowledge` reports."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{key}.yaml"
        path.write_text(content, encoding="utf-8")
        guide, problems = parse_guide(path)
    if guide is not None:  # a fact its cited article contradicts is refused, as `make validate` fails on it
        problems = [Problem(path.name, "事实来源(provenance)", contradiction(f))
                    for f in check_guide(guide) if f.status == CONTRADICTED]
        if problems:
            return None, problems
    return (guide.model_dump(mode="json") if guide else None), problems


def problem_field(p: Problem) -> str:
    """The top-level guide field a problem is about (`收费标准(fee) > …` → fee), for showing it next to the input."""
    m = re.search(r"\((\w+)\)", p.field)
    return m.group(1) if m else ""


def validate_document(meta: dict, text: str) -> list:
    """The clauses (passages) a policy document is cut into; raises InvalidKnowledge when it cannot be read."""
    try:
        doc = PolicyDocument.model_validate(meta)
    except Exception as exc:  # pydantic ValidationError: name the fields
        errs = getattr(exc, "errors", lambda: [])()
        raise InvalidKnowledge([Problem(meta.get("file", "?"), ".".join(map(str, e["loc"])), "缺少或取值无效")
                                for e in errs] or [Problem(meta.get("file", "?"), "(整个文件)", str(exc))])
    passages = document_passages(doc, text)
    if not passages:
        raise InvalidKnowledge([Problem(doc.file, "(整个文件)", "没有识别出任何条款（正文为空或格式无法识别）")])
    return passages


# ---------- reading ----------
def current(session: Session, kind: str, key: str) -> KnowledgeRevision | None:
    return session.scalars(select(KnowledgeRevision).where(KnowledgeRevision.kind == kind, KnowledgeRevision.key == key)
                           .order_by(KnowledgeRevision.number.desc()).limit(1)).first()


def current_all(session: Session, kind: str | None = None) -> list[KnowledgeRevision]:
    """The newest revision of every key (deleted ones excluded), ordered by kind and key."""
    latest = (select(KnowledgeRevision.kind, KnowledgeRevision.key, func.max(KnowledgeRevision.number).label("n"))
              .group_by(KnowledgeRevision.kind, KnowledgeRevision.key).subquery())
    q = (select(KnowledgeRevision).join(latest, (KnowledgeRevision.kind == latest.c.kind)
                                        & (KnowledgeRevision.key == latest.c.key) & (KnowledgeRevision.number == latest.c.n))
         .where(KnowledgeRevision.deleted.is_(False)).order_by(KnowledgeRevision.kind, KnowledgeRevision.key))
    if kind:
        q = q.where(KnowledgeRevision.kind == kind)
    return list(session.scalars(q))


def history(session: Session, kind: str, key: str) -> list[KnowledgeRevision]:
    return list(session.scalars(select(KnowledgeRevision).where(KnowledgeRevision.kind == kind, KnowledgeRevision.key == key)
                                .order_by(KnowledgeRevision.number.desc())))


def revision(session: Session, kind: str, key: str, number: int) -> KnowledgeRevision | None:
    return session.scalars(select(KnowledgeRevision).where(
        KnowledgeRevision.kind == kind, KnowledgeRevision.key == key, KnowledgeRevision.number == number)).first()


def guide_data(rev: KnowledgeRevision) -> dict:
    return yaml.load(rev.content, Loader=SAFE_LOADER) or {}


# ---------- writing ----------
def save(session: Session, kind: str, key: str, content: str, author: str, reason: str,
         meta: dict | None = None, deleted: bool = False, action: str = "save") -> Saved:
    """Validate and add the next revision (in the caller's transaction, audited). Identical content adds nothing."""
    if not reason.strip():
        raise InvalidKnowledge([Problem(key, "修改说明", "请写明修改原因")])
    if not deleted:
        if kind == GUIDE:
            _, problems = validate_guide(key, content)
            if problems:
                raise InvalidKnowledge(problems)
        else:
            validate_document(meta or {}, content)
    prev = current(session, kind, key)
    meta_json = json.dumps(meta, ensure_ascii=False, sort_keys=True) if meta is not None else None
    if prev and prev.content == content and prev.meta == meta_json and prev.deleted == deleted:
        return Saved(prev, False)
    rev = KnowledgeRevision(kind=kind, key=key, number=(prev.number + 1) if prev else 1, content=content,
                            meta=meta_json, deleted=deleted, author=author, reason=reason.strip())
    session.add(rev)
    session.flush()
    audit.record(session, author, f"{kind}.{action}", f"{kind}/{key}", {"revision": rev.number, "reason": rev.reason})
    return Saved(rev, True)


def restore(session: Session, kind: str, key: str, number: int, author: str, reason: str) -> Saved:
    old = revision(session, kind, key, number)
    if old is None:
        raise LookupError(f"没有这个版本：{kind}/{key} 第{number}版")
    why = reason.strip() or f"恢复到第{number}版"
    return save(session, kind, key, old.content, author, why, json.loads(old.meta) if old.meta else None,
                deleted=old.deleted, action="restore")


def guide_yaml(data: dict, previous: str | None = None) -> str:
    """A guide dict as YAML in the repository's style; keeps the comment lines heading the previous text."""
    head = []
    for line in (previous or "").splitlines():
        if not line.startswith("#"):
            break
        head.append(line + "\n")
    body = yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=10_000, default_flow_style=False)
    return "".join(head) + body


# ---------- comparing ----------
def diff(a: KnowledgeRevision, b: KnowledgeRevision) -> dict:
    """Field-level changes (guides: each top-level field; documents: registry entry) and a unified text diff."""
    fields = []
    if a.kind == GUIDE:
        da, db_ = guide_data(a), guide_data(b)
    else:
        da, db_ = json.loads(a.meta or "{}"), json.loads(b.meta or "{}")
    for name in dict.fromkeys([*da, *db_]):
        if da.get(name) != db_.get(name):
            fields.append({"field": name, "label": FIELD_LABELS.get(name, name),
                           "old": _show(da.get(name)), "new": _show(db_.get(name))})
    unified = "".join(difflib.unified_diff(a.content.splitlines(True), b.content.splitlines(True),
                                           fromfile=f"{a.key} 第{a.number}版", tofile=f"{b.key} 第{b.number}版"))
    return {"fields": fields, "unified": unified}


def _show(value) -> str:
    if value is None:
        return "（空）"
    if isinstance(value, (dict, list)):
        return yaml.safe_dump(value, allow_unicode=True, sort_keys=False, width=10_000).strip()
    return str(value)


# ---------- the repository folder: initial import and export format ----------
def import_folder(session: Session, root: Path, author: str, reason: str) -> dict:
    """Import knowledge/guides/*.yaml and knowledge/sources/ (registry + texts). Unchanged files add nothing.

    A guide that fails validation is reported and skipped (the others still import), like `python -m knowledge`.
    """
    added, unchanged, problems = 0, 0, []
    for path in sorted((root / "guides").glob("*.yaml")):
        try:
            r = save(session, GUIDE, path.stem, path.read_text(encoding="utf-8"), author, reason, action="import")
        except InvalidKnowledge as exc:
            problems.extend(exc.problems)
            continue
        added += r.changed
        unchanged += not r.changed
    reg = root / "sources" / REGISTRY
    if reg.exists():
        for entry in (yaml.safe_load(reg.read_text(encoding="utf-8")) or {}).get("documents", []):
            text = (root / "sources" / entry["file"]).read_text(encoding="utf-8")
            try:
                r = save(session, DOCUMENT, entry["file"], text, author, reason, meta=entry, action="import")
            except InvalidKnowledge as exc:
                problems.extend(exc.problems)
                continue
            added += r.changed
            unchanged += not r.changed
    return {"added": added, "unchanged": unchanged, "problems": [str(p) for p in problems]}


def _registry_value(name: str, value) -> str:
    if value is None:
        return "null"
    text = str(value)
    # Dates stay quoted strings (as in the repository); anything YAML would read differently gets quoted.
    if name == "date" or yaml.safe_load(f"x: {text}") != {"x": text}:
        return json.dumps(text, ensure_ascii=False)
    return text


def registry_text(entries: list[dict]) -> str:
    out = [REGISTRY_HEADER]
    for e in entries:
        keys = [k for k in DOC_FIELDS if k in e] + [k for k in e if k not in DOC_FIELDS]
        for i, k in enumerate(keys):
            out.append(f"{'  - ' if i == 0 else '    '}{k}: {_registry_value(k, e[k])}\n")
    return "".join(out)


def export_folder(session: Session, dest: Path) -> dict:
    """Write the current revisions as `dest/guides/*.yaml` and `dest/sources/` — the builder's input format."""
    (dest / "guides").mkdir(parents=True, exist_ok=True)
    (dest / "sources").mkdir(parents=True, exist_ok=True)
    snapshot, entries = {}, []
    for rev in current_all(session):
        snapshot[f"{rev.kind}/{rev.key}"] = rev.number
        if rev.kind == GUIDE:
            (dest / "guides" / f"{rev.key}.yaml").write_text(rev.content, encoding="utf-8")
        else:
            target = dest / "sources" / rev.key
            target.parent.mkdir(parents=True, exist_ok=True)  # laws/ holds the national texts
            target.write_text(rev.content, encoding="utf-8")
            entries.append(json.loads(rev.meta))
    (dest / "sources" / REGISTRY).write_text(registry_text(entries), encoding="utf-8")
    return snapshot


# ---------- the guides list ----------
def review_date(rev: KnowledgeRevision) -> dt.date | None:
    """The latest date a fact of this guide was checked against its source (None: never)."""
    dates = [p.get("reviewed") for p in (guide_data(rev).get("provenance") or {}).values() if isinstance(p, dict)]
    value = max((d for d in dates if d), default=None, key=str)
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        return None


def months_before(today: dt.date, months: int) -> dt.date:
    y, m = divmod(today.year * 12 + today.month - 1 - months, 12)
    return dt.date(y, m + 1, min(today.day, 28))


def oldest_review(rev: KnowledgeRevision) -> dt.date | None:
    """The oldest date a fact of this guide was checked against its source: when its review falls due."""
    dates = []
    for p in (guide_data(rev).get("provenance") or {}).values():
        value = p.get("reviewed") if isinstance(p, dict) else None
        if isinstance(value, str):
            try:
                value = dt.date.fromisoformat(value)
            except ValueError:
                value = None
        if isinstance(value, dt.date):
            dates.append(value)
    return min(dates, default=None)


REVIEW_FILTERS = {"overdue": "审核已过期", "never": "从未审核", "due": "审核过期或从未审核"}


def guide_rows(session: Session, older_than_months: int | None = None, today: dt.date | None = None,
               max_age_days: int | None = None, review: str = "", sort: str = "") -> list[dict]:
    """One row per current guide: category, review dates, number of 待核实 facts, last editor.

    With max_age_days a guide is `overdue` when its oldest fact review is older than that (the facts
    checked longest ago are the ones to check again); review= filters by REVIEW_FILTERS, sort="review"
    puts the longest-overdue first (never-reviewed guides before all)."""
    today = today or dt.date.today()
    cutoff = months_before(today, older_than_months) if older_than_months else None
    rows = []
    for rev in current_all(session, GUIDE):
        data = guide_data(rev)
        reviewed = review_date(rev)
        if cutoff and reviewed and reviewed >= cutoff:
            continue
        oldest = oldest_review(rev)
        due = oldest + dt.timedelta(days=max_age_days) if oldest and max_age_days is not None else None
        overdue = bool(due and due < today)
        if (review == "overdue" and not overdue) or (review == "never" and oldest) or \
                (review == "due" and oldest and not overdue):
            continue
        rows.append({"id": rev.key, "name": data.get("name", rev.key), "category": data.get("category") or "",
                     "kind": data.get("kind", "matter"), "reviewed": reviewed, "oldest_review": oldest,
                     "review_due": due, "overdue": overdue,
                     "needs_check": sum(1 for p in (data.get("provenance") or {}).values() if isinstance(p, dict) and p.get("check")), "editor": rev.author,
                     "edited_at": rev.created_at, "revision": rev.number})
    if sort == "review":
        rows.sort(key=lambda r: (r["oldest_review"] is not None, r["oldest_review"] or dt.date.min, r["id"]))
    return rows


def review_counts(session: Session, max_age_days: int, today: dt.date | None = None) -> dict:
    """How many guides are overdue for review and how many were never reviewed (the overview page)."""
    rows = guide_rows(session, today=today, max_age_days=max_age_days)
    return {"overdue": sum(r["overdue"] for r in rows), "never": sum(r["oldest_review"] is None for r in rows),
            "total": len(rows), "max_age_days": max_age_days}


def new_guide_template(guide_id: str, name: str) -> str:
    """The YAML of a new guide from the template: the fields every matter needs, to be filled in the form."""
    data = {
        "id": guide_id, "kind": "matter", "name": name, "category": None, "region": "厦门市", "aliases": [],
        "questions": [], "summary": f"{name}的办理指南（待完善）。", "department": None, "applicants": None,
        "conditions": [], "materials": [{"name": "本人有效居民身份证", "form": "原件", "copies": 1}], "steps": [],
        "legal_limit": None, "promised_limit": None, "time_notes": None, "fee": "免费", "channels": ["窗口"],
        "scope": None, "scope_notes": None, "appointment": None, "locations": [],
        "sources": {"待补充": {"title": "待补充：本指南的信息来源（新建时尚未填写）"}},
        "provenance": {"materials.0": {"check": "材料清单尚未核实：请对照办事指南原文核实后填写来源。"},
                       "fee": {"check": "收费标准尚未核实：请对照收费文件核实后填写来源。"}},
    }
    return guide_yaml(data)


# ---------- policy documents: upload ----------
MAX_UPLOAD = 5 * 1024 * 1024


def _table_cells(table) -> list[str]:
    """The text of each grid cell of a Word table, row by row, as python-docx's `row.cells` gives it
    (a cell spanning columns once per column, a vertically merged cell's text on every row it
    covers). `row.cells` finds a merged cell's text by walking up one row at a time, each step an
    XPath search: a responsibility table whose 责任单位 column is merged over 100 rows took seconds
    (200 rows: 30 s). Here each grid column remembers the text above it: one pass."""
    from docx.table import _Cell

    out: list[str] = []
    above: dict[int, str] = {}  # grid column → text of the cell a vertical merge continues
    for tr in table._tbl.tr_lst:
        col = tr.grid_before
        for tc in tr.tc_lst:
            span = tc.grid_span
            text = above.get(col, "") if tc.vMerge == "continue" else _Cell(tc, table).text
            for k in range(span):
                above[col + k] = text
            out.extend([text] * span)
            col += span
    return out


def decode_text(data: bytes) -> str | None:
    """Text as Chinese Windows and Excel save it: UTF-8 (with or without a BOM) or GBK, whose
    superset GB18030 is tried; None when it is neither."""
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    return None


def extract_text(filename: str, data: bytes) -> str:
    """Plain text of an uploaded policy document (.txt, .docx or a PDF with a text layer)."""
    name = filename.lower()
    if len(data) > MAX_UPLOAD:
        raise InvalidKnowledge([Problem(filename, "文件", "文件过大（上限 5 MB）")])
    if name.endswith(".txt"):
        text = decode_text(data)
        if text is None:
            raise InvalidKnowledge([Problem(filename, "文件", "无法识别文本编码，请另存为 UTF-8 文本")])
    elif name.endswith(".docx"):
        import docx  # python-docx

        try:
            d = docx.Document(io.BytesIO(data))
        except Exception:
            raise InvalidKnowledge([Problem(filename, "文件", "不是有效的 Word (.docx) 文件")])
        lines = [p.text for p in d.paragraphs]
        for table in d.tables:  # responsibility tables: one cell per line, as the table layout expects
            lines.extend(_table_cells(table))
        text = "\n".join(lines)
    elif name.endswith(".pdf"):
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError

        try:
            text = "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)
        except (PdfReadError, ValueError, KeyError):
            raise InvalidKnowledge([Problem(filename, "文件", "不是有效的 PDF 文件")])
        if len(re.sub(r"\s", "", text)) < 20:
            raise InvalidKnowledge([Problem(filename, "文件", "这是扫描版 PDF（没有可提取的文字），请上传带文字的 PDF、Word 或文本文件")])
    else:
        raise InvalidKnowledge([Problem(filename, "文件", "只支持 .txt、.docx 和 .pdf 文件")])
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise InvalidKnowledge([Problem(filename, "文件", "文件没有文字内容")])
    return text


def document_file_name(session: Session, text: str) -> str:
    """`NNN_<sha256 prefix>.txt`, the repository's naming of source files."""
    numbers = [int(r.key.split("_")[0]) for r in current_all(session, DOCUMENT) if r.key.split("_")[0].isdigit()]
    return f"{max(numbers, default=-1) + 1:03d}_{hashlib.sha256(text.encode()).hexdigest()[:16]}.txt"


def main(argv: list[str] | None = None) -> int:
    """python -m assistant.knowledge_base import [DIR] | export DIR   (automation; the pages do the same)"""
    import argparse
    import sys

    from assistant.db import sessions, upgrade
    from settings import ROOT, get_settings

    ap = argparse.ArgumentParser(prog="python -m assistant.knowledge_base", description=main.__doc__)
    ap.add_argument("cmd", choices=("import", "export"))
    ap.add_argument("folder", type=Path, nargs="?", default=ROOT / "knowledge")
    ap.add_argument("--author", default="system")
    ap.add_argument("--reason", default="命令行导入")
    args = ap.parse_args(argv)
    url = get_settings().database_url
    upgrade(url)
    with sessions(url).begin() as session:
        if args.cmd == "import":
            result = import_folder(session, args.folder, args.author, args.reason)
            for p in result["problems"]:
                print(f"错误: {p}", file=sys.stderr)
            print(f"imported: {result['added']} new revisions, {result['unchanged']} unchanged")
            return 1 if result["problems"] else 0
        snapshot = export_folder(session, args.folder)
        print(f"exported {len(snapshot)} guides and documents to {args.folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
