"""Grounding: is each fact a guide states actually said by the text it cites?

A fact's provenance names a source (a key of `Guide.sources`) and a clause. When that source is a
text the system holds (knowledge/sources/, registered in documents.yaml) and the clause names its
articles (第九条, 第二章) or clauses (一、(一)), the fact is checked against the text of those
articles: every figure the fact states (amounts, days, ages, counts) and, for a material, the
document it names must appear there. The result per fact is one of

* ``grounded``        — the cited articles exist and say the fact's figures and documents;
* ``contradicted``    — an article does not exist, or a figure or document is not in it
                        (`python -m knowledge` fails on these);
* ``not_held``        — the cited text is not held (or only a superseded version of it is);
* ``no_article``      — the text is held but the provenance names no article or clause of it;
* ``unsourced``       — no source at all (what to check is then the fact's 待核实 note).

Matching is textual on purpose: it cannot tell that a rule is *right*, only that the guide says
what its cited article says, which is what a citizen following the 「依据」 link would check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cn2an

from knowledge.policies import Article, PolicyDocument, document_passages, load_documents, parse_articles, read_text
from knowledge.schema import Guide, Source

GROUNDED, CONTRADICTED, NOT_HELD, NO_ARTICLE, UNSOURCED = (
    "grounded", "contradicted", "not_held", "no_article", "unsourced")
STATUSES = (GROUNDED, CONTRADICTED, NOT_HELD, NO_ARTICLE, UNSOURCED)
# What admins and `python -m knowledge` read.
STATUS_LABELS = {GROUNDED: "有据", CONTRADICTED: "与条文不符", NOT_HELD: "引用但未收录",
                 NO_ARTICLE: "未指明条款", UNSOURCED: "无来源"}


# ---------- the held texts ----------
@dataclass(frozen=True)
class HeldText:
    doc: PolicyDocument
    articles: dict[str, Article]  # label (第九条, 一、(一)) → text, in document order

    @property
    def key(self) -> str:
        return self.doc.key


def _clauses_as_articles(doc: PolicyDocument, text: str) -> dict[str, Article]:
    """A policy notice's clauses (一、(一) …) keyed by label, chunks joined back together."""
    out: dict[str, Article] = {}
    for p in document_passages(doc, text):
        prev = out.get(p.clause or "")
        body = f"{prev.text}{p.text}" if prev else p.text
        out[p.clause or ""] = Article(p.clause or "", "", body)
    return out


def load_held(folder: Path) -> dict[str, HeldText]:
    """Every registered text by key, laws split into articles and notices into clauses."""
    held = {}
    for doc in load_documents(folder):
        text = read_text(folder, doc)
        arts = ({a.label: a for a in parse_articles(text)} if doc.layout == "articles"
                else _clauses_as_articles(doc, text))
        held[doc.key] = HeldText(doc, arts)
    return held


@lru_cache(maxsize=4)
def held_texts(folder: Path | None = None) -> dict[str, HeldText]:
    """The repository's held texts (cached: they change only with a commit)."""
    from knowledge.records import SOURCES_DIR

    return load_held(folder or SOURCES_DIR)


def _norm_title(title: str) -> str:
    t = re.sub(r"[（(][^）)]*[）)]", "", title)  # （2017年8月8日）, （2003年）
    t = t.replace("中华人民共和国", "")
    return re.sub(r"[\s“”\"《》「」·、]", "", t)


@dataclass(frozen=True)
class Resolved:
    held: HeldText | None  # the current held text the source names
    note: str = ""  # why it is not held, when held is None


def resolve(source: Source, held: dict[str, HeldText]) -> Resolved:
    """The held text a guide's source names: same document number, else same title.

    A text that has been superseded never resolves (it is never cited as current): the fact is
    then cited-but-not-held, with a note saying which version the library has."""
    number = (source.doc_number or "").strip()
    title = _norm_title(source.title)
    by_number = [h for h in held.values() if number and h.doc.doc_number and number in h.doc.doc_number]
    by_title = [h for h in held.values() if title in {_norm_title(h.doc.title), _norm_title(h.doc.short_title)}]
    for h in by_number + [h for h in by_title if h.doc.current]:
        if h.doc.current:
            return Resolved(h)
    old = (by_number or by_title or [None])[0]
    if old is not None:
        return Resolved(None, f"本库只收录了已被取代的{old.doc.doc_number or old.doc.date}文本"
                              f"（{old.doc.superseded}起由{old.doc.superseded_by}取代）")
    return Resolved(None, "本库未收录该文本")


# ---------- clauses → articles ----------
_ARTICLE = re.compile(r"第[零〇一二三四五六七八九十百千]+条(?:之[一二三四五六七八九十]+)?")
_CHAPTER = re.compile(r"第[零〇一二三四五六七八九十百]+[章编]")
_L1 = re.compile(r"([一二三四五六七八九十]+)、")
_L2 = re.compile(r"[（(]([一二三四五六七八九十]+)[）)]")


def cited_labels(clause: str | None, text: HeldText) -> tuple[list[str], list[str]]:
    """(labels of the held text's articles the clause names, names that match no article).

    第九条 → [第九条]; 第二章 → every article of chapter two; 一、(一)；三、(十一)、(十六) → those
    clauses of a notice (a bare 一、 → all of its sub-clauses); 第19项 → that row of a table."""
    if not clause:
        return [], []
    found, missing = [], []
    if text.doc.layout == "articles":
        for label in _ARTICLE.findall(clause):
            (found if label in text.articles else missing).append(label)
        for chap in _CHAPTER.findall(clause):
            hits = [a.label for a in text.articles.values() if a.chapter.split(" ")[0] == chap]
            found += hits
            if not hits:
                missing.append(chap)
        return found, missing
    if text.doc.layout == "table":  # a responsibility table: rows 第N项
        for label in re.findall(r"第\d+项", clause):
            (found if label in text.articles else missing).append(label)
        return found, missing
    for part in re.split(r"[；;]", clause):
        m1 = _L1.search(part)
        if not m1:
            continue
        top = m1.group(1) + "、"
        subs = [f"{top}({s})" for s in _L2.findall(part)] or [top]
        for label in subs:
            hits = [k for k in text.articles if k == label or k.startswith(label)]
            found += hits
            if not hits:
                missing.append(label)
    return found, missing


# ---------- what a fact states ----------
_UNIT = {"个工作日": "日", "工作日": "日", "日": "日", "天": "日", "周岁": "岁", "岁": "岁", "元": "元",
         "个月": "月", "年": "年", "次": "次", "本": "本", "份": "份", "张": "张", "项": "项",
         "公里": "公里", "小时": "小时", "周": "周"}
_FIGURE = re.compile(r"(?<![\d.月第])(\d+(?:\.\d+)?)\s*(" + "|".join(sorted(_UNIT, key=len, reverse=True)) + ")")


def digits(text: str) -> str:
    """Chinese numerals as digits (十五日 → 15日), so a guide's 15日 meets the law's 十五日."""
    try:
        return cn2an.transform(text, "cn2an")
    except (ValueError, KeyError, IndexError):  # cn2an gives up on odd mixtures: keep the text as is
        return text


def figures(text: str) -> set[tuple[str, str]]:
    """(number, unit) pairs a text states: 15日, 16周岁, 20元, 1次, 6个月. Calendar years (2022年) and
    dates (5月1日; a bare 月 is a calendar month, a duration is 个月) are not figures of the rule."""
    out = set()
    for num, unit in _FIGURE.findall(digits(text)):
        u = _UNIT[unit]
        if u == "年" and float(num) >= 1900:
            continue
        out.add((num.rstrip("0").rstrip(".") if "." in num else num, u))
    return out


_SPLIT_NAMES = re.compile(r"[或、和及与，,；;（）()/]|以及")
_QUALIFIERS = re.compile(r"^(本人|申请人|当事人|买卖双方|双方|男女双方|一方|有效|合法有效|的|近期|免冠|二寸|一寸|彩色|原)+")
_DOC_SUFFIX = re.compile(r"(证明材料|证明|证件|证书|身份证|户口簿|户口本|簿|证|执照|合同|照片|相片|声明|凭证|协议书|协议|申请书|申请表|登记表|表)$")
_SYNONYMS = {"照片": "相片", "户口本": "户口簿", "身份证": "居民身份证"}


def document_names(material: str) -> list[str]:
    """The documents a material's name names: 本人有效居民身份证或社会保障卡 → [居民身份证, 社会保障卡]."""
    out = []
    for part in _SPLIT_NAMES.split(material):
        part = _QUALIFIERS.sub("", part.strip())
        if len(part) >= 2 and (_DOC_SUFFIX.search(part) or part.endswith("卡")):
            out.append(part)
    return out


def _bigrams(text: str) -> set[str]:
    return {text[i:i + 2] for i in range(len(text) - 1)}


def _mentions(article: str, name: str) -> bool:
    """The article names this document: literally, through a synonym, or in its own words — the kind
    of paper (证明, 簿 …) is there and most of the name's character pairs are (机动车驾驶人身体条件证明
    ← “机动车驾驶人的身份证明；医疗机构出具的有关身体条件的证明”)."""
    if name in article:
        return True
    for a, b in _SYNONYMS.items():
        if a in name and name.replace(a, b) in article:
            return True
    m = _DOC_SUFFIX.search(name)
    if not m or m.group(1) not in article:
        return False
    pairs = _bigrams(name)
    return len(pairs & _bigrams(article)) >= 0.75 * len(pairs)


def fact_text(g: Guide, path: str) -> str:
    """The words of one fact, as a citizen reads it (a material: its name, condition and notes)."""
    value = g
    for part in path.split("."):
        value = value[int(part)] if isinstance(value, list) else getattr(value, part)
    if path.startswith("materials.") and path.count(".") == 1:
        return " ".join(x for x in (value.name, value.condition, value.notes) if x)
    if path in ("legal_limit", "promised_limit"):
        return "即办" if value == "即办" else f"{value}个工作日"
    if isinstance(value, list):
        return "；".join(v if isinstance(v, str) else str(v) for v in value)
    if hasattr(value, "model_dump"):
        return " ".join(str(v) for v in value.model_dump().values() if v not in (None, "", [], False))
    return str(value)


# ---------- the check ----------
@dataclass(frozen=True)
class FactGrounding:
    guide: str
    path: str
    status: str
    source: str | None = None  # the guide's source key
    held: str | None = None  # the held text's key (when held)
    articles: tuple[str, ...] = ()  # the labels checked against
    detail: str = ""  # what is missing or why the text is not held

    @property
    def label(self) -> str:
        return STATUS_LABELS[self.status]


def check_fact(g: Guide, path: str, held: dict[str, HeldText]) -> FactGrounding:
    entry = g.source_of(path)
    if entry is None or not entry.source:
        return FactGrounding(g.id, path, UNSOURCED)
    res = resolve(g.sources[entry.source], held)
    if res.held is None:
        return FactGrounding(g.id, path, NOT_HELD, entry.source, detail=res.note)
    text = res.held
    labels, missing = cited_labels(entry.clause, text)
    if missing:
        return FactGrounding(g.id, path, CONTRADICTED, entry.source, text.key, tuple(labels),
                             f"《{text.doc.short_title}》没有{'、'.join(missing)}")
    if not labels:
        return FactGrounding(g.id, path, NO_ARTICLE, entry.source, text.key,
                             detail=f"来源已收录，但未指明条款（{entry.clause or '无'}）")
    body = "\n".join(text.articles[label].text for label in labels)
    said = figures(body)
    stated = fact_text(g, path)
    absent = [f"{n}{u}" for n, u in sorted(figures(stated)) if (n, u) not in said]
    if path.startswith("materials.") and path.count(".") == 1:
        norm = digits(body)
        absent += [f"“{name}”" for name in document_names(getattr(g, "materials")[int(path.split(".")[1])].name)
                   if not _mentions(norm, name)]
    if absent:
        return FactGrounding(g.id, path, CONTRADICTED, entry.source, text.key, tuple(labels),
                             f"{'、'.join(labels)}中没有{'、'.join(absent)}")
    return FactGrounding(g.id, path, GROUNDED, entry.source, text.key, tuple(labels), _regional(g, text))


def _regional(g: Guide, text: HeldText) -> str:
    """A district's (海沧, 湖里) or another county's (东平县) text grounds only a guide of that place:
    for any other guide the fact is flagged, never passed off as a city-wide rule."""
    region = text.doc.region
    if region in ("全国", "厦门市") or region == g.region:
        return ""
    return f"所引文本仅适用于{region}，不是{g.region}的统一规定"


def contradiction(f: FactGrounding) -> str:
    """The one wording of a contradicted fact, for `python -m knowledge` and the admin form."""
    return f"事实 {f.path} 与所引条文不符：{f.detail}"


def check_guide(g: Guide, held: dict[str, HeldText] | None = None) -> list[FactGrounding]:
    held = held if held is not None else held_texts()
    return [check_fact(g, path, held) for path in g.fact_paths()]


@dataclass
class GroundingReport:
    facts: list[FactGrounding] = field(default_factory=list)

    def counts(self, guide: str | None = None) -> dict[str, int]:
        out = {s: 0 for s in STATUSES}
        for f in self.facts:
            if guide is None or f.guide == guide:
                out[f.status] += 1
        return out

    @property
    def guides(self) -> list[str]:
        return sorted({f.guide for f in self.facts})

    @property
    def contradicted(self) -> list[FactGrounding]:
        return [f for f in self.facts if f.status == CONTRADICTED]


def grounding_report(guides: list[Guide], held: dict[str, HeldText]) -> GroundingReport:
    return GroundingReport([f for g in guides for f in check_guide(g, held)])


def format_counts(counts: dict[str, int]) -> str:
    return "，".join(f"{STATUS_LABELS[s]} {counts[s]}" for s in STATUSES)


# ---------- for answers and pages ----------
def article_url(key: str, label: str) -> str:
    return f"/sources/{key}#{label}"


def article_sources(g: Guide, paths: list[str], held: dict[str, HeldText] | None = None) -> list[dict]:
    """The articles the given facts rest on, in the reply-payload contract's form
    ({"type": "article", "source", "title", "article", "url"}), grounded facts only, each article once.

    The answer composer calls this with the fact paths its answer states (e.g. ["materials.0",
    "fee"]); a fact whose cited article does not say it yields nothing, so an answer never links
    a clause that does not back it."""
    held = held if held is not None else held_texts()
    out, seen = [], set()
    for path in paths:
        f = check_fact(g, path, held) if g.has(path) else None
        if f is None or f.status != GROUNDED or held[f.held].doc.layout != "articles":
            continue
        for label in f.articles:
            if (f.held, label) in seen:
                continue
            seen.add((f.held, label))
            out.append({"type": "article", "source": f.held, "title": held[f.held].doc.short_title,
                        "article": label, "url": article_url(f.held, label)})
    return out


def article_text(key: str, label: str, held: dict[str, HeldText] | None = None) -> Article | None:
    held = held if held is not None else held_texts()
    text = held.get(key)
    return text.articles.get(label) if text else None

