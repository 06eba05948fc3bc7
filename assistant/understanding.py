"""What a question asks (question type) and which matter it is about (guide lookup).

The matter lookup is built from the guides' names and aliases, so a new guide is understood
as soon as the index is rebuilt. Typos that sound the same (结昏 → 结婚, 社宝卡 → 社保卡) are
caught by comparing pinyin.
"""

from __future__ import annotations

import re
from functools import lru_cache
from dataclasses import dataclass, field

from pypinyin import lazy_pinyin

from embeddings.text import normalize
from knowledge.schema import Guide

# Question types and the phrasings that signal them, most specific first.
QTYPE_PATTERNS: list[tuple[str, re.Pattern]] = [
    # "我预约的是结婚登记 要带啥": a booking already made is context, not a question about booking.
    ("booking", re.compile(r"(?<!我)(?<!已经)(?<!已)预约(?!了|好了|的是|过了)|预定|挂号|排号|取号")),
    ("fee", re.compile(r"多少钱|费用|收费|收不收|要钱|花钱|免费|价格|工本费|几块|多少元|收多少|交多少|缴多少|贵|便宜|交钱|缴费|交.{0,4}税|缴.{0,4}税")),
    ("time", re.compile(r"多久|多长时间|几天|多少天|时限|几个工作日|当天|当场|立等|什么时候(能|可以)?(拿|领|取|办好|出|建成|完成|实现|开通)|何时|啥时候|哪一年|要等|多快|周期|(?:办得|办起来|出证)?快(?:一点|些)?(?:吗|不|呢)?$|哪个.{0,4}快|时间长|时间短|等.{0,3}时间")),
    ("conditions", re.compile(r"条件|资格|能不能办|可不可以办|符合|谁可以|哪些人|年龄|多大(?:岁数|年纪)?(?:才)?能|岁数|几岁|代办|代为|委托|帮(?:他|她|别人|家人|老人|我妈|我爸|孩子)(?:去)?办|本人(?:不能|去不了|来不了)|不能亲自|要本人|本人(?:要|得|必须)|(?:替|帮)(?:他|她|我妈|我爸|家人|老人|孩子).{0,2}(?:去)?(?:办|换|补|领)|能不能代|可以代")),
    ("materials", re.compile(r"材料|要的东西|还差|还缺|还要(?:啥|什么|别的|带)|够不够|够吗|够了吗|齐了|准备.{0,2}(?:什么|啥|哪些)|都要什么|要些什么|要什么(?!时候|时间|条件|手续费)|带什么|带哪些|带啥|准备什么|准备啥|准备哪些|要什么东西|需要什么|要啥|资料|证件|清单|要带|需带|带上|什么手续|哪些手续")),
    ("scope", re.compile(r"通办|别的区|其他区|外区|跨区|异地|就近|任意|任何一个|全市|不是本区|户籍地以外|户口不在")),
    ("where", re.compile(r"在哪|哪里办|去哪|哪儿|地址|地点|哪个窗口|什么地方|几点|上班时间|办公时间|开门|电话|(可以|能)在.{1,8}办|(?:思明|湖里|集美|海沧|同安|翔安)(?:区)?(?:那边|这边)?.{0,2}(?:能|可以)?(?:办|弄)(?:吗|不|么|理吗)?|去(?:思明|湖里|集美|海沧|同安|翔安).{0,4}办")),
    # "X怎么办" / "我要办X" ask for the matter as a whole (the guide overview), not its steps.
    ("process", re.compile(r"流程|步骤|程序|怎么办理|如何办理|怎么弄|怎么申请|如何申请|怎样办理|怎么补|网上办|在线办|手机上办|能网办|网上(?:能|可以)(?:办|弄)|手机上(?:能|可以)?(?:办|弄)|自助机|(?:寄|快递|送)到家|邮寄|快递|怎么取|如何提取|怎么提取")),
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
_QUESTION_WORDS = re.compile(r"怎么|怎样|如何|多少|哪|什么|为什么|为啥|能不能|能否|是否|要不要|需不需要|可不可以|有没有|咋|啥|是不是|会不会|谁")
_QUESTION_END = re.compile(r"(?:[呢吗嘛么]|是吧|对吧|了吧|(?<![我你他她])不|行不行|好不好|对不对|够不够)[。.!！~～\s]*$")


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
    if MATERIAL_NOUNS.search(text) and re.search(r"[吗么]|要不要|需不需要|用不用|不[。.!！\s]*$", text):
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
丈夫 妻子 爱人 爸 妈 我爸 我妈 老爸 老妈 爷爷 奶奶 外公 外婆 姥姥 姥爷 家人 家里人 家属 亲戚 朋友 同事 本人 自己 学生 员工 职工 弟弟 妹妹 哥哥
姐姐 孙子 孙女 外孙 对象 男朋友 女朋友 人 大家 家里 公司 单位 我家 他家 她家 市民 居民 群众 外地人 本地人 老乡""".split())


# Things a matter may be about without becoming another matter ("车子年检", "二手房过户").
OWNED = set("车 车子 汽车 小车 私家车 爱车 轿车 房 房子 二手房 新房 老房子 商品房 公司 店 小店 门店 企业".split())
# Words too common in matter names to pick one member of a category ("社保卡…办理").
_GENERIC = {"办理", "申请", "手续", "登记", "需要", "怎么", "哪里", "可以", "材料", "证件", "厦门", "厦门市"}
# Forms of the same document: before its name they keep it that matter ("电子版社保卡").
FORMS = {"电子", "电子版", "新版", "旧版", "老版", "纸质", "纸质版", "实体", "临时", "正式", "原件", "复印件"}
# Places whose name before a matter keeps it the same matter.
HOME_PLACES = {"厦门", "厦门市", "福建", "福建省", "本市", "市里", "区里", "本地", "当地", "国内", "中国", "内地", "大陆", "老家", "户籍地", "外地"}


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
        # Sounds-alike matching is for Chinese names only ("12345" in a phone number sounds like nothing).
        self.pinyin_terms = [(_pinyin(t), gid) for t, gid in self.terms if len(t) >= 3 and re.search(r"[\u4e00-\u9fff]", t)]

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

    # "补办身份证" / "身份证过期了": the verb says which member of a category is meant.
    CATEGORY_VERBS = (("补", "丢", "遗失", "掉了", "挂失", "被偷"), ("换", "过期", "到期"), ("第一次", "首次", "新办", "申领", "新申请"))

    def resolve(self, category: str, text: str) -> str | None:
        members = self.members(category)
        for verbs in self.CATEGORY_VERBS:
            hit = [g for g in members if any(v in text for v in verbs) and any(v in g.name for v in verbs)]
            if len(hit) == 1:
                return hit[0].id
        # "社保卡…挂失", "医保…参保", "医保…备案": a word of the message in exactly one member's official name.
        import jieba

        picked = {g.id for w in jieba.lcut_for_search(text) if len(w) >= 2 and w not in category and w not in _GENERIC
                  for g in members if w in g.name and sum(w in m.name for m in members) == 1}
        return next(iter(picked)) if len(picked) == 1 else None

    def find(self, text: str) -> list[tuple[str | None, str | None]]:
        """Every matter a text names, in order: (guide id, None) for a name or alias; (guide id,
        category) for a category the verbs resolve ("身份证…丢了"); (None, category) for a category
        left open; ("", "外星人居住证") for an invented kind."""
        text = normalize(text)
        found: list[tuple[int, str | None, str | None]] = []
        masked = text
        for term, gid in self.terms:
            pos = masked.find(term)
            if pos < 0:
                continue
            masked = masked.replace(term, "\0" * len(term))  # a longer alias hides its substrings
            if term.isdigit() and re.search(rf"\d{re.escape(term)}|{re.escape(term)}\d", text):
                continue  # "12345" inside a phone number is not the hotline
            made_up = self._invented(text, pos, term)
            found.append((pos, "", made_up) if made_up else (pos, gid, None))
        for cat in sorted(self.categories, key=len, reverse=True):
            pos = masked.find(cat)
            if pos < 0 or len(self.categories[cat]) < 2:
                continue
            masked = masked.replace(cat, "\0" * len(cat))
            made_up = self._invented(text, pos, cat)
            if made_up:
                found.append((pos, "", made_up))
                continue
            # The verbs of this mention's own clause decide, else the whole message's ("身份证跟社保卡都丢了").
            clause = re.split(r"[，,。！!？?；;\s]", text[pos:])[0]
            found.append((pos, self.resolve(cat, clause) or self.resolve(cat, text), cat))
        if not found:
            py = f" {_pinyin(text)} "
            for term_py, gid in self.pinyin_terms:
                if f" {term_py} " in py:
                    found.append((py.find(f" {term_py} "), gid, None))
                    break
        found.sort(key=lambda x: x[0])
        if any(gid == "" for _, gid, _ in found) and not any(gid and self.guides[gid].kind == "matter" for _, gid, _ in found):
            return [(gid, cat) for _, gid, cat in found if gid == ""]
        return [(gid, cat) for _, gid, cat in found if gid != ""]

    def _invented(self, text: str, pos: int, term: str) -> str | None:
        """The modifier+name when the noun right before a matter's name makes it another thing."""
        import jieba.posseg as pseg

        before = re.split(r"[，,。！!？?；;、\s]", text[:pos])[-1].rstrip("的之")
        if not before or _ASKS.search(term):
            return None  # a guide's 常见问法 ("医保怎么交") is a question, and what comes before it is who asks
        # "残联|办残疾证", "房产|继承过户": an alias that starts with a verb ("办" + the known "残疾证") has its
        # subject or object before it, not a modifier. (jieba knows each alias as one word: cut what is left.)
        head = next((term[:-len(t)] for t, _ in self.terms if len(t) < len(term) and term.endswith(t)), "")
        if head and any(w.flag.startswith("v") and w.flag != "vn" for w in list(pseg.cut(head))[:1]):
            return None
        words = [w for w in pseg.cut(before)]
        if not words:
            return None
        last = words[-1]
        # "二次元" is tagged a numeral; "第三代" is one too, and a real kind of card.
        invented_numeral = last.flag == "m" and len(last.word) >= 3 and not last.word.startswith("第")
        if not (last.flag.startswith(("n", "j", "eng")) or invented_numeral) or last.flag in ("nt", "nr"):
            return None  # a verb (办/补/换), a time or a name is not a kind of document
        if last.word in PEOPLE or last.word in OWNED or last.word.endswith(("者", "人员")) or \
                last.word.endswith(("人", "儿", "子", "的")) and last.word[:-1] in PEOPLE:  # "自由职业者医保"
            return None
        if last.word in FORMS:
            return None  # "电子版社保卡", "临时身份证": a form of the same document
        if last.word.rstrip("区市县省") in REGIONS or last.word in HOME_PLACES:
            return None  # "厦门居住证", "福建社保卡"; another place's ("鹭岛通行证", "美国护照") is another thing
        compound = last.word + term
        if compound in self.corpus or any(compound in t for t, _ in self.terms):
            return None
        return compound

    def masked(self, text: str) -> str:
        """The text with every matter name and alias blanked: "异地就医备案可以手机上弄吗" asks how, not
        where — "异地" is part of the name."""
        for term, _ in self.terms:
            if len(term) >= 3 and term in text:
                text = text.replace(term, "※")
        return text

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


# ---------------------------------------------------------------------------------------------
# One reading per message. A message is not one intent: it may greet, ask two things, correct an
# earlier answer and ask for a person at once. `Reader.run` reads it once into a `Reading`; the
# dialogue (assistant/dialogue.py), the Answerer, the booking form and the HTTP routes all use that
# value instead of reading the words again.

PART_KINDS = ("greeting", "thanks", "filler", "goodbye", "question", "request", "correction", "statement")


@dataclass(frozen=True)
class Part:
    kind: str
    text: str


@dataclass(frozen=True)
class Correction:
    """"电话打错了 是139…" → Correction("booking_phone", "139…"); a bare "不对" → Correction(None, None)."""
    slot: str | None = None
    value: str | None = None


@dataclass(frozen=True)
class Reading:
    text: str  # the message normalised once (traditional → simplified, full-width → half, spaces)
    parts: tuple[Part, ...] = ()
    matters: tuple[str, ...] = ()  # guide ids, in order of mention
    asked: tuple[tuple[str, str | None], ...] = ()  # (matter, the question type asked of it in its own clause)
    category: str | None = None  # a category named without the member meant ("社保卡" alone)
    invented: str | None = None  # "外星人居住证": a real name under an invented kind
    qtypes: frozenset[str] = frozenset()
    qtype: str | None = None  # the main question type (the first one asked)
    comparison: str | None = None  # the question type compared across matters ("哪个贵" → fee)
    places: tuple[str, ...] = ()
    dates: tuple[str, ...] = ()  # ISO dates (filled by the booking form's parser when it reads)
    slot: str | None = None
    phone: str | None = None
    person: str | None = None  # whom the matter concerns when not the speaker
    requests: frozenset[str] = frozenset()  # human, complaint, book, cancel_booking, query_booking, stop
    correction: Correction | None = None
    has_materials: tuple[str, ...] = ()
    back_ref: str | None = None  # last | first | earlier
    is_question: bool = False
    question: str = ""  # the text without greetings, thanks, filler and requests: what to answer

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(p.kind for p in self.parts)

    @property
    def asks(self) -> bool:
        """Holds a knowledge question (something to answer), not only steering."""
        return bool(self.question) and (self.is_question or bool(self.matters) or bool(self.category))


# Greetings, filler and thanks, peeled off the ends of each clause. People glue them to the question
# without punctuation ("喂你好我想问一下那个护照…"), so they are matched as prefixes, repeatedly.
_GREETING = re.compile(r"^(?:喂+|嗨+|哈喽|哈啰|hello|hi|hey|你们?好+|您们?好+|大家好|早上好|早安|上午好|中午好|下午好|晚上好|"
                       r"在不在|在吗|(?:早|在么|在嘛|在不|在没)(?=[啊呀呢吧哈嘛,，!！~～。.\s]|$|在)|有人吗|有人在吗|亲+|小助手|办事通)[啊呀呢吧哈嘛,，!！~～。.\s]*", re.I)
_FILLER = re.compile(r"^(?:请问一下|请问下|请问|麻烦(?:您|你)?(?:问|咨询|帮我看)?一下|麻烦|打扰(?:一下|了)?|不好意思|冒昧问一下|"
                     r"我想(?:问|咨询|了解)(?:一下|下)?|想(?:问|咨询|了解)(?:一下|下)?|(?:我)?(?:问|咨询)(?:一下|下)|顺便问(?:一下|下)?|"
                     r"对了|还有|另外|那个|这个嘛|就是|就是说|嗯+|额+|呃+|哦+|噢+|好的|好|ok|OK|行|是这样的?|是这样子)"
                     r"[啊呀呢吧哈,，!！~～。.\s]*", re.I)
_THANKS = re.compile(r"(?:非常|十分|太)?(?:谢谢|多谢|感谢|谢啦|谢了|辛苦了|thx|thanks|3q)(?:你|您|你们|啦|了)?(?:了|啊|哈|呀)?[!！~～。.\s]*$", re.I)
_GOODBYE = re.compile(r"(?:再见|拜拜|(?<![礼崇参])拜|bye|(?<!\d)88|回头见|下次再(?:聊|问)|先这样(?:吧|啦)?|就这样吧)(?:啦|了|哈|啊|咯|喽)?[!！~～。.\s]*$", re.I)
_CLAUSE = re.compile(r"[^，,。！!？?；;\n~～ ]+[，,。！!？?；;\n~～ ]*")

# Requests. A person: anywhere in the message, even in passing ("…你们说不清楚 我要找人工"), or asked
# for indirectly ("有没有人能直接跟我讲讲"). "人工智能", "人工费" are not people.
_HUMAN = re.compile(r"人工(?!智能|费|成本|授精|审|核|录入|办理)|(?<!是)(?<!是不是)真人|活人|客服|工作人员|接线员|话务员|转接|找个?人(?!才)|"
                    r"有没有人(?:能|可以|来)?|有人(?:能|可以)(?:直接)?(?:跟|和|给|帮)我|(?:跟|和)人(?:说|聊|讲)|打电话给我|给我回电话|领导|(?:让|叫|来|换)个?人来|来个人")
_COMPLAINT = re.compile(r"(?<!不是要)(?<!不是想)(?<!不想)(?<!不要)(?<!不是)投诉|举报|差评|不作为|乱收费|推诿|刁难|态度(?:太)?(?:差|恶劣|不好)")
# Booking verbs that ask to book now — not questions about booking ("怎么预约", "要预约吗").
_BOOK = re.compile(r"(?<![不没])(?:帮我|给我|替我|我要|我想|我得|想要|想|要|麻烦|打算|准备|计划)(?:现在)?(?:预约|约|挂号|排号|订号|订个号|取个?号)(?:一下|个|一个|下)?(?!.{0,3}(?:吗|么|呢|不|没|\?|？))|(?:帮|给|替)(?:我|俺)?[\u4e00-\u9fff]{1,2}(?:预约|约个号|约一下|挂个?号|订个号)|"
                   r"^(?:现在)?预约办事|^(?:我要|我想)?预约(?:一下)?$|^约(?:一下|个号)$")
_CANCEL = re.compile(r"(?:取消|退掉?|撤销|不要了)(?:我的|掉|一下|下)?(?:这个|那个)?预约|预约(?:不要了|取消|不去了)|^取消预约|"
                     r"(?:预约|约的|约好的|约了的)[^，,。？?]{0,10}?[\s，,]*(?:帮我)?(?:退掉|取消掉?|撤销|不要了)")  # "明天的预约去不了了 取消掉吧"
_QUERY = re.compile(r"(?:查|看|查询|查看)(?:一下|下)?(?:我的|我)?(?:预约|约的)|我(?:的)?预约(?:是|在|呢|情况|号)|我约了(?:什么|哪|几)|^查预约|"
                    r"(?:有没有|是否|是不是)(?:预约|约)(?:成功|上|好)|预约(?:成功|上)了?(?:吗|没)")
_STOP = re.compile(r"^(?:先|暂时|还是|那就|那)?(?:不预约了|不约了|不预约|不约|不办了|不要了|算了|(?:我要|我想)?退出(?:这个)?(?:预约)?|不用了|取消|停|不弄了|不搞了)"
                   r"(?:吧|了|啦)?[!！。.\s]*$")
_BOT_ADDRESSED = re.compile(r"你是|你们是|你叫|你会|你能|你可以做|你有什么用|机器人|智能客服|ai|AI")

# Several matters compared: the question type the comparison is about.
# "哪个…快/贵/材料少": which of the matters named, by a measure said within a few characters after 哪个
# ("哪个办得快一点", "哪个最贵啊", "哪个要的东西多") — not "哪个窗口交钱", which asks where.
_WHICH = r"哪(?:个|一个|样|种)(?!窗口|地方|部门|网点|中心|区|楼|银行|app|APP)[^，,。？?\s]{0,6}?"
_COMPARE = (
    ("fee", re.compile(_WHICH + r"(?:贵|便宜|划算|省钱|收费|要钱|交钱|花钱|费用)|(?:分别|各)(?:要)?多少钱|都(?:要)?多少钱|都收费|都要钱")),
    ("time", re.compile(_WHICH + r"(?:快|慢|久|费时|省时|时间|等)|(?:分别|各)(?:要)?多久|都要多久")),
    ("where", re.compile(r"都在哪|分别在哪|各在哪|都去哪|都在什么地方|都到哪|" + _WHICH + r"(?:近|远)")),
    ("materials", re.compile(r"(?:分别|各|都)(?:要)?(?:带|准备)(?:什么|啥|哪些)|" + _WHICH + r"(?:材料|东西|证件)")),
)
_BACK_EARLIER = re.compile(r"刚才(?:那个|那件|说的|问的)|刚刚(?:那个|说的|问的)|之前(?:那个|问的|说的)|前面(?:那个|问的|说的)|回到(?:刚才|之前|上一个)|上一个(?:问题|事)?")
_BACK_FIRST = re.compile(r"第一个|头一个|最开始(?:那个|问的)")
_BACK_LAST = re.compile(r"^(?:那|它|这个|那个|这|那这个|那它|她|他)(?!个?(?:问题))")

# Whom a matter concerns when not the speaker: "我妈身份证过期了", "帮孩子办", "老人家".
_PERSON = re.compile(r"(?:我|俺|帮|给|替)?(俺娘|老娘|俺爹|老妈|妈妈|我妈|母亲|老爸|爸爸|我爸|父亲|爸妈|父母|孩子|小孩|儿子|女儿|宝宝|婴儿|新生儿|"
                     r"老婆|老公|妻子|丈夫|爱人|爷爷|奶奶|外公|外婆|姥姥|姥爷|老人家|老人|老年人|家人|家里人|朋友|亲戚|弟弟|妹妹|哥哥|姐姐)")
_PERSON_CANON = {"俺娘": "妈妈", "老娘": "妈妈", "俺爹": "爸爸", "老妈": "妈妈", "我妈": "妈妈", "母亲": "妈妈", "老爸": "爸爸", "我爸": "爸爸", "父亲": "爸爸", "爸妈": "父母",
                 "小孩": "孩子", "婴儿": "宝宝", "新生儿": "宝宝", "妻子": "老婆", "爱人": "老婆", "丈夫": "老公",
                 "老人家": "老人", "老年人": "老人", "家里人": "家人", "姥姥": "外婆", "姥爷": "外公"}

# "我有身份证和户口本 想办护照 还缺啥": what the person says they have.
_HAVE = re.compile(r"(?:我|俺|我们|我们俩|我们倆)?(?:已经|都|现在)?(?:有|带了|带着|拿了|准备了|准备好了|手上有|手里有|带)"
                   r"([^，,。！!？?；;]{2,60}?)(?=[，,。！!？?；;]|\s*(?:想|要|去|办|给|还(?!有)|够|行|可以|能|了吗|吗)|$)")
_HAVE_CHECK = re.compile(r"齐了没|齐没齐|全了吗|全不全|够了没|还缺|还差|差(?:什么|啥|哪些|不差)|少(?:什么|啥|了什么)|还要带|还得带|缺(?:什么|啥|哪些|不缺)|够(?:不够|吗|了吗|么)|齐(?:不齐|了吗|吗)|还要(?:什么|啥|带什么|带啥)|还需要(?:什么|啥|哪些)|可以了吗|行不行|行吗")
# "身份证都带了", "照片也有了": the thing first, then that one has it.
_HAVE_AFTER = re.compile(r"(?:^|[\s，,。]|还有)([^，,。！!？?；;\s]{2,12}?)(?:都|也)?(?:带了|带着|有了|准备好了|准备了|拿了|办好了)")
_MATERIAL_WORDS = re.compile(r"证|本|簿|照|相片|证明|复印件|原件|卡|表|书|户口|执照|合同|协议")

# Corrections: "不对…我要…", "打错了 是…", "我要办的是X不是Y", "改成后天".
# A name shaped like a matter's (a kind of subsidy, visa, permit): checked against the knowledge base.
# The kinds of thing a matter's name ends with; the words right before one say which ("育儿补贴", "日本签证").
_MATTER_NOUN = re.compile(r"补贴|补助|津贴|签证|通行证|许可证|优待证|执照|牌照|资格证")
_NAME_WORD = ("n", "j", "vn", "eng", "m")  # jieba tags a name's modifier can carry ("育儿" n, "生育" vn, "两项" m)


def _merge(parts: list[Part]) -> list[Part]:
    """A statement right before a question is that question's context ("护照和港澳通行证都要办 分别带啥",
    "我妈身份证过期了 她能不能让我代办"): one question part."""
    out: list[Part] = []
    for p in parts:
        if p.kind == "question" and out and out[-1].kind == "statement":
            out[-1] = Part("question", f"{out[-1].text} {p.text}")
        else:
            out.append(p)
    return out


def _qtypes(text: str) -> list[str]:
    """Every question type a text asks, in QTYPE_PATTERNS order (most specific first)."""
    found = [name for name, pat in QTYPE_PATTERNS if pat.search(text)]
    if not found and (q := detect_qtype(text)):
        found = [q]
    return found


_CORRECT = re.compile(r"不是.{1,10}?[ ，,]?(?:是|要)|是.{1,8}不是|不对|不是这个|错了|选错|打错|写错|填错|说错|搞错|弄错|输错|点错|改成|改为|改到|换成|换到|应该是|其实是|我要办的是|重新选|重选|更正")


def _peel(clause: str) -> tuple[list[Part], str, list[Part]]:
    """Greetings/filler off the front, thanks/goodbyes off the back of one clause."""
    head: list[Part] = []
    core = clause.strip()
    while core:
        m = _GREETING.match(core)
        kind = "greeting"
        if not m or not m.group(0):
            m, kind = _FILLER.match(core), "filler"
        if not m or not m.group(0):
            break
        word = m.group(0)
        if kind == "filler" and word.rstrip("啊呀呢吧哈,，!！~～。. ") in ("好", "行") and len(core) > len(word) and not re.match(r"[,，!！。.\s]", core[len(word.rstrip()) - 1:][-1:] or " "):
            break  # "好办吗", "行不行" are not an "OK"
        head.append(Part(kind, word.strip()))
        core = core[len(word):].strip()
    tail: list[Part] = []
    for pat, kind in ((_THANKS, "thanks"), (_GOODBYE, "goodbye"), (_THANKS, "thanks")):
        m = pat.search(core)
        if m and m.group(0).strip():
            tail.insert(0, Part(kind, m.group(0).strip()))
            core = core[:m.start()].strip()
    return head, core, tail


class Reader:
    """Message text → Reading, once. Built from the knowledge base's guides (MatterLookup)."""

    def __init__(self, lookup: MatterLookup, cache_size: int = 2048):
        self.lookup = lookup
        known = {t for t, _ in lookup.terms} | set(lookup.categories)
        # "办社保卡" is "办" + a known name: a sound-alike of it ("电子版社保卡") only misreads the word before.
        self._typo_terms = [(t, _pinyin(t)) for t in known
                            if len(t) >= 3 and re.sub(r"^(?:办理|申请|申领|补办|办)", "", t) not in known - {t}]
        self._typo_terms.sort(key=lambda tp: -len(tp[0]))
        # Aliases that say doing something ("宝宝上户口", "办居住证"): inside a "我有…" list they name the matter.
        self._doing_terms = [t for t in known if len(t) >= 3 and re.search(r"[上办换补领续落入]|申请", t)]
        # One reading per message even when several actions ask for it; per reader, so a newly published
        # index (new guides, renamed ones) reads afresh. A Reading is frozen: sharing it is safe.
        self.run = lru_cache(maxsize=cache_size)(self._run)

    def _run(self, message: str) -> Reading:
        text = normalize(message or "")
        if not text:
            return Reading(text="")
        text = self._fix_typos(text)
        parts: list[Part] = []
        for raw in _CLAUSE.findall(text) or [text]:
            head, core, tail = _peel(raw.strip(" ，,。；;\n~～"))
            parts.extend(head)
            if core:
                parts.append(Part(self._kind(core), core))
            parts.extend(tail)
        parts = _merge(parts)
        body = " ".join(p.text for p in parts if p.kind in ("question", "statement", "correction"))
        requests = self._requests(text, parts)
        qtypes = _qtypes(self.lookup.masked(body))
        if "booking" in qtypes and "book" in requests and not re.search(r"怎么|如何|怎样|需要|要不要|能不能|可以|吗|么", body):
            qtypes.remove("booking")  # "帮我预约一下" books, it does not ask how
        comparison = next((q for q, pat in _COMPARE if pat.search(body)), None)
        has = self._has(text, body)
        # What the person has is not what they ask about: "我有户口本 结婚证… 给宝宝上户口还差啥".
        about = strip_request_prefix(body) if body else ""  # "市民问残疾证换领": the agent's frame names no matter
        for item in has:
            about = about.replace(item, " ")
        found = self.lookup.find(self._expand(about or text))
        matters = tuple(dict.fromkeys(gid for gid, _ in found if gid))
        category = next((cat for gid, cat in found if gid is None and cat), None)
        invented = next((cat for gid, cat in found if gid == "" and cat), None)
        if not matters and not category and not invented:
            invented = self._unknown_matter(about)
        question = strip_request_prefix(body) if body else ""
        return Reading(
            text=text, parts=tuple(parts), matters=matters, asked=self._asked(about, matters) if len(matters) > 1 else (),
            category=category, invented=None if matters else invented,
            qtypes=frozenset(qtypes), qtype=qtypes[0] if qtypes else None, comparison=comparison,
            places=tuple(dict.fromkeys(r for k, r in REGIONS.items() if k in text)),
            slot=None, phone=_phone(text), person=self._person(text), requests=frozenset(requests),
            correction=self._correction(text), has_materials=has, back_ref=self._back(body),
            is_question=any(p.kind == "question" for p in parts), question=question,
        )

    def _asked(self, about: str, matters: tuple[str, ...]) -> tuple[tuple[str, str | None], ...]:
        """"结婚登记要钱吗 还有离婚登记要带啥": each matter with the question of its own clause; a clause
        without a matter asks of the matter before it."""
        out: dict[str, str | None] = {}
        last = None
        for clause in re.split(r"[，,。！!？?；;\s]+|还有|另外|以及", self._expand(about)):
            ids = [gid for gid, _ in self.lookup.find(clause) if gid]
            q = next(iter(_qtypes(clause)), None)
            for gid in ids:
                out.setdefault(gid, q)
                last = gid
            if not ids and q and last and out.get(last) is None:
                out[last] = q
        return tuple((m, out.get(m)) for m in matters)

    def _unknown_matter(self, text: str) -> str | None:
        """"育儿补贴", "美国签证": a matter-like name that no guide and no text of the knowledge base knows.
        The name is the nouns right before the kind, so "开奶茶店要办什么许可证" names no matter ("什么许可证"
        asks which one) and "个体工商户当天能拿到执照" is not "户当天能拿到执照"."""
        import jieba.posseg as pseg

        for m in _MATTER_NOUN.finditer(text):
            before = re.split(r"[，,。！!？?；;、\s]", text[:m.start()])[-1]
            modifier = ""
            for w in reversed(list(pseg.cut(before))):
                if not w.flag.startswith(_NAME_WORD) or w.word in ("那个", "这个") or len(modifier) >= 6:
                    break
                modifier = w.word + modifier
            name = modifier + m.group(0)
            if len(modifier) >= 2 and name not in self.lookup.corpus:
                return name
        return None

    # --- pieces ---
    def _fix_typos(self, text: str) -> str:
        """"身分证", "社宝卡", "结昏登记": a span that sounds like a known name is read as that name."""
        if len(text) > 300:
            return text
        syllables = [lazy_pinyin(ch, errors=lambda s: list(s))[0] if ch.strip() else "_" for ch in text]
        joined = " " + " ".join(syllables) + " "
        for term, py in self._typo_terms:
            at = joined.find(f" {py} ")
            if at < 0 or term in text:
                continue
            i = joined[:at + 1].count(" ") - 1  # syllables before the match = its character index
            span = text[i:i + len(term)]
            if re.fullmatch(r"[\u4e00-\u9fff]+", span):
                text = text[:i] + term + text[i + len(term):]
        return text

    @staticmethod
    def _expand(text: str) -> str:
        """"结婚和离婚登记" names two matters: the shared ending goes to both ("结婚登记和离婚登记")."""
        text = re.sub(r"([\u4e00-\u9fff]{2})(和|跟|与|及|还有|、|或者?|还是)([\u4e00-\u9fff]{2})(登记|证|卡|手续|备案)",
                      r"\1\4\2\3\4", text)
        text = re.sub(r"(?<=[证卡照本])(?:也|都|又|全)(?=丢|掉|过期|到期|坏)", "", text)  # "社保卡也丢了"
        # "身份证跟社保卡都丢了": the shared predicate goes to both ("身份证丢了 社保卡丢了").
        return re.sub(r"([\u4e00-\u9fff]{2,6})(和|跟|与|还有|、)([\u4e00-\u9fff]{2,6}?)(?:都|也|全)?(丢了|丢失了|掉了|遗失了|过期了|到期了|坏了|被偷了)",
                      r"\1\4 \3\4", text)

    @staticmethod
    def _kind(core: str) -> str:
        if _CORRECT.search(core):
            return "correction"
        if (_HUMAN.search(core) or _COMPLAINT.search(core) or _BOOK.search(core) or _CANCEL.search(core) or _QUERY.search(core) or _STOP.match(core)) \
                and not (detect_qtype(re.sub(_HUMAN.pattern, "", core)) and re.search(r"[吗呢？?]|怎么|多少|哪|多久|几天|什么时候", core)):
            return "request"
        return "question" if is_question(core) else "statement"

    @staticmethod
    def _requests(text: str, parts: list[Part]) -> list[str]:
        """Requests come from the parts that ask for something, not from a question about it
        ("12345投诉一般多久有回复" asks about complaints; "我要投诉" makes one)."""
        out = []
        asking = " ".join(p.text for p in parts if p.kind in ("request", "statement", "correction"))
        if _HUMAN.search(asking) and not re.search(r"有人在吗|有人吗|在吗", asking) or re.search(r"有没有人能|有人能", asking):
            out.append("human")
        if _COMPLAINT.search(asking):
            out += ["complaint"] + ([] if "human" in out else ["human"])  # a complaint goes to a person
        if _CANCEL.search(text):
            out.append("cancel_booking")
        elif _QUERY.search(text):
            out.append("query_booking")
        elif any(_BOOK.search(p.text) for p in parts if p.kind in ("request", "statement")) or \
                re.match(r"^(?:我)?(?:要|想)?(?:预约|约)(?!了|好|过|的)\s*(?:一下|个号)?\s*(?:办|去办|办理)?\s*[\u4e00-\u9fff]", text) and not is_question(text):
            out.append("book")  # "预约办不动产抵押登记", "预约 社保卡补换"
        if any(_STOP.match(p.text) for p in parts if p.kind in ("request", "statement")):
            out.append("stop")
        return out

    @staticmethod
    def _person(text: str) -> str | None:
        m = _PERSON.search(text)
        if not m:
            return None
        word = m.group(1)
        return _PERSON_CANON.get(word, word)

    def _has(self, text: str, body: str) -> tuple[str, ...]:
        if not _HAVE_CHECK.search(text) and not re.search(r"(?:我|俺)(?:已经)?(?:有|带了|准备了)", text):
            return ()
        items: list[str] = []
        lists = [m.group(1) for m in _HAVE.finditer(text)] + [m.group(1) for m in _HAVE_AFTER.finditer(text)]
        if lists:  # "…都带了 还有合照": what follows 还有 in the same message is had too
            lists += re.findall(r"还有([^，,。！!？?；;\s]{2,10})", text)
        for found in lists:
            for item in re.split(r"和|跟|与|及|以及|还有|、|，|,|\s", found):
                item = re.sub(r"^.*(?:我们俩|我俩|我们|咱们|咱俩|俺们|我)(?:都|也|已经)*的?", "", item)  # "结婚登记我俩身份证"
                item = re.sub(r"^(?:一张|一本|一份|两张|两份|(?:我们双方|我老公|我老婆|我爱人|我们|卖家|买家|双方|本人|我)的?)+|(?:原件|复印件)?(?:了|的)?$", "", item.strip())
                if len(item) >= 2 and _MATERIAL_WORDS.search(item) and not re.search(r"没有?|缺", item) \
                        and not re.match(r"办|换|补|申请|去|给|领|续", item) \
                        and not any(t in item for t in self._doing_terms):  # "办居住证", "宝宝上户口": the matter
                    items.append(item)
        return tuple(dict.fromkeys(items)) if (items and (_HAVE_CHECK.search(text) or len(items) >= 2)) else ()

    @staticmethod
    def _back(body: str) -> str | None:
        if _BACK_FIRST.search(body):
            return "first"
        if _BACK_EARLIER.search(body):
            return "earlier"
        if _BACK_LAST.search(body):
            return "last"
        return None

    def _correction(self, text: str) -> Correction | None:
        if not _CORRECT.search(text.replace("没错", "").replace("不错", "")):
            return None
        from assistant import booking_form  # the form's own parsers say which value is meant

        c = booking_form.correction_of(text)
        if c.value is None and c.slot in (None, "matter"):
            # "我要办的是港澳通行证 不是护照", "事项错了 应该是居住证": the matter named, not the one denied.
            meant = [gid for gid, _ in self.lookup.find(re.sub(r"不是[^\s，,。是]*", " ", text)) if gid]
            if meant:
                return Correction("matter", meant[0])
        return c


def _phone(text: str) -> str | None:
    m = re.search(r"(?<!\d)(1[3-9]\d{9})(?!\d)", re.sub(r"[\s\-]", "", text))
    return m.group(1) if m else None
