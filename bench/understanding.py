"""How well one understanding pass reads messages typed the way people type (issue 18).

    python -m bench.understanding [--set bench/understanding_set.jsonl] [--failures] [--class NAME]

Runs `answerer.reader.run(text)` (the `Reading` contract, assistant/understanding.py) on every message
of the labelled set and prints per-field accuracy, the all-fields-correct rate, per-class rates and
the reader's latency. The set is never trained on (tests/test_understanding_set.py checks that no
line is shared with the NLU data).

The set (one JSON object a line): `id`, `class` (what kind of message it was written as), `text`,
optional `context` (the previous user message, for follow-ups) and `step` (the booking-form question
that had just been asked, for corrections), and the expected fields: `kinds`, `matters` (guide ids in
order of mention), `qtypes`, `comparison`, `places`, `person`, `requests`, `correction`
({"slot", "value"} or null), `has_materials`, `back_ref`, `is_question`. The reader sees the text
only; `context`/`step` are there for the human reading a failure.

How the labels were decided (so a disagreement can be argued with, not guessed at):
- kinds: greeting (你好/您好/喂/哈喽/老师好), thanks (谢谢/多谢/感谢/辛苦了), goodbye (再见/拜拜/88/先这样),
  filler (content-free parts: 请问/问一下/我想问一下/麻烦问下/打扰一下/在吗 as openers, and 嗯/哦/好的/
  明白了/ok/那个/等一下 standing as their own part; 那个/就是 inside a clause make no part), question (asks
  for information, including a need that names a matter in trouble: "身份证丢了咋办", "我妈身份证过期了"),
  request (hand-over, booking, cancelling or looking up a booking, stopping), correction (不对/选错了/
  打错了/改成…/我要办的是X不是Y), statement (anything else with content: 我从来没办过, 打字慢, 我有身份证和
  户口本, a complaint without a request, small talk that asks nothing). `kinds_core` (only question /
  request / correction, what decides the behaviour) is reported beside the exact set.
- hand-over: asking for a person directly or indirectly (找人工, 有没有人能跟我讲, 叫你们领导来), and
  "我要投诉…" (a complaint goes to a person). "人工智能", "人工窗口", "人工审核" are nouns, not requests.
- qtypes: "怎么办/咋办/怎么弄" ask in general (empty); process = steps, flow, online/phone/post channels,
  "要跑几次"; conditions = who may apply, may someone else do it, 能不能办; scope = 通办/where else it is
  valid, what a service covers; where = where, "能在X办吗"; booking = asking about booking as knowledge.
- places: districts and regions named (海沧区 … 东平县); "厦门" / "这边" are not places.
- person: the canonical relation, see PERSONS; "其他" = someone else whose relation is not said (她, 他).
- back_ref: "last" (那/它/这个 with no matter), "first" (第一个), "earlier" (刚才那个, 回到刚才那个), or the
  guide id when the message names an earlier matter again ("还是说回护照吧").
- correction values: centre as the district (海沧区), date as said (后天, compared as "given"), slot as
  "morning"/"afternoon"/"HH:MM", name as typed, phone digits, matter as a guide id; a bare 不对 is
  {"slot": null, "value": null}.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

SET = Path(__file__).resolve().parent / "understanding_set.jsonl"
FIELDS = ("kinds", "kinds_core", "matters", "qtypes", "comparison", "places", "person", "requests",
          "correction", "has_materials", "back_ref", "is_question")
CORE_KINDS = {"question", "request", "correction"}
QTYPES = {"materials", "time", "fee", "where", "scope", "booking", "process", "conditions"}
REQUESTS = {"human", "book", "cancel_booking", "query_booking", "stop"}
KINDS = {"greeting", "thanks", "filler", "goodbye", "question", "request", "correction", "statement"}
CORRECTION_SLOTS = {"booking_centre", "booking_date", "booking_slot", "booking_name", "booking_phone", "matter", None}
BACK_REFS = {"last", "first", "earlier"}

# Everyday words for a relation → the canonical relation the labels use.
PERSONS = {
    "妈妈": ("妈妈", "我妈", "老妈", "母亲", "俺娘", "娘", "妈"),
    "爸爸": ("爸爸", "我爸", "老爸", "父亲", "爹", "爸"),
    "孩子": ("孩子", "小孩", "儿子", "女儿", "宝宝", "娃", "小朋友", "孙子", "孙女", "新生儿"),
    "老人": ("老人", "老人家", "爷爷", "奶奶", "外婆", "外公", "姥姥", "姥爷", "长辈", "家里老人"),
    "配偶": ("配偶", "老婆", "老公", "媳妇", "爱人", "妻子", "丈夫", "太太", "先生"),
}
# Everyday names of documents → one name (户口簿≈户口本).
MATERIALS = {
    "身份证": ("身份证", "居民身份证", "旧身份证", "身份证件", "身份证明"),
    "户口簿": ("户口簿", "户口本", "户口", "居民户口簿"),
    "照片": ("照片", "相片", "证件照", "寸照", "合照", "合影"),
    "社会保障卡": ("社保卡", "社会保障卡"),
    "驾驶证": ("驾驶证", "驾照"),
    "行驶证": ("行驶证", "行驶本"),
    "结婚证": ("结婚证", "结婚证书"),
    "离婚协议书": ("离婚协议书", "离婚协议"),
    "出生医学证明": ("出生医学证明", "出生证明", "出生证"),
    "体检证明": ("体检证明", "身体条件证明", "体检表"),
    "交强险保单": ("交强险保单", "交强险", "交强险凭证", "保单"),
    "港澳通行证": ("港澳通行证", "旧的通行证", "通行证", "原往来港澳通行证"),
    "银行卡": ("银行卡", "储蓄卡", "银行储蓄卡"),
    "解除劳动合同证明": ("解除劳动合同证明", "离职证明", "解除劳动关系证明", "终止劳动关系证明"),
}
SLOT_WORDS = {"上午": "morning", "早上": "morning", "下午": "afternoon"}


def _canon(value: str | None, table: dict[str, tuple[str, ...]]) -> str | None:
    if value is None:
        return None
    v = re.sub(r"^(我的?|俺|家里的?|我们)", "", str(value).strip()) or str(value)
    for name, words in table.items():
        if v == name or v in words:
            return name
    for name, words in table.items():  # "本人有效居民身份证" → 身份证: the longest everyday word inside
        if any(w in v for w in sorted(words, key=len, reverse=True) if len(w) > 1):
            return name
    return v


def _place(p: str) -> str:
    p = str(p).replace("行政服务中心", "").rstrip("的")
    return p if p.endswith(("区", "县", "市")) else p + ("县" if p == "东平" else "区")


def _slot(v: str | None) -> str | None:
    if v is None:
        return None
    v = str(v).strip()
    if v in SLOT_WORDS.values():
        return v
    m = re.search(r"(\d{1,2})[:：点](\d{2})?", v)
    if m:
        h = int(m.group(1)) + (12 if ("下午" in v and int(m.group(1)) < 12) else 0)
        return f"{h:02d}:{m.group(2) or '00'}"
    return next((c for w, c in SLOT_WORDS.items() if w in v), v)


def _correction(expected: dict | None, got, guides: dict[str, set[str]]) -> bool:
    if got is not None:
        slot, value = (got.slot, got.value) if hasattr(got, "slot") else tuple(got)
    if expected is None or got is None:
        return expected is None and got is None
    if slot != expected["slot"]:
        return False
    want = expected["value"]
    if want is None:
        return value is None
    if value is None:
        return False
    if slot == "booking_centre":
        return _place(value) == _place(want)
    if slot == "booking_phone":
        return re.sub(r"\D", "", str(value)) == want
    if slot == "booking_slot":
        return _slot(value) == want
    if slot == "booking_date":  # said relative ("后天"); the reader may resolve it to an ISO date
        return str(value) == want or bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(value)))
    if slot == "matter":
        return value == want or value in guides.get(want, set())
    return str(value).strip() == want


def _as_list(v) -> list:
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    return list(v)


def score(item: dict, reading, guides: dict[str, set[str]]) -> dict[str, tuple[bool, object, object]]:
    """field → (correct, expected, got) for one message."""
    kinds = set(_as_list(getattr(reading, "kinds", None)) or [p.kind for p in getattr(reading, "parts", ())])
    got_matters = list(dict.fromkeys(_as_list(getattr(reading, "matters", None))))
    got_person = getattr(reading, "person", None)
    want_person = item["person"]
    if want_person == "其他":
        person_ok = got_person is not None
    else:
        person_ok = _canon(got_person, PERSONS) == want_person
    got_corr = getattr(reading, "correction", None)
    got_has = sorted({_canon(m, MATERIALS) for m in _as_list(getattr(reading, "has_materials", None))})
    want_has = sorted({_canon(m, MATERIALS) for m in item["has_materials"]})
    got_places = [_place(p) for p in _as_list(getattr(reading, "places", None))]
    out = {
        "kinds": (kinds == set(item["kinds"]), sorted(item["kinds"]), sorted(kinds)),
        "kinds_core": (kinds & CORE_KINDS == set(item["kinds"]) & CORE_KINDS,
                       sorted(set(item["kinds"]) & CORE_KINDS), sorted(kinds & CORE_KINDS)),
        "matters": (got_matters == item["matters"], item["matters"], got_matters),
        "qtypes": (set(_as_list(getattr(reading, "qtypes", None))) == set(item["qtypes"]),
                   sorted(item["qtypes"]), sorted(_as_list(getattr(reading, "qtypes", None)))),
        "comparison": (getattr(reading, "comparison", None) == item["comparison"], item["comparison"],
                       getattr(reading, "comparison", None)),
        "places": (sorted(set(got_places)) == sorted({_place(p) for p in item["places"]}), item["places"], got_places),
        "person": (person_ok, want_person, got_person),
        "requests": (set(_as_list(getattr(reading, "requests", None))) == set(item["requests"]),
                     sorted(item["requests"]), sorted(_as_list(getattr(reading, "requests", None)))),
        "correction": (_correction(item["correction"], got_corr, guides), item["correction"],
                       None if got_corr is None else tuple(getattr(got_corr, f, None) for f in ("slot", "value"))
                       if hasattr(got_corr, "slot") else got_corr),
        "has_materials": (got_has == want_has, want_has, got_has),
        "back_ref": (getattr(reading, "back_ref", None) == item["back_ref"], item["back_ref"],
                     getattr(reading, "back_ref", None)),
        "is_question": (bool(getattr(reading, "is_question", False)) == item["is_question"], item["is_question"],
                        getattr(reading, "is_question", None)),
    }
    return out


def load_set(path: Path = SET) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _reader():
    """The live answerer's reader, or a clear reason why there is none."""
    try:
        from assistant.engine import Engine
        from settings import get_settings

        answerer = Engine(get_settings()).get().answerer
    except Exception as e:  # no index / no encoder: say so instead of a traceback
        raise SystemExit(f"cannot build the answerer ({type(e).__name__}: {e}); run `make setup` first") from e
    reader = getattr(answerer, "reader", None)
    if reader is None or not callable(getattr(reader, "run", None)):
        raise SystemExit("answerer.reader (issue 18's understanding pass, `answerer.reader.run(text)` → Reading) "
                         "does not exist yet: nothing to measure. It runs as soon as it lands.")
    guides = {g.id: {g.name, *g.aliases} for g in (list(getattr(answerer, "guides", {}).values()) or _guides())}
    return reader, guides


def _guides():
    from knowledge.records import load_knowledge

    return load_knowledge().guides


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.understanding")
    ap.add_argument("--set", type=Path, default=SET)
    ap.add_argument("--failures", action="store_true", help="list every wrong field with expected/got")
    ap.add_argument("--class", dest="cls", help="only messages of this class")
    args = ap.parse_args(argv)
    items = load_set(args.set)
    if args.cls:
        items = [i for i in items if i["class"] == args.cls]
    try:
        reader, guides = _reader()
    except SystemExit as e:
        print(e, file=sys.stderr)
        return 2
    right: Counter = Counter()
    per_class: dict[str, list[bool]] = defaultdict(list)
    failures: list[tuple[dict, str, object, object]] = []
    crashed: list[tuple[dict, str]] = []
    latencies = []
    for item in items:
        t0 = time.perf_counter()
        try:
            reading = reader.run(item["text"])
        except Exception as e:  # a crash is a failure of every field, not the end of the run
            crashed.append((item, f"{type(e).__name__}: {e}"))
            per_class[item["class"]].append(False)
            continue
        latencies.append((time.perf_counter() - t0) * 1000)
        result = score(item, reading, guides)
        for field, (ok, want, got) in result.items():
            right[field] += ok
            if not ok:
                failures.append((item, field, want, got))
        per_class[item["class"]].append(all(ok for f, (ok, _, _) in result.items() if f != "kinds"))
    n = len(items)
    print(f"understanding set: {n} messages ({args.set})")
    for field in FIELDS:
        print(f"  {field:<14} {right[field] / n:6.1%}  ({right[field]}/{n})")
    all_ok = sum(sum(v) for v in per_class.values())
    print(f"all fields correct (kinds_core, not the exact kinds): {all_ok / n:.1%} ({all_ok}/{n})")
    print("per class: " + ", ".join(f"{c} {sum(v)}/{len(v)}" for c, v in sorted(per_class.items())))
    if latencies:
        print(f"reader latency: p50 {statistics.median(latencies):.1f} ms, max {max(latencies):.1f} ms")
    if crashed:
        print(f"reader raised on {len(crashed)} messages:")
        for item, err in crashed:
            print(f"  {item['id']} {item['text']!r}: {err}")
    if args.failures:
        print("failures:")
        for item, field, want, got in failures:
            ctx = f"  [after {item['context']!r}]" if item.get("context") else ""
            print(f"  {item['id']} {item['class']:<24} {field:<13} expected {want!r} got {got!r}  {item['text']!r}{ctx}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
