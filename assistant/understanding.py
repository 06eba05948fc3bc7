"""What a question asks (question type) and which matter it is about (guide lookup).

The matter lookup is built from the guides' names and aliases, so a new guide is understood
as soon as the index is rebuilt. Typos that sound the same (结昏 → 结婚, 社宝卡 → 社保卡) are
caught by comparing pinyin.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pypinyin import lazy_pinyin

from embeddings.text import normalize
from knowledge.schema import Guide

# Question types and the phrasings that signal them, most specific first.
QTYPE_PATTERNS: list[tuple[str, re.Pattern]] = [
    ("booking", re.compile(r"预约|预定|挂号|排号|取号")),
    ("fee", re.compile(r"多少钱|费用|收费|收不收|要钱|花钱|免费|价格|工本费|几块|多少元|收多少")),
    ("time", re.compile(r"多久|多长时间|几天|多少天|时限|几个工作日|当天|当场|立等|什么时候(能|可以)?(拿|领|取|办好|出)|要等|多快|周期")),
    ("conditions", re.compile(r"条件|资格|能不能办|可不可以办|符合|谁可以|哪些人|年龄")),
    ("materials", re.compile(r"材料|带什么|带哪些|带啥|准备什么|准备啥|准备哪些|要什么东西|需要什么|要啥|资料|证件|清单|要带|需带|带上|什么手续|哪些手续")),
    ("scope", re.compile(r"通办|别的区|其他区|外区|跨区|异地|就近|任意|任何一个|全市|不是本区|户籍地以外|户口不在")),
    ("where", re.compile(r"在哪|哪里办|去哪|哪儿|地址|地点|哪个窗口|什么地方|几点|上班时间|办公时间|开门|电话|(可以|能)在.{1,8}办")),
    # "X怎么办" / "我要办X" ask for the matter as a whole (the guide overview), not its steps.
    ("process", re.compile(r"流程|步骤|程序|怎么办理|如何办理|怎么弄|怎么申请|如何申请|怎样办理|怎么补|网上办|在线办|手机上办|能网办")),
]

QTYPE_LABELS = {
    "materials": "所需材料", "time": "办理时限", "fee": "收费标准", "where": "办理地点",
    "scope": "通办范围", "booking": "预约方式", "process": "办理流程", "conditions": "办理条件",
    "general": "事项概况",
}

# The one list of Xiamen's districts (each has a 行政服务中心 for bookings) and of the other regions
# whose documents are in the knowledge base. Keyed by the two characters people actually type.
DISTRICTS = {"思明": "思明区", "湖里": "湖里区", "集美": "集美区", "海沧": "海沧区", "同安": "同安区", "翔安": "翔安区"}
REGIONS = {**DISTRICTS, "东平": "东平县"}

# Rasa intents that ask one type of question, and back (the generated training data uses it).
INTENT_QTYPE = {
    "ask_general": "general", "ask_materials": "materials", "ask_time": "time", "ask_fee": "fee",
    "ask_where": "where", "ask_scope": "scope", "ask_process": "process", "ask_conditions": "conditions",
    "ask_booking": "booking",
}
QTYPE_INTENT = {q: i for i, q in INTENT_QTYPE.items()}


def named_region(text: str) -> str | None:
    """The district or county a text names, if any."""
    return next((region for key, region in REGIONS.items() if key in text), None)


# Intents that steer the conversation (small talk, the citizen's own bookings) but that NLU also
# gives to questions about the knowledge base that happen to share a word with them: "湖里区取消了
# 多少项中介服务事项" (取消 → cancel_appointment), "银山分中心是给谁服务的" (谁 → bot_challenge), "湖里区
# 快递收取送达了多少件" (快递 → out_of_scope). Such a message is answered from the knowledge base when
# retrieval is sure of an answer and the message uses none of the intent's own words.
STEERING_OWN_WORDS = {
    "out_of_scope": (),
    "bot_challenge": ("你", "您", "机器", "真人", "人工", "AI", "ai"),
    "cancel_appointment": ("预约", "约", "号"),
    "query_appointment": ("预约", "约", "号"),
}
SURE_ANSWER = 0.75  # retrieval confidence: above every small-talk line measured (“你是谁” 0.62)


def knowledge_question(intent: str | None, text: str, kind: str, confidence: float) -> bool:
    """True when a message NLU filed under a steering intent is really a knowledge question."""
    if intent not in STEERING_OWN_WORDS or kind not in ("guide", "policy") or confidence < SURE_ANSWER:
        return False
    return not any(w in text for w in STEERING_OWN_WORDS[intent])


# Words that make a message a question rather than an answer to a form's question. "集美区可以吗"
# answers "which centre"; "能在集美办吗" asks about the matter (a question type is detected).
_QUESTION_WORDS = re.compile(r"怎么|怎样|如何|多少|哪|什么|为什么|为啥|能不能|能否|是否|要不要|需不需要|可不可以|有没有|咋")
_QUESTION_END = re.compile(r"[呢吗嘛么][。.!！~～\s]*$")


def is_question(text: str, answers_something: bool = False) -> bool:
    """Does the text ask something? `answers_something`: it also carries a form answer (a district,
    a date), so a bare trailing 吗 ("集美区可以吗", "明天行吗") only checks the answer."""
    qtype = detect_qtype(text)
    if (qtype and qtype != "booking") or _QUESTION_WORDS.search(text) or re.search(r"[?？]", text):
        return True
    return bool(_QUESTION_END.search(text)) and not answers_something


# Naming a document without a question word ("要照片吗", "户口本要带吗") asks about materials;
# checked last so that "身份证丢了怎么补" stays a process question.
MATERIAL_NOUNS = re.compile(r"照片|相片|复印件|户口本|户口簿|身份证|结婚证|证明|原件|表格|申请表")


def detect_qtype(text: str) -> str | None:
    for name, pat in QTYPE_PATTERNS:
        if pat.search(text):
            return name
    if MATERIAL_NOUNS.search(text) and re.search(r"[吗么]|要不要|需不需要|用不用", text):
        return "materials"
    return None


def _pinyin(text: str) -> str:
    # One space-separated syllable per character; Latin letters and digits pass through.
    return " ".join(lazy_pinyin(text, errors=lambda s: list(s)))


@dataclass
class MatterMatch:
    guides: list[Guide] = field(default_factory=list)  # distinct guides named, in order of appearance
    category: str | None = None  # a category named without the specific matter (e.g. 婚姻登记)
    by_typo: bool = False
    invented: str | None = None  # "外星人居住证": a real name under a modifier no source knows


# Nouns that may stand before a matter's name without changing the matter: whose it is
# ("我儿子身份证丢了", "老人身份证过期了"). Any other noun in front ("外星人居住证", "宠物身份证")
# makes another thing, unless that compound occurs in the knowledge base ("电子社保卡").
PEOPLE = set("""儿子 女儿 孩子 小孩 小孩子 宝宝 婴儿 新生儿 老人 老年人 老人家 父母 爸爸 妈妈 爸妈 父亲 母亲 老婆 老公
丈夫 妻子 爱人 爷爷 奶奶 外公 外婆 姥姥 姥爷 家人 家里人 家属 亲戚 朋友 同事 本人 自己 学生 员工 职工 弟弟 妹妹 哥哥
姐姐 孙子 孙女 外孙 对象 男朋友 女朋友 人 大家 家里 公司 单位 我家 他家 她家 市民 居民 群众 外地人 本地人 老乡""".split())


class MatterLookup:
    """Finds the matters a question names, by name/alias (longest match first), then by pinyin."""

    def __init__(self, guides: list[Guide], corpus: str = ""):
        self.guides = {g.id: g for g in guides}
        self.corpus = normalize(corpus)  # every word the knowledge base says, to accept known compounds
        terms: dict[str, str] = {}
        derived: dict[str, set[str]] = {}
        for g in guides:
            for t in (g.name, *g.aliases):
                t = normalize(t)
                # A bare district name is not a matter: "湖里区…" may be about any of its facts.
                if len(t) < 2 or t.rstrip("区") in DISTRICTS:
                    continue
                terms.setdefault(t, g.id)
                # "办护照" also means "护照" is said alone; kept only if no other guide derives it.
                core = re.sub(r"^(办理|申请|办|申领|居民|普通)", "", t)
                if core != t and len(core) >= 2:
                    derived.setdefault(core, set()).add(g.id)
        categories = {normalize(g.category) for g in guides if g.category}
        for core, ids in derived.items():
            # "社保卡" alone names a category of three matters: it must lead to a question, not a pick.
            if len(ids) == 1 and core not in terms and core not in categories:
                terms[core] = next(iter(ids))
        self.terms = sorted(terms.items(), key=lambda kv: -len(kv[0]))
        self.categories: dict[str, list[str]] = {}
        for g in guides:
            if g.category:
                self.categories.setdefault(normalize(g.category), []).append(g.id)
        self.pinyin_terms = [(_pinyin(t), gid) for t, gid in self.terms if len(t) >= 3]

    def run(self, text: str) -> MatterMatch:
        text = normalize(text)
        found: list[tuple[int, str]] = []
        masked = text
        invented = None
        for term, gid in self.terms:
            pos = masked.find(term)
            if pos >= 0:
                masked = masked.replace(term, "\0" * len(term))  # a longer alias hides its substrings
                made_up = self._invented(text, pos, term)
                invented = invented or made_up
                if not made_up:
                    found.append((pos, gid))
        by_typo = False
        if not found and not invented:
            py = f" {_pinyin(text)} "
            for term_py, gid in self.pinyin_terms:
                if f" {term_py} " in py:
                    found.append((py.find(f" {term_py} "), gid))
                    by_typo = True
                    break
        ids: list[str] = []
        for _, gid in sorted(found):
            if gid not in ids:
                ids.append(gid)
        category = None
        if not ids:
            for cat, members in self.categories.items():
                if cat in text and len(members) > 1:
                    category = cat
                    invented = self._invented(text, text.find(cat), cat)
                    break
        if invented and not any(self.guides[i].kind == "matter" for i in ids):
            return MatterMatch([], None, False, invented)
        return MatterMatch([self.guides[i] for i in ids], category, by_typo)

    def _invented(self, text: str, pos: int, term: str) -> str | None:
        """The modifier+name when the noun right before a matter's name makes it another thing."""
        import jieba.posseg as pseg

        before = re.split(r"[，,。！!？?；;、\s]", text[:pos])[-1].rstrip("的之")
        if not before:
            return None
        words = [w for w in pseg.cut(before)]
        if not words:
            return None
        last = words[-1]
        # "二次元" is tagged a numeral; "第三代" is one too, and a real kind of card.
        invented_numeral = last.flag == "m" and len(last.word) >= 3 and not last.word.startswith("第")
        if not (last.flag.startswith(("n", "j", "eng")) or invented_numeral) or last.flag in ("ns", "nt", "nr"):
            return None  # a verb (办/补/换), a time, a place or a name is not a kind of document
        if last.word in PEOPLE or last.word.endswith(("人", "儿", "子", "的")) and last.word[:-1] in PEOPLE:
            return None
        if last.word.rstrip("区市县") in REGIONS or last.word in ("厦门", "厦门市", "福建", "本市", "市里", "区里"):
            return None
        compound = last.word + term
        if compound in self.corpus or any(compound in t for t, _ in self.terms):
            return None
        return compound

    def members(self, category: str) -> list[Guide]:
        return [self.guides[i] for i in self.categories.get(category, [])]


_SENTENCE = re.compile(r"[^。！？!?\n；;]+[。！？!?；;]?")
_ASKS = re.compile(r"[吗呢？?]|怎么|怎样|如何|多少|哪|什么|能否|可否|是否|几")
LONG_MESSAGE = 120


# How 12345 agents (and some citizens writing for others) frame a question: "来电人咨询…",
# "市民问…", "群众反映…", "帮我老妈问一下…". The frame names who asks, not what is asked.
_REQUEST_PREFIX = re.compile(
    r"^(?:(?:来电|致电)(?:人|者|市民|群众)?|市民|群众|居民|办事人|申请人|客户|用户|老人|家属|"
    r"(?:帮|替|给)?(?:我|他|她)?(?:家)?(?:老妈|老爸|妈妈|爸爸|妈|爸|父母|孩子|朋友|家人)?)"
    r"\s*(?:来电|致电|打电话)?\s*(?:想|要)?(?:咨询|询问|问询|问一下|问问|问|反映|了解|想了解|查询)(?:一下|下)?"
    r"(?:关于|有关)?\s*[:：,，]?\s*")


def strip_request_prefix(text: str) -> str:
    """"来电人咨询护照办理材料" → "护照办理材料"; text without such a frame is returned as is."""
    out = _REQUEST_PREFIX.sub("", text.strip(), count=1)
    return out if len(out) >= 2 else text.strip()


def extract_question(text: str, lookup: MatterLookup) -> str:
    """From a long message (pasted text, a story, noise) keep the sentence that asks something.

    Scored by: names a matter, has a question type, has a question word; ties go to the later
    sentence (people tend to ask at the end). An agent's frame ("来电人咨询…") is dropped first.
    """
    text = strip_request_prefix(text)
    if len(text) <= LONG_MESSAGE:
        return text
    best, best_score = text[-LONG_MESSAGE:], 0
    for i, s in enumerate(_SENTENCE.findall(text)):
        s = s.strip()
        if len(s) < 2:
            continue
        score = 4 * bool(lookup.run(s).guides) + 2 * bool(detect_qtype(s)) + bool(_ASKS.search(s))
        if score and score >= best_score:
            best, best_score = s[:LONG_MESSAGE], score
    return best
