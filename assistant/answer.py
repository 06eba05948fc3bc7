"""Where a question's answer is composed — the same for the chat (Rasa action) and the hotline API.

    Answerer.run(question, context) -> Answer

1. understand: normalise the text, detect the question type, find the matter(s) named;
2. retrieve: hybrid search over guides and policy clauses (nudged toward the matter in context);
3. decide: a guide answer, a clarifying question (two related matters named, or only a category),
   a policy-clause answer, or an honest "no answer" with 12345;
4. compose: a WeChat-length reply whose first line answers directly, the full checklist when
   materials are asked (一次性告知), and a source line; district and out-of-town rules say so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from embeddings.search import Hit, HybridSearcher
from embeddings.text import normalize, tokenize
from assistant import texts, wording
from assistant.understanding import DISTRICTS, QTYPE_LABELS, MatterLookup, Reader, Reading, extract_question
from knowledge.grounding import article_sources
from knowledge.guides import guide_sections
from knowledge.schema import FIELD_LABELS, ITEMISED_FACTS, Guide, Passage

HOTLINE = "12345"
GUIDE_QTYPES = ["materials", "conditions", "process", "time", "fee", "where", "scope", "booking"]  # answer order
FLAG = "（待核实）"
MAX_POLICY_CHARS = 400  # a whole clause chunk fits; trimming risked cutting the very figure asked for
BUBBLE_POLICY_CHARS = 200  # the first bubble: the sentences that share most words with the question


@dataclass
class Button:
    title: str
    payload: str


@dataclass
class Context:
    matter: str | None = None  # guide id the conversation is about
    qtype: str | None = None  # the last question type asked
    topics: tuple[str, ...] = ()  # the matters discussed so far, oldest first ("回到刚才那个")


@dataclass
class Answer:
    kind: str  # guide | clarify | policy | fallback | empty
    text: str
    buttons: list[Button] = field(default_factory=list)
    matter: str | None = None
    qtype: str | None = None
    confidence: float = 0.0
    sources: list[dict] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    matters: list[str] = field(default_factory=list)  # every matter answered (several: side by side)
    facts: list[str] = field(default_factory=list)  # the fact paths the text states
    detail: str | None = None  # the rest, behind 「展开全部」

    def payload(self) -> dict:
        """What the reply is, as data: the chat page, the admin statistics and feedback read this,
        never the wording."""
        return {"kind": self.kind, "matter": self.matter, "matters": self.matters or ([self.matter] if self.matter else []),
                "qtype": self.qtype, "confidence": round(float(self.confidence), 3), "sources": self.sources,
                "detail": self.detail}


def ask_payload(qtype: str, matter: str) -> str:
    """A button payload Rasa understands as an intent with the matter entity, no NLU needed."""
    intent = "book_appointment" if qtype == "booking" else f"ask_{qtype}"
    return f'/{intent}{{"matter": "{matter}"}}'


def _limit(v) -> str:
    return wording.working_days(v)


def region_note(region: str) -> str:
    if region == "东平县":
        return "注意：以下内容出自山东省东平县的文件，不是厦门市的规定，仅供参考。"
    if region != "厦门市":
        return f"注意：以下是{region}的做法，仅适用于{region}，不代表全市统一规定。"
    return ""


def booking_lines(g: Guide, mark=lambda path: "") -> list[str]:
    """How to book this matter, worded once for the chat and the guide page. `mark(path)` returns the
    待核实 flag of a fact (and records it as stated) in the chat; the page marks facts itself."""
    a = g.appointment
    if a is None:
        return [f"{g.name}可直接到现场取号办理；也可以在办事通对话中预约。"]
    out = [f"{g.name}{'须预约' if a.required else '可预约，也可直接到现场取号'}{mark('appointment')}。"]
    if a.channels:
        out.append("预约渠道：" + "、".join(a.channels) + "，也可以在办事通对话中预约。")
    if a.walk_in:
        out.append("未预约的也可现场取号，不会因未预约被拒绝办理（厦府办〔2018〕138号 三、(十二)）。")
    if a.notes:
        out.append(a.notes)
    return out


class GuideComposer:
    """Guide + question type → reply text and next-step buttons."""

    def run(self, g: Guide, qtype: str, extra: list[str] | None = None,
            also: tuple[str, ...] = (), quote: str | None = None) -> tuple[str, list[Button], list[str], str]:
        """`also`: further question types asked in the same message ("要带什么，多少钱"), answered after;
        `quote`: the policy clause's own wording, one tap away (detail)."""
        used: list[str] = []  # the fact paths this reply states: their sources and checks are told

        def f(path: str) -> str:
            used.append(path)
            return FLAG if g.flagged(path) else ""

        lines: list[str] = []
        note = region_note(g.region)
        if note:
            lines.append(note)
        body = getattr(self, f"_{qtype}", self._general)(g, f)
        if not body:  # the guide has nothing for this type: say so, then give the overview
            body = [f"《{g.name}》暂未收录{QTYPE_LABELS[qtype]}信息，可拨打{HOTLINE}咨询。"] + self._general(g, f)
        lines.extend(body)
        for more in also:
            if more != qtype:
                lines.extend(getattr(self, f"_{more}", lambda *_: [])(g, f))
        lines.extend(extra or [])
        # Shaped for a phone: the answer, one line naming what is unconfirmed, one short source
        # line; what to check for each fact and every clause cited are one tap away (detail).
        note = unconfirmed_note(g, used)
        lines += [note] if note else []
        lines.append(short_source_line(g, used))
        detail = "\n".join([*([quote] if quote else []), *unconfirmed_lines(g, used), source_line(g, used)])
        # A service rule's overview and its place can say the same sentence: say it once.
        return "\n".join(dict.fromkeys(lines)), self._buttons(g, qtype), used, detail

    def brief(self, g: Guide, qtype: str) -> tuple[str, list[str]]:
        """One compact line or two for one of several matters asked together."""
        used: list[str] = []

        def f(path: str) -> str:
            used.append(path)
            return ""

        if qtype == "materials" and g.materials:
            f("materials")
            return f"共{len(g.materials)}项：" + "、".join(m.name for m in g.materials) + "。", used
        if qtype == "process" and g.steps:
            f("steps")
            return "；".join(f"{i}. {st}" for i, st in enumerate(g.steps, 1)) + "。", used
        if qtype == "where":
            body = self._where(g, f)
            locs = [x for x in body if x.startswith("· ")][:2]
            head = [x for x in body if not x.startswith("· ")][:1]
            return " ".join(head + locs) or g.summary or g.name, used
        body = (getattr(self, f"_{qtype}", None) or self._general)(g, f)
        if not body:
            return f"暂未收录{QTYPE_LABELS.get(qtype, '相关')}信息，可拨打{HOTLINE}咨询。", used
        first = body[0]
        prefix = f"{g.name}："
        if first.startswith(prefix):
            first = first[len(prefix):]
        elif first.startswith(g.name):
            first = first[len(g.name):]
        if not first.strip("：。 ") and len(body) > 1:
            first = body[1]  # a heading line ("普通护照：") says nothing yet
        return first, used

    # --- one method per question type; each returns lines, the first answering directly ---
    def _materials(self, g: Guide, f) -> list[str]:
        if not g.materials:
            return []
        out = [f"办理{g.name}需要准备以下材料（共{len(g.materials)}项）{f('materials')}："]
        for i, m in enumerate(g.materials, 1):
            out.append(f"{i}. {wording.material_line(m)}" + f(f"materials.{i - 1}"))
        return out

    def _time(self, g: Guide, f) -> list[str]:
        parts = []
        if g.promised_limit is not None:
            parts.append(wording.promised_limit(g.promised_limit) + f("promised_limit"))
        if g.legal_limit is not None:
            parts.append(wording.legal_limit(g.legal_limit) + f("legal_limit"))
        if not parts and not g.time_notes:
            return []
        out = [f"{g.name}：" + "，".join(parts) + "。" if parts else f"{g.name}："]
        if g.time_notes:
            out.append(g.time_notes + f("time_notes"))
        if g.trips is not None:
            out.append(wording.trips(g.trips) + f("trips") + "。")
        return out

    def _fee(self, g: Guide, f) -> list[str]:
        return [f"{g.name}收费标准：{g.fee}{f('fee')}"] if g.fee else []

    def _where(self, g: Guide, f) -> list[str]:
        out = []
        if g.department:
            out.append(f"{g.name}由{g.department}办理{f('department')}。")
        for i, loc in enumerate(g.locations):
            bits = [x for x in (loc.address, loc.hours and f"办公时间{loc.hours}", loc.phone and f"电话{loc.phone}") if x]
            out.append(f"· {loc.name}" + (f"：{'，'.join(bits)}" if bits else "") + f(f"locations.{i}"))
        if g.channels:
            out.append("办理渠道：" + "、".join(g.channels) + f("channels"))
        if g.phone:
            out.append(f"咨询电话：{g.phone}{f('phone')}")
        if g.scope == "全城通办":
            out.append(self._citywide(g, f) or "本事项全城通办，可就近选择本市任一服务点办理。")
        if out and g.summary and not any(loc.address for loc in g.locations):
            out.append(g.summary + f("summary"))  # without an address, how the matter is handled is the useful part
        return out

    def _scope(self, g: Guide, f) -> list[str]:
        if not g.scope and not g.scope_notes:
            return []
        flag = f("scope")  # an unconfirmed 全城通办 says so in its own words instead of the flag
        sentence = wording.scope_sentence(g) or f"{g.name}："
        out = [sentence + ("" if wording.scope_hedged(g) else flag)]
        if g.scope_notes:
            out.append(g.scope_notes + f("scope_notes"))
        return out

    @staticmethod
    def _citywide(g: Guide, f) -> str | None:
        """厦府办〔2018〕138号 一、(一) only asks for 全城通办 to be reached step by step (逐步推动):
        being on its list does not make a matter 通办 today. Without a checked, current source the
        answer says so instead of promising any counter in the city."""
        f("scope")
        if g.confirmed("scope"):
            return None
        return (f"{g.name}在厦门市全城通办的推进范围内（厦府办〔2018〕138号 一、(一) 要求逐步推动全城通办），"
                "但目前能否在任一区的服务点办理尚未核实：请先拨打12345或所去服务点电话确认，再前往办理。")

    @staticmethod
    def district_line(g: Guide, district: str) -> str:
        centre = f"{district}行政服务中心"
        if g.scope == "全城通办" and not g.confirmed("scope"):
            return f"能否在{district}办理{g.name}尚未核实（全城通办按厦府办〔2018〕138号 一、(一) 逐步推进），请先拨打{HOTLINE}或{centre}电话确认。"
        if g.scope in ("全城通办", "全省通办", "全国通办"):
            return f"可以在{district}办理：{g.name}属于{g.scope}事项，可到{centre}或就近服务点办理。"
        if g.scope == "属地办理":
            return f"{g.name}须在户籍或住所所在区办理；户籍或住所在{district}的，可到{centre}办理。"
        return f"能否在{district}办理{g.name}，请以下方办理地点为准，或拨打{HOTLINE}确认。"

    def _booking(self, g: Guide, f) -> list[str]:
        return booking_lines(g, f)

    def _process(self, g: Guide, f) -> list[str]:
        if not g.steps:
            return []
        out = [f"{g.name}办理流程{f('steps')}："] + [f"{i}. {s}" for i, s in enumerate(g.steps, 1)]
        if g.channels:
            out.append("可通过：" + "、".join(g.channels) + " 办理" + f("channels") + "。")
        # "身份证丢了怎么补办" asks how to get it done: what to bring and what it costs belong to the answer.
        if g.materials:
            out.append(f"需准备{f('materials')}：" + "、".join(m.name for m in g.materials if not m.condition) + "。")
        if g.fee:
            out.append(f"收费：{g.fee}{f('fee')}")
        return out

    def _conditions(self, g: Guide, f) -> list[str]:
        out = []
        if g.applicants:
            out.append(f"申请对象：{g.applicants}{f('applicants')}")
        out += [f"· {c}{f(f'conditions.{i}')}" for i, c in enumerate(g.conditions)]
        return out

    def _general(self, g: Guide, f) -> list[str]:
        out = [(g.summary + f("summary")) if g.summary else g.name]
        facts = []
        if g.materials:
            facts.append(f"需材料{len(g.materials)}项")
        if g.promised_limit is not None:
            facts.append(f"承诺时限{_limit(g.promised_limit)}{f('promised_limit')}")
        if g.fee:
            facts.append(f"收费：{g.fee}{f('fee')}")
        if g.scope:
            facts.append(g.scope + (f("scope") if g.scope != "全城通办" or g.confirmed("scope") else "（逐步推进中，能否跨区办理请先确认）"))
        if facts:
            out.append("；".join(facts) + "。")
        if g.kind != "matter":
            # Service rules and centres: their details are the answer.
            out += self._where(g, f)
        return out

    def _buttons(self, g: Guide, asked: str) -> list[Button]:
        sections = guide_sections(g)
        order = [("materials", "需要什么材料"), ("time", "要多久"), ("fee", "要多少钱"),
                 ("where", "在哪里办"), ("scope", "能否全城通办")]
        out = [Button(title, ask_payload(q, g.id)) for q, title in order if q != asked and q in sections][:3]
        if g.kind == "matter":
            out.append(Button("预约办理", ask_payload("booking", g.id)))
        return out


def _fact_label(g: Guide, path: str) -> str:
    field, *rest = path.split(".")
    if rest and rest[0].isdigit():
        n = int(rest[0])
        if field == "materials":
            return f"材料第{n + 1}项"
        if field == "locations":
            return f"办理地点“{g.locations[n].name}”"
        if field == "conditions":
            return f"办理条件第{n + 1}条"
        if field == "steps":
            return f"办理流程第{n + 1}步"
    return FIELD_LABELS.get(field, field) + ("（" + FIELD_LABELS.get(rest[0], rest[0]) + "）" if rest else "")


def unconfirmed_note(g: Guide, paths: list[str]) -> str | None:
    """One short line naming the stated facts that are 待核实 (what to check is in the detail)."""
    keys = list(dict.fromkeys(key for path in paths for key, _ in g.checks(path)))
    if not keys:
        return None
    named = "、".join(_fact_label(g, k) for k in keys[:3]) + ("等" if len(keys) > 3 else "")
    return f"待核实：{named}尚未经官方来源核实，办理前请向窗口或{g.phone or HOTLINE}确认。"


def unconfirmed_lines(g: Guide, paths: list[str]) -> list[str]:
    """Which stated facts are 待核实, and what to check for each — not only a tag."""
    seen: dict[str, str] = {}
    for path in paths:
        for key, text in g.checks(path):
            seen.setdefault(key, text)
    if not seen:
        return []
    return ["待核实：以下内容尚未经官方来源核实，办理前请确认（以窗口最新要求为准）："] + [
        f"· {_fact_label(g, key)}：{text}" for key, text in seen.items()]


def short_source_line(g: Guide, paths: list[str]) -> str:
    """One short line: the guide, and the clause of a policy document its stated facts rest on
    (厦府办〔2018〕138号 一、(一)); every source with its review date is in the detail."""
    for path in dict.fromkeys(paths):
        entry = g.source_of(path) if path not in ITEMISED_FACTS and g.has(path) else None
        src = g.sources.get(entry.source) if entry else None
        if src is not None and entry.clause and src.doc_number:
            return f"来源：办事指南《{g.name}》；依据：{src.doc_number} {entry.clause}"
    return f"来源：办事指南《{g.name}》"


def source_line(g: Guide, paths: list[str]) -> str:
    """The sources of the facts a reply states, each with its clauses and review date."""
    cited: dict[str, tuple[list, list]] = {}  # source key → (clauses, review dates; None = unreviewed)
    unsourced = False
    for path in dict.fromkeys(paths):
        if path in ITEMISED_FACTS or not g.has(path):
            continue  # a list's header (its items are recorded one by one), or nothing stated
        entry = g.source_of(path)
        if entry is None:
            unsourced = True
            continue
        clauses, dates = cited.setdefault(entry.source, ([], []))
        if entry.clause and entry.clause not in clauses:
            clauses.append(entry.clause)
        dates.append(entry.reviewed)
    head = f"来源：办事指南《{g.name}》"
    if not cited:
        refs = "；".join(s.cite() for s in list(g.sources.values())[:2])
        return f"{head}（所列内容尚未逐项核对来源，以窗口最新要求为准）；参考：{refs}"
    refs = [g.sources[key].cite("、".join(clauses)) + (f"（{min(dates).isoformat()} 审核）" if all(dates) else "（未审核）")
            for key, (clauses, dates) in cited.items()]
    rest = "；其余内容尚未逐项核对来源，以窗口最新要求为准" if unsourced else ""
    return f"{head}；依据：{'；'.join(refs)}{rest}"


def guide_ref(g: Guide) -> dict:
    """How an answer lists a guide among its sources (the chat and the hotline show it)."""
    return {"type": "guide", "id": g.id, "title": g.name, "reviewed": g.reviewed and g.reviewed.isoformat()}


def policy_excerpt(p: Passage, query: str, limit: int = MAX_POLICY_CHARS) -> str:
    """The clause's heading and the sentences that share most words with the question, in order."""
    body = p.text
    if len(body) <= limit:
        return body
    sentences = [s for s in re.split(r"(?<=[。；;！？])", body) if s.strip()]
    q = set(tokenize(query))
    counts = bool(re.search(r"多少|几[个项件次年月天]|数量|比例", query))
    # Longer shared words say more than single characters; asked "多少", a sentence with a figure answers.
    def overlap(i: int) -> float:
        shared = sum(len(t) for t in q & set(tokenize(sentences[i])))
        return shared + (2 * len(re.findall(r"\d+", sentences[i])) if counts and shared else 0)
    ranked = sorted(range(len(sentences)), key=lambda i: (-overlap(i), i))
    keep, total = set(), 0
    for i in ranked:
        if keep and (overlap(i) == 0 or total + len(sentences[i]) > limit):
            continue
        keep.add(i)
        total += len(sentences[i])
    text = "".join(sentences[i] for i in sorted(keep))
    if 0 not in keep:  # keep the clause's heading so the excerpt says where it stands
        head = sentences[0].split("。")[0][:60]
        text = f"{head}……{text}"
    return text + ("……" if max(keep) < len(sentences) - 1 else "")


def cite(p: Passage) -> str:
    name = p.doc_number or f"《{p.title}》"
    return f"{name} {p.clause}" if p.clause and p.clause != "正文" else name


FALLBACK = texts.FALLBACK
EMPTY = texts.EMPTY


class Answerer:
    """The pipeline: understand (a Reading) → retrieve → decide → compose."""

    def __init__(self, searcher: HybridSearcher, min_confidence: float = 0.5):
        self.searcher = searcher
        self.guides = {g.id: g for g in searcher.index.guides}
        corpus = "\n".join([p.text for p in searcher.index.passages] + [g.model_dump_json() for g in searcher.index.guides])
        self.lookup = MatterLookup(searcher.index.guides, corpus)
        self.reader = Reader(self.lookup)
        self.composer = GuideComposer()
        self.min_confidence = min_confidence

    def read(self, text: str) -> Reading:
        return self.reader.run(text)

    def run(self, question: str, context: Context | None = None, qtype: str | None = None,
            matter: str | None = None, reading: Reading | None = None) -> Answer:
        """`question` is what the citizen typed (or "" for a button); `reading` its Reading when the
        caller already has it (the chat reads each message once); `qtype`/`matter` come from a
        button's payload."""
        context = context or Context()
        reading = reading if reading is not None else self.reader.run(question)
        text = extract_question(reading.question or reading.text, self.lookup)
        if matter in self.guides and not text:
            # A button press: the matter and question type are given, nothing to understand.
            g = self.guides[matter]
            return self._guide(g, qtype or "general", 1.0)
        if not text:
            return Answer("empty", EMPTY, buttons=self._starter_buttons())
        asked = qtype or reading.qtype
        if reading.invented and matter not in self.guides:
            # "外星人居住证": a real name under an invented kind. Answering with the real guide
            # would tell the citizen something false about a thing that does not exist.
            return Answer("unknown", texts.UNKNOWN_MATTER.format(name=reading.invented),
                          [Button("转人工", "/human_handoff")], None, asked, 0.0)
        named = [matter] if matter in self.guides else list(reading.matters)
        if len(named) > 1:
            per = dict(reading.asked)
            return self._several([self.guides[i] for i in named],
                                 [reading.comparison or per.get(i) or asked or "general" for i in named])
        place_elsewhere = any(p != "厦门市" and all(g.region != p for g in self.lookup.members(reading.category or ""))
                              for p in reading.places)  # "湖里区推出了哪些一件事主题服务": that district's record
        if not named and reading.category and not place_elsewhere and \
                (context.matter is None or self.guides[context.matter].category != reading.category):
            return self._clarify(self.lookup.members(reading.category), asked, f"“{reading.category}”包括以下几项，请问您要办理哪一项？")

        target = named[0] if named else None
        place = reading.places[0] if reading.places else None
        about = target or self._followed(reading, context)
        hits = self.searcher.run(text, k=20, prefer_doc=about, region=place)[:8]
        conf = self.confidence(hits, text)
        if target is None and about is not None:
            # A follow-up ("那要多久？", "能在集美办吗？", "回到刚才那个 要钱不") names no matter: it is
            # about the one under discussion (or the earlier one it points back to). A short remark
            # without a question type stays there too unless retrieval clearly points elsewhere.
            top = hits[0].passage if hits else None
            g = self.guides[about]
            if place in DISTRICTS.values() and g.kind == "matter" and (asked in ("where", "scope", None) or reading.is_question):
                # "能在集美办吗" about the matter under discussion: that matter, in that district.
                return self._district(g, place, hits, reading.text)
            if (asked and not place) or reading.back_ref or reading.person or \
                    (len(text) <= 16 and (top is None or top.doc_id == about or conf < self.min_confidence + 0.15)):
                target = about
        if target is None and hits and hits[0].passage.source_type == "guide" and conf >= self.min_confidence:
            target = hits[0].passage.doc_id if self._names_overlap(text, self.guides.get(hits[0].passage.doc_id)) else None

        if target is not None and place and place != self.guides[target].region and place[:2] not in self.guides[target].name:
            # "湖里区快递收取送达了多少件" is about 湖里区's own record, not the city-wide EMS guide.
            target = target if (named or about) and self.guides[target].kind == "matter" else None
            if target is None:
                hits = sorted(hits, key=lambda h: h.passage.region != place)  # stable: that place's record first

        if target is not None:
            g = self.guides[target]
            qt = asked or "general"
            if not asked and named and context.matter and context.qtype and target != context.matter \
                    and (len(text) <= 8 or re.search(r"呢[?？]?$", text)):
                qt = context.qtype  # "那港澳通行证呢？" asks the previous question of a new matter
            quote, extra = None, None
            if g.kind != "matter":
                # A service rule or centre is described, not asked by type; its policy clause
                # (when retrieved) is quoted so the answer carries the exact wording. Booking
                # questions about the booking rule itself get its booking facts.
                qt = "booking" if asked == "booking" and g.appointment else "general"
                clause = next((h.passage for h in hits if h.passage.source_type == "policy"
                               and h.passage.region in ("厦门市", g.region)), None)
                if clause is not None and self.confidence([h for h in hits if h.passage is clause], text) >= self.min_confidence:
                    quote = f"政策原文：{policy_excerpt(clause, text, 200)}（{cite(clause)}）"
                    if asked == "time" and clause.deadline:
                        extra = [f"完成时限：{clause.deadline}（{cite(clause)}）"]  # "什么时候建成"
            also = tuple(q for q in reading.qtypes if q != qt and q in GUIDE_QTYPES) if asked and not qtype else ()
            return self._guide(g, qt, max(conf, 0.9 if named else conf), extra, hits, also, quote, reading.text)

        policy = [h for h in hits if h.passage.source_type == "policy"]
        if policy and conf >= self.min_confidence:
            return self._policy_answer(policy[0], text, conf, hits, asked)
        return Answer("fallback", FALLBACK, [Button("转人工", "/human_handoff")], None, asked, conf, [], hits)

    @staticmethod
    def _followed(reading: Reading, context: Context) -> str | None:
        """The matter a message that names none is about: the last one, or the one it points back to."""
        topics = list(context.topics) or ([context.matter] if context.matter else [])
        if not topics:
            return None
        if reading.back_ref == "first":
            return topics[0]
        if reading.back_ref == "earlier" and len(topics) > 1:
            return topics[-2]
        return context.matter or topics[-1]

    @staticmethod
    def _said_as(g: Guide, said: str, body: str) -> str:
        """The citizen's own word for the matter ("社保卡") once beside the official name, so the answer
        reads as about what they asked."""
        term = next((t for t in sorted([g.category or "", *g.aliases], key=len, reverse=True)
                     if len(t) >= 2 and t in said and t not in g.name), None)
        return body.replace(g.name, f"{g.name}（{term}）", 1) if term and g.name in body else body

    def _guide(self, g: Guide, qtype: str, conf: float, extra: list[str] | None = None, hits: list[Hit] | None = None,
               also: tuple[str, ...] = (), quote: str | None = None, said: str = "") -> Answer:
        body, buttons, used, detail = self.composer.run(g, qtype, extra, sorted(also, key=GUIDE_QTYPES.index), quote)
        body = self._said_as(g, said, body)
        # The articles of held laws the stated facts rest on: the chat shows each as 「依据」.
        return Answer("guide", body, buttons, g.id, qtype, conf, [guide_ref(g), *article_sources(g, used)], hits or [],
                      matters=[g.id], facts=used, detail=detail)

    def _district(self, g: Guide, district: str, hits: list[Hit], said: str = "") -> Answer:
        """"能在集美办吗" about the matter under discussion: whether and where, in that district."""
        used: list[str] = ["scope"]
        lines = [self._said_as(g, said, self.composer.district_line(g, district))]
        note = unconfirmed_note(g, used)
        lines += [note] if note else []
        lines.append(short_source_line(g, used))
        detail = "\n".join([*self.composer._where(g, lambda p: used.append(p) or ""), *unconfirmed_lines(g, used),
                            source_line(g, used)])
        return Answer("guide", "\n".join(lines), self.composer._buttons(g, "scope"), g.id, "scope", 0.9, [guide_ref(g)],
                      hits, matters=[g.id], facts=used, detail=detail)

    def _several(self, guides: list[Guide], qtypes: list[str]) -> Answer:
        """"结婚和离婚登记都在哪办", "护照和港澳通行证哪个贵": one compact answer per matter, side by side
        (each with the question asked of it: "结婚登记要钱吗 还有离婚登记要带啥")."""
        lines, used_all = [], []
        qtype = qtypes[0]
        for g, qt in zip(guides, qtypes):
            brief, used = self.composer.brief(g, qt)
            lines.append(f"【{g.name}】{brief}")
            used_all.append((g, used))
        flags = [f"《{g.name}》" for g, used in used_all if any(g.flagged(p) for p in used)]
        if flags:
            lines.append(f"{FLAG[1:-1]}：{'、'.join(flags)}的部分内容尚未经官方来源核实，办理前请确认。")
        lines.append("来源：" + "；".join(f"办事指南《{g.name}》" for g in guides))
        buttons = [Button(f"{g.name}详情", ask_payload(qtype, g.id)) for g in guides][:4]
        return Answer("guide", "\n".join(lines), buttons, guides[0].id, qtype, 0.9, [guide_ref(g) for g in guides], [],
                      matters=[g.id for g in guides])

    def confidence(self, hits: list[Hit], text: str) -> float:
        """How sure retrieval is, 0..1. Two signals, equally weighted: how much of the question's
        wording the top passage covers (length-weighted tokens), and the dense cosine rescaled
        from e5's crowded 0.80–0.95 band. Dense alone cannot tell "今天天气怎么样" (0.86) from a
        real question (0.88–0.94); coverage can."""
        if not hits:
            return 0.0
        top = hits[0].passage
        q = set(tokenize(text))
        total = sum(len(t) for t in q)
        coverage = sum(len(t) for t in q & set(tokenize(f"{top.title} {top.text}"))) / total if total else 0.0
        dense = min(1.0, max(0.0, (hits[0].dense - 0.80) / 0.15))
        return round(0.5 * coverage + 0.5 * dense, 3)

    @staticmethod
    def _names_overlap(text: str, g: Guide | None) -> bool:
        # A retrieved guide only answers when the question shares a word with its names: this
        # keeps "火星移民证怎么办" from being answered with another matter's checklist.
        if g is None:
            return False
        q = set(tokenize(text))
        names = set(tokenize(" ".join([g.name, *g.aliases])))
        return bool(q & names)

    def _policy_answer(self, hit: Hit, text: str, conf: float, hits: list[Hit], asked: str | None) -> Answer:
        p = hit.passage
        # The bubble: the clause's sentences that answer the question; the whole clause, who is
        # responsible and by when are one tap away.
        # Asked for a figure, the clause keeps every sentence that has one (cutting could drop the very figure).
        limit = MAX_POLICY_CHARS if re.search(r"多少|几[个项件次年月天]|数量|比例", text) else BUBBLE_POLICY_CHARS
        lines = [x for x in (region_note(p.region), policy_excerpt(p, text, limit)) if x]
        lines.append(f"来源：{cite(p)}（{p.title}）")
        more = [policy_excerpt(p, text)] if len(p.text) > limit else []
        if p.responsible:
            more.append(p.responsible if "：" in p.responsible else f"责任单位：{p.responsible}")
        if p.deadline:
            more.append(f"完成时限：{p.deadline}")
        more.append(f"来源：{cite(p)}（{p.title}，{p.issuer}，{p.date}）")
        src = {"type": "policy", "id": p.id, "doc_number": p.doc_number, "clause": p.clause, "title": p.title}
        return Answer("policy", "\n".join(lines), [Button("转人工", "/human_handoff")], None, asked, conf, [src], hits,
                      detail="\n".join(more))

    def _clarify(self, options: list[Guide], asked: str | None, prompt: str) -> Answer:
        qt = asked or "general"
        buttons = [Button(g.name, ask_payload(qt, g.id)) for g in options]
        return Answer("clarify", prompt, buttons, None, qt, 1.0, [], [])

    def _starter_buttons(self) -> list[Button]:
        return [Button("预约办事", "/book_appointment"), Button("转人工", "/human_handoff")]
