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
from assistant.understanding import DISTRICTS, QTYPE_LABELS, MatterLookup, detect_qtype, extract_question, named_region
from knowledge.guides import guide_sections
from knowledge.schema import FIELD_LABELS, ITEMISED_FACTS, Guide, Passage

HOTLINE = "12345"
FLAG = "（待核实）"
MAX_POLICY_CHARS = 400  # a whole clause chunk fits; trimming risked cutting the very figure asked for


@dataclass
class Button:
    title: str
    payload: str


@dataclass
class Context:
    matter: str | None = None  # guide id the conversation is about
    qtype: str | None = None  # the last question type asked


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

    def run(self, g: Guide, qtype: str, extra: list[str] | None = None) -> tuple[str, list[Button]]:
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
        lines.extend(extra or [])
        lines.extend(unconfirmed_lines(g, used))
        lines.append(source_line(g, used))
        return "\n".join(lines), self._buttons(g, qtype)

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
    # Longer shared words say more than single characters.
    def overlap(i: int) -> float:
        return sum(len(t) for t in q & set(tokenize(sentences[i])))
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
    """The pipeline: understand → retrieve → decide → compose."""

    def __init__(self, searcher: HybridSearcher, min_confidence: float = 0.5):
        self.searcher = searcher
        self.guides = {g.id: g for g in searcher.index.guides}
        corpus = "\n".join([p.text for p in searcher.index.passages] + [g.model_dump_json() for g in searcher.index.guides])
        self.lookup = MatterLookup(searcher.index.guides, corpus)
        self.composer = GuideComposer()
        self.min_confidence = min_confidence

    def run(self, question: str, context: Context | None = None, qtype: str | None = None,
            matter: str | None = None) -> Answer:
        context = context or Context()
        text = extract_question(normalize(question), self.lookup)
        if matter in self.guides and not text:
            # A button press: the matter and question type are given, nothing to understand.
            g = self.guides[matter]
            body, buttons = self.composer.run(g, qtype or "general")
            return Answer("guide", body, buttons, g.id, qtype or "general", 1.0,
                          [guide_ref(g)])
        if not text:
            return Answer("empty", EMPTY, buttons=self._starter_buttons())
        asked = qtype or detect_qtype(text)
        match = self.lookup.run(text)
        if match.invented and matter not in self.guides:
            # "外星人居住证": a real name under an invented kind. Answering with the real guide
            # would tell the citizen something false about a thing that does not exist.
            return Answer("unknown", texts.UNKNOWN_MATTER.format(name=match.invented),
                          [Button("转人工", "/human_handoff")], None, asked, 0.0)
        named = [matter] if matter in self.guides else [g.id for g in match.guides]

        if len(named) > 1 and len({self.guides[i].category for i in named} - {None}) <= 1 and self.guides[named[0]].category:
            return self._clarify([self.guides[i] for i in named], asked, "您问的是以下哪一项？为避免混淆，请选择一项：")
        if not named and match.category:
            # "补办身份证" / "身份证过期了" say which member of the category is meant.
            members = self.lookup.members(match.category)
            for verbs in (("补", "丢", "遗失", "掉了"), ("换", "过期", "到期")):
                hit = [g for g in members if any(v in text for v in verbs) and any(v in g.name for v in verbs)]
                if len(hit) == 1:
                    named = [hit[0].id]
                    break
        if not named and match.category and (context.matter is None or self.guides[context.matter].category != match.category):
            return self._clarify(self.lookup.members(match.category), asked, f"“{match.category}”包括以下几项，请问您要办理哪一项？")

        target = named[0] if named else None
        hits = self._prefer_city(self.searcher.run(text, k=20, prefer_doc=target or context.matter), text)[:8]
        conf = self.confidence(hits, text)
        if target is None and context.matter:
            # A follow-up ("那要多久？", "可以在别的区办吗？") names no matter: it is about the one under
            # discussion. A short remark without a question type stays there too unless retrieval
            # clearly points elsewhere.
            top = hits[0].passage if hits else None
            place = named_region(text)
            if asked and not place:
                target = context.matter
            elif place in DISTRICTS.values() and asked in ("where", "scope") and self.guides[context.matter].kind == "matter":
                # "能在集美办吗" about the matter under discussion: where, in that district.
                g = self.guides[context.matter]
                body, buttons = self.composer.run(g, "scope", [self.composer.district_line(g, place)])
                return Answer("guide", body, buttons, g.id, "scope", 0.9,
                              [{"type": "guide", "id": g.id, "title": g.name, "reviewed": g.reviewed.isoformat()}], hits)
            elif len(text) <= 12 and (top is None or top.doc_id == context.matter or conf < self.min_confidence + 0.15):
                target = context.matter
        if target is None and hits and hits[0].passage.source_type == "guide" and conf >= self.min_confidence:
            target = hits[0].passage.doc_id if self._names_overlap(text, self.guides.get(hits[0].passage.doc_id)) else None

        place = named_region(text)
        if target is not None and place and place != self.guides[target].region and place[:2] not in self.guides[target].name:
            # "湖里区快递收取送达了多少件" is about 湖里区's own record, not the city-wide EMS guide.
            target = target if named and self.guides[target].kind == "matter" else None
            if target is None:
                hits = sorted(hits, key=lambda h: h.passage.region != place)

        if target is not None:
            g = self.guides[target]
            qt = asked or (context.qtype if named and context.qtype and not asked else None) or "general"
            if not asked and named and context.matter and context.qtype and target != context.matter:
                qt = context.qtype  # "那港澳通行证呢？" asks the previous question of a new matter
            extra: list[str] = []
            if g.kind != "matter":
                # A service rule or centre is described, not asked by type; its policy clause
                # (when retrieved) is quoted so the answer carries the exact wording. Booking
                # questions about the booking rule itself get its booking facts.
                qt = "booking" if asked == "booking" and g.appointment else "general"
                clause = next((h.passage for h in hits if h.passage.source_type == "policy"
                               and h.passage.region in ("厦门市", g.region)), None)
                if clause is not None and self.confidence([h for h in hits if h.passage is clause], text) >= self.min_confidence:
                    extra = [f"政策原文：{policy_excerpt(clause, text, 200)}（{cite(clause)}）"]
            body, buttons = self.composer.run(g, qt, extra)
            return Answer("guide", body, buttons, g.id, qt, max(conf, 0.9 if named else conf),
                          [guide_ref(g)], hits)

        policy = [h for h in hits if h.passage.source_type == "policy"]
        if policy and conf >= self.min_confidence:
            return self._policy_answer(policy[0], text, conf, hits, asked)
        return Answer("fallback", FALLBACK, [Button("转人工", "/human_handoff")], None, asked, conf, [], hits)

    @staticmethod
    def _prefer_city(hits: list[Hit], text: str) -> list[Hit]:
        """A district's or another county's clause only outranks a city-wide one when the question
        names that place: citizens asking in general are asking about Xiamen's rules."""
        def weight(h: Hit) -> float:
            region = h.passage.region
            named = region != "厦门市" and region[:2] in text
            return h.score * (1.0 if region == "厦门市" or named else 0.8)
        return sorted(hits, key=weight, reverse=True)

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
        lines = [x for x in (region_note(p.region), policy_excerpt(p, text)) if x]
        if p.responsible:
            lines.append(p.responsible if "：" in p.responsible else f"责任单位：{p.responsible}")
        if p.deadline:
            lines.append(f"完成时限：{p.deadline}")
        lines.append(f"来源：{cite(p)}（{p.title}，{p.issuer}，{p.date}）")
        src = {"type": "policy", "id": p.id, "doc_number": p.doc_number, "clause": p.clause, "title": p.title}
        return Answer("policy", "\n".join(lines), [Button("转人工", "/human_handoff")], None, asked, conf, [src], hits)

    def _clarify(self, options: list[Guide], asked: str | None, prompt: str) -> Answer:
        qt = asked or "general"
        buttons = [Button(g.name, ask_payload(qt, g.id)) for g in options]
        return Answer("clarify", prompt, buttons, None, qt, 1.0, [], [])

    def _starter_buttons(self) -> list[Button]:
        return [Button("预约办事", "/book_appointment"), Button("转人工", "/human_handoff")]
