"""City-scale benchmark (issue 20 §3): 2,000 synthetic guides beside the 57 real ones.

    python -m bench.city_scale [--guides 2000] [--seed 20] [--no-stack] [--synthetic-questions 200]

Generates N guides from the real ones (deterministic, seeded): other matter names (a licence or
certificate × an action: 「游艇驾驶证补办」, 「游艇驾驶证换发」 … — so near neighbours exist on purpose),
other districts, departments, centres and materials. Every one is clearly synthetic: its id starts with
``synth-``, its name with 〔示例〕 (the plain name is its alias, as a citizen would say it), its summary
says so and its only source is 〔示例〕 data. Then, on a scratch database and index directory:

1. seeds the 57 real guides, builds the candidate index through the admin's build job
   (assistant.publishing.start_build → the child process) and publishes it;
2. starts the real stack (Rasa + action server + app, port offset BST_TEST_PORT_OFFSET + 40) on it and
   measures the 57-guide figures;
3. imports the N guides as an .xlsx through the import code (assistant.spreadsheets: read, dry run,
   apply in one transaction), builds and publishes again, and measures the same figures.

Figures: import time (dry run + apply), index build time and the build process's peak memory,
passages, ``/api/chat`` and ``/api/search`` p50 (labelled questions, one at a time), hit@1 of the
labelled set (bench/retrieval_set.jsonl, the chat's answer code in-process: the answer's matter),
pass rate of ../shared/eval/dev.jsonl through /api/chat (+ /api/search, as bench.answers scores it),
and, with the synthetic guides present, a question naming a synthetic matter answered with that
matter (in-process over all N, and a sample through /api/chat), counting near-neighbour mistakes.
With --no-stack the HTTP figures are skipped (in-process figures only).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import re
import resource
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.stack import ProcfileStack

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
LABELLED = ROOT / "bench/retrieval_set.jsonl"
# ../shared/eval/dev.jsonl of the main checkout (a worktree sits one level deeper); BST_DEV_SET overrides.
DEV = next((p for p in (Path(os.environ.get("BST_DEV_SET", "")), ROOT.parent / "shared/eval/dev.jsonl",
                        ROOT.parent.parent / "shared/eval/dev.jsonl") if p.is_file()), ROOT.parent / "shared/eval/dev.jsonl")
T0 = time.perf_counter()

# Licences, certificates and qualifications a city's 事项库 has and the 57 real guides do not.
OBJECTS = """游艇驾驶证 渔业捕捞许可证 养犬登记证 建筑施工许可证 城镇排水许可证 户外广告设置许可 燃气经营许可证 动物诊疗许可证
兽药经营许可证 医疗机构执业许可证 护士执业证书 教师资格证 导游证 出租汽车驾驶员从业资格证 道路运输经营许可证
危险化学品经营许可证 烟花爆竹经营许可证 娱乐场所经营许可证 网吧经营许可证 出版物经营许可证 印刷经营许可证 药品经营许可证
医疗器械经营备案凭证 公共场所卫生许可证 放射诊疗许可证 母婴保健技术服务执业许可证 人力资源服务许可证 劳务派遣经营许可证
民办学校办学许可证 校外培训机构办学许可证 职业技能等级证书 特种设备使用登记证 特种作业操作证 安全生产许可证 排污许可证
取水许可证 河道采砂许可证 林木采伐许可证 野生动物驯养繁殖许可证 种子生产经营许可证 农药经营许可证 肥料登记证 饲料生产许可证
生猪定点屠宰证 水产苗种生产许可证 船员适任证书 港口经营许可证 船舶国籍证书 非机动车登记证 残疾人机动轮椅车登记证 老年人优待证
退役军人优待证 社会团体登记证书 民办非企业单位登记证书 基金会登记证书 宗教活动场所登记证 殡葬服务许可证 公墓经营许可证
犬只免疫证 城市道路挖掘许可证 临时占用绿地许可证 树木迁移许可证 建设工程规划许可证 建设用地规划许可证 乡村建设规划许可证
商品房预售许可证 房屋租赁登记备案证明 物业服务企业备案证明 公共租赁住房资格证明 人才住房资格证明 居住证积分证明
就业创业证 职业介绍许可证 人事档案托管证明 亲属关系证明 户籍证明 学历认证报告 职称证书 专利费用减缓备案证明 商标质押登记证
计量器具型式批准证书 食品小作坊登记证 食品摊贩备案卡 小餐饮登记证 酒类经营许可证 成品油零售经营批准证书 拍卖经营批准证书
典当经营许可证 旅行社业务经营许可证 游泳场所经营许可证 高危险性体育项目经营许可证 卫星电视接收设施许可证 广播电视节目制作经营许可证
营业性演出许可证 文物修复资质证书 测绘资质证书 地质灾害治理资质证书 水运工程监理资质证书 防雷装置检测资质证书
水路运输许可证 公路超限运输许可证 机动车维修经营备案证明 驾驶员培训许可证 客运站经营许可证""".split()
ACTIONS = ("首次申领", "变更", "延续", "注销", "补办", "换发", "遗失补领", "信息修改", "年度报告", "迁入", "迁出", "到期换证",
           "证明开具", "备案", "撤回申请", "进度查询", "复核", "暂停", "恢复", "转让")
DEPARTMENTS = ("市场监督管理局", "交通运输局", "海洋发展局", "农业农村局", "卫生健康委员会", "教育局", "文化和旅游局", "生态环境局",
               "住房和城乡建设局", "资源规划局", "人力资源和社会保障局", "民政局", "退役军人事务局", "公安局", "商务局", "应急管理局",
               "水利局", "林业局", "市政园林局", "体育局")
DISTRICTS = ("思明区", "湖里区", "集美区", "海沧区", "同安区", "翔安区")
EXTRA_MATERIALS = ("申请表（〔示例〕窗口领取或网上下载）", "营业场所产权证明或租赁合同", "法定代表人身份证明", "从业人员健康证明",
                   "近期一寸免冠彩色照片", "原证件原件", "遗失声明", "委托书及受托人身份证", "场所平面示意图", "安全管理制度文本",
                   "专业技术人员资格证书", "设备清单及检测报告")
MARK = "〔示例〕"


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


# ---------- generation ----------
def real_guides() -> list[dict]:
    from knowledge.guides import load_guides

    guides, problems = load_guides(ROOT / "knowledge/guides")
    assert not problems, problems
    return [g.model_dump(mode="json") for g in guides]


def synthetic_guides(n: int = 2000, seed: int = 20, lean: bool = False) -> list[dict]:
    """N clearly synthetic guides (ids synth-NNNN, names 〔示例〕…), the same for the same n and seed.

    lean: only name, alias, summary and two materials (two passages per guide: overview, materials), for
    a browser test that must build its index in reasonable time."""
    rng = random.Random(seed)
    real = real_guides()
    taken = {t for g in real for t in (g["name"], *g["aliases"])}
    bases = [g for g in real if g["kind"] == "matter"]
    pairs = [(o, a) for o in OBJECTS for a in ACTIONS if f"{o}{a}" not in taken]
    rng.shuffle(pairs)
    if n > len(pairs):
        raise ValueError(f"at most {len(pairs)} synthetic matters")
    out = []
    for i, (obj, action) in enumerate(pairs[:n]):
        plain = f"{obj}{action}"
        base = bases[i % len(bases)]
        district = rng.choice(DISTRICTS)
        region = district if rng.random() < 0.3 else "厦门市"
        dept = f"厦门市{rng.choice(DEPARTMENTS)}" if region == "厦门市" else f"厦门市{district}{rng.choice(DEPARTMENTS)}"
        mats = [{"name": f"{obj}原件" if action not in ("首次申领", "证明开具") else "本人有效居民身份证",
                 "form": "原件", "copies": 1}]
        mats.append({"name": rng.choice(EXTRA_MATERIALS), "form": rng.choice(("原件", "复印件")), "copies": rng.choice((1, 1, 2))})
        g = {"id": f"synth-{i + 1:04d}", "kind": "matter", "name": f"{MARK}{plain}", "matter_type": rng.choice(
            ("行政许可", "公共服务", "行政确认", "其他行政权力")), "region": region, "aliases": [plain],
            "questions": [f"{plain}要带什么材料", f"{plain}去哪里办"],
            "summary": f"{MARK}{plain}：城市规模测试生成的示例指南，内容不代表真实办事要求。",
            "department": dept, "materials": mats, "fee": base.get("fee") or "免费",
            "sources": {"示例数据": {"title": f"{MARK}城市规模测试生成的数据（非真实办事指南）"}},
            "provenance": {"materials": {"check": "示例数据，未核实。"}}}
        if lean:
            for k in ("questions", "department", "fee"):
                g.pop(k)
        else:
            b = copy.deepcopy(base)
            name_re = re.compile("|".join(re.escape(t) for t in sorted({b["name"], *b["aliases"]}, key=len, reverse=True)))
            for extra in rng.sample(EXTRA_MATERIALS, 2):
                mats.append({"name": extra, "form": "原件", "copies": 1})
            mats += [m for m in b["materials"][:3] if "身份证" in m["name"] and all(m["name"] != x["name"] for x in mats)]
            # The synthetic matter's own (synthetic) window, never a second copy of the city's unique district
            # centres: "翔安区的办事大厅在什么路" must keep finding the real 翔安区行政服务中心.
            centre = f"{plain}受理窗口{MARK}"
            g.update({
                "applicants": "从事相关活动的单位或个人" if "许可" in obj else "本市居民",
                "conditions": [f"符合{plain}的相关规定（{MARK}）"],
                "steps": [name_re.sub(plain, s) for s in b["steps"]] or ["到窗口提交材料", "窗口审核", "领取结果"],
                "legal_limit": b.get("legal_limit") or rng.choice((5, 10, 20)),
                "promised_limit": b.get("promised_limit") or rng.choice(("即办", 3, 5)),
                "trips": rng.choice((0, 1, 1, 1)), "channels": rng.sample(["窗口", "i厦门", "闽政通", "网上办事大厅"], 2),
                "scope": rng.choice(("全城通办", "属地办理", None)),
                "locations": [{"name": centre, "district": district, "address": f"示例路{rng.randint(1, 300)}号{MARK}",
                               "hours": "工作日 9:00-12:00，13:00-17:00"}],
                "phone": f"0592-{rng.randint(2000000, 8999999)}", "complaint_phone": "12345",
            })
            g = {k: v for k, v in g.items() if v is not None}
        out.append(g)
    return out


def synthetic_questions(guides: list[dict], k: int, seed: int = 7) -> list[tuple[str, str]]:
    """(question naming the matter in words not in its guide, guide id) for k of the synthetic guides."""
    rng = random.Random(seed)
    forms = ("请问{}需要准备哪些材料", "{}要交什么资料", "我想办{}，带哪些东西", "{}怎么办理")
    sample = rng.sample(guides, min(k, len(guides)))
    return [(rng.choice(forms).format(g["aliases"][0]), g["id"]) for g in sample]


# ---------- measuring ----------
def peak_child_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def build_and_publish(db, settings) -> dict:
    """The admin's build job (export, child process, golden questions), then publish; returns figures."""
    from assistant import publishing

    t = time.perf_counter()
    build_id = publishing.start_build(db, settings, "bench")
    job = publishing._JOBS[build_id]
    last = ""
    while job.proc.poll() is None or job.phase not in ("done", "failed", "cancelled"):
        time.sleep(2)
        line = f"{job.phase} {job.done}/{job.total}"
        if line != last and (job.done % 2048 < 128 or job.phase == "check"):
            log(f"  build {line}")
            last = line
    seconds = time.perf_counter() - t
    with db.begin() as s:
        st = publishing.status(s, build_id)
        if st["status"] != "done":
            raise SystemExit(f"build failed: {st.get('error')}")
        version = publishing.publish(s, None, settings, build_id, "bench", "bench: scale run")
    manifest = json.loads((settings.index_dir / version / "manifest.json").read_text())
    return {"version": version, "build_s": seconds, "index_s": manifest["build_seconds"],
            "passages": manifest["passages"], "guides": manifest["guides"], "build_peak_mb": peak_child_mb(),
            "golden": st.get("summary")}


def in_process(settings, synth_questions: list[tuple[str, str]], neighbours: dict[str, set[str]],
               version: str | None = None) -> dict:
    """Labelled hit@1, the development set and synthetic-matter hit@1 through the chat's answer code
    (Rasa's NLU aside); load time and memory of the version (default CURRENT)."""
    from assistant.answer import Context
    from assistant.check import passes, reply_of
    from assistant.engine import Engine

    rss0 = _rss_mb()
    t = time.perf_counter()
    engine = Engine(settings)
    if version:
        engine.reload(version)
    load_s, rss = time.perf_counter() - t, _rss_mb() - rss0
    ans = engine.current.answerer
    labelled = [x for x in read_jsonl(LABELLED) if "guide" in x]  # the guide questions (others name a clause)
    hits, times = 0, []
    for x in labelled:
        t = time.perf_counter()
        a = ans.run(x["q"], Context())
        times.append(time.perf_counter() - t)
        hits += a.matter == x["guide"]
    out = {"load_s": load_s, "load_mb": rss, "labelled_hit1": hits / len(labelled), "labelled_n": len(labelled),
           "answer_p50_ms": 1000 * statistics.median(times)}
    dev = read_jsonl(DEV) if DEV.exists() else []
    if dev:
        out.update(dev_inproc=sum(passes(c, reply_of(ans, c["turns"])) for c in dev), dev_inproc_n=len(dev))
    if synth_questions:
        ok = near = 0
        for q, gid in synth_questions:
            m = ans.run(q, Context()).matter
            ok += m == gid
            near += m in neighbours.get(gid, set())
        out.update(synth_hit1=ok / len(synth_questions), synth_near=near, synth_n=len(synth_questions))
    del engine
    return out


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Stack(ProcfileStack):
    """The real processes (Procfile via honcho) on the scratch database and index, as a context."""

    def __init__(self, env: dict, log_file: Path, port: int):
        super().__init__(env, log_file, f"http://127.0.0.1:{port}")

    def __enter__(self):
        self.start(900)
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def over_http(url: str, user: str, password: str, version: str, synth_questions: list[tuple[str, str]],
              n_latency: int) -> dict:
    import httpx

    from bench.answers import Client, evaluate

    c = httpx.Client(base_url=url, timeout=120)
    assert c.post("/api/auth/login", json={"username": user, "password": password}).status_code == 200
    deadline = time.monotonic() + 600  # the app and the action server follow CURRENT within seconds
    while c.get("/health").json().get("index_version") != version and time.monotonic() < deadline:
        time.sleep(2)
    labelled = read_jsonl(LABELLED)[:n_latency]
    for x in labelled[:3]:  # warm-up: the first question loads the action server's index
        c.post("/api/chat", json={"sender": "bench-warm", "message": x["q"]})
    if synth_questions:
        # The action server loads a newly published version in the background on its next request: measure
        # only once it answers a synthetic matter with that matter (only the new version has them).
        q, gid = synth_questions[0]
        n = 0
        while time.monotonic() < deadline:
            n += 1
            msgs = c.post("/api/chat", json={"sender": f"bench-warm-{n}", "message": q}).json()
            if any(m.get("guide_id") == gid for m in msgs):
                break
            time.sleep(2)
    chat, search = [], []
    for i, x in enumerate(labelled):
        t = time.perf_counter()
        r = c.post("/api/chat", json={"sender": f"bench-{i}", "message": x["q"]})
        chat.append(time.perf_counter() - t)
        r.raise_for_status()
        t = time.perf_counter()
        c.get("/api/search", params={"q": x["q"], "k": 5}).raise_for_status()
        search.append(time.perf_counter() - t)
    dev = read_jsonl(DEV) if DEV.exists() else []
    scorer = Client(url, user=user, password=password)  # bench.answers' own scoring (chat + search top 3)
    run_id = f"city{int(time.time())}"
    passed = sum(not evaluate(scorer, item, run_id)["problems"] for item in dev)
    out = {"chat_p50_ms": 1000 * statistics.median(chat), "search_p50_ms": 1000 * statistics.median(search),
           "dev_pass": passed, "dev_n": len(dev)}
    if synth_questions:
        ok = 0
        for i, (q, gid) in enumerate(synth_questions):
            msgs = c.post("/api/chat", json={"sender": f"bench-syn-{i}", "message": q}).json()
            ok += any(m.get("guide_id") == gid for m in msgs)
        out.update(synth_chat_hit1=ok / len(synth_questions), synth_chat_n=len(synth_questions))
    return out


# ---------- the run ----------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.city_scale", description=__doc__.split("\n\n")[0])
    ap.add_argument("--guides", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=20)
    ap.add_argument("--synthetic-questions", type=int, default=300, help="in-process (all asked through the answer code)")
    ap.add_argument("--chat-questions", type=int, default=60, help="synthetic questions asked through /api/chat")
    ap.add_argument("--latency-questions", type=int, default=60)
    ap.add_argument("--no-stack", action="store_true")
    ap.add_argument("--keep", type=Path, help="keep the scratch directory here")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a stopped run still stops its stack (Stack.__exit__)

    from assistant import knowledge_base as kb
    from assistant import spreadsheets as sp
    from assistant.db import sessions, upgrade
    from tests.conftest import create_staff
    from settings import Settings

    scratch = args.keep or Path(tempfile.mkdtemp(prefix="city-scale-"))
    scratch.mkdir(parents=True, exist_ok=True)
    offset = int(os.environ.get("BST_TEST_PORT_OFFSET", "0")) + 40
    ports = {"app": 18000 + offset, "rasa": 15005 + offset, "actions": 15055 + offset}
    env_settings = {"BST_DATABASE_URL": f"sqlite:///{scratch / 'app.db'}", "BST_INDEX_DIR": str(scratch / "index"),
                    "BST_KEEP_INDEX_VERSIONS": "3"}
    os.environ.update(env_settings)
    settings = Settings()
    upgrade(settings.database_url)
    db = sessions(settings.database_url)
    with db.begin() as s:
        kb.import_folder(s, ROOT / "knowledge", "system", "bench seed")
    user, password = create_staff(settings.database_url, "admin")

    synth = synthetic_guides(args.guides, args.seed)
    by_object: dict[str, set[str]] = {}
    for g in synth:
        obj = next(o for o in OBJECTS if g["aliases"][0].startswith(o))
        by_object.setdefault(obj, set()).add(g["id"])
    neighbours = {g["id"]: by_object[next(o for o in OBJECTS if g["aliases"][0].startswith(o))] - {g["id"]} for g in synth}
    sq = synthetic_questions(synth, args.synthetic_questions)
    chat_sq = sq[:args.chat_questions]

    env = {k: v for k, v in os.environ.items() if not k.startswith("BST_") or k.startswith("BST_TEST_")}
    env.update(env_settings)
    env.update({"PYTHONPATH": str(ROOT), "RASA_TELEMETRY_ENABLED": "false", "BST_APP_WORKERS": "1",
                "BST_APP_PORT": str(ports["app"]), "BST_RASA_PORT": str(ports["rasa"]),
                "BST_ACTION_PORT": str(ports["actions"]), "BST_RASA_URL": f"http://127.0.0.1:{ports['rasa']}",
                "BST_ACTION_URL": f"http://127.0.0.1:{ports['actions']}",
                "BST_ACTION_WEBHOOK": f"http://127.0.0.1:{ports['actions']}/webhook",
                "BST_TRACKER_DIALECT": "sqlite", "BST_TRACKER_DB": str(scratch / "trackers.db"),
                "BST_CHAT_PER_MINUTE": "0", "BST_SEARCH_PER_MINUTE": "0", "BST_LOGIN_PER_MINUTE": "0"})

    results: dict[str, dict] = {}
    log("57 guides: building the candidate index through the admin's build job")
    results["57"] = build_and_publish(db, settings)
    log(f"  {results['57']}")
    results["57"].update(in_process(settings, [], {}))
    log(f"  in-process: {results['57']}")

    log(f"generating {len(synth)} synthetic guides and importing them as .xlsx")
    blob = sp.to_xlsx(synth)
    t = time.perf_counter()
    sheets = sp.read("city-scale.xlsx", blob, settings.max_import_mb * 1024 * 1024, settings.max_import_rows)
    with db() as s:
        run = sp.dry_run(s, sheets)
    dry_s = time.perf_counter() - t
    if not run.ok:
        bad = run.problems or [str(p) for r in run.rows for p in r.problems]
        raise SystemExit(f"import refused: {len(bad)} problems, first: {bad[:3]}")
    t = time.perf_counter()
    with db.begin() as s:
        applied = sp.apply(s, sheets, None, user)
    apply_s = time.perf_counter() - t
    n_total = 57 + applied["new"]
    results[str(n_total)] = {"import_dry_run_s": dry_s, "import_apply_s": apply_s, "file_mb": len(blob) / 1024 ** 2}
    log(f"  imported {applied} (dry run {dry_s:.1f}s, apply {apply_s:.1f}s, {len(blob) / 1024 ** 2:.1f} MB)")

    with Stack(env, scratch / "stack.log", ports["app"]) if not args.no_stack else _Null() as stack:
        if stack:
            log("57 guides: measuring through the stack")
            results["57"].update(over_http(stack.url, user, password, results["57"]["version"], [], args.latency_questions))
            log(f"  {results['57']}")
        log(f"{n_total} guides: building the candidate index through the admin's build job")
        results[str(n_total)].update(build_and_publish(db, settings))
        log(f"  {results[str(n_total)]}")
        results[str(n_total)].update(in_process(settings, sq, neighbours))
        log(f"  in-process: {results[str(n_total)]}")
        if stack:
            results[str(n_total)].update(over_http(stack.url, user, password, results[str(n_total)]["version"],
                                                   chat_sq, args.latency_questions))
            log(f"  {results[str(n_total)]}")
    print_table(results)
    (scratch / "results.json").write_text(json.dumps(results, ensure_ascii=False, indent=2, default=str))
    if not args.keep:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


class _Null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def print_table(results: dict[str, dict]) -> None:
    a, b = results["57"], results[[k for k in results if k != "57"][0]]
    rows = [
        ("guides / passages in the index", lambda r: f"{r.get('guides', '?')} / {r.get('passages', '?')}"),
        ("import .xlsx: dry run + apply (one transaction)", lambda r: f"{r['import_dry_run_s']:.1f} s + {r['import_apply_s']:.1f} s ({r['file_mb']:.1f} MB)" if "import_apply_s" in r else "—"),
        ("candidate build job (export, encode, golden checks)", lambda r: f"{r['build_s']:.0f} s (encoding {r['index_s']:.0f} s)"),
        ("build process peak memory", lambda r: f"{r['build_peak_mb']:.0f} MB"),
        ("golden checks (live → candidate passed, worse)", lambda r: (lambda g: f"{g['live_passed']}→{g['candidate_passed']}/{g['total']}, worse {g['worse']}")(r["golden"]) if r.get("golden") else "—"),
        ("index load in a serving process (time, memory)", lambda r: f"{r['load_s']:.1f} s, +{r['load_mb']:.0f} MB"),
        ("answer composition p50 (in-process)", lambda r: f"{r['answer_p50_ms']:.1f} ms"),
        ("/api/chat p50", lambda r: f"{r['chat_p50_ms']:.0f} ms" if "chat_p50_ms" in r else "—"),
        ("/api/search p50", lambda r: f"{r['search_p50_ms']:.1f} ms" if "search_p50_ms" in r else "—"),
        ("labelled set hit@1 (real matters)", lambda r: f"{r['labelled_hit1']:.3f} ({r['labelled_n']})"),
        ("dev.jsonl through /api/chat (+ /api/search)", lambda r: f"{r['dev_pass']}/{r['dev_n']}" if r.get("dev_n") else "—"),
        ("dev.jsonl through the answer code (must/must_not)", lambda r: f"{r['dev_inproc']}/{r['dev_inproc_n']}" if "dev_inproc_n" in r else "—"),
        ("synthetic matter named → that matter (answer code)", lambda r: f"{r['synth_hit1']:.3f} ({r['synth_n']}; near neighbour {r['synth_near']})" if "synth_n" in r else "—"),
        ("synthetic matter named → that matter (/api/chat)", lambda r: f"{r['synth_chat_hit1']:.3f} ({r['synth_chat_n']})" if "synth_chat_n" in r else "—"),
    ]
    width = max(len(label) for label, _ in rows)
    n = [k for k in results if k != "57"][0]
    print(f"| {'measurement'.ljust(width)} | 57 guides | {n} guides |")
    print(f"|{'-' * (width + 2)}|---|---|")
    for label, f in rows:
        cells = []
        for r in (a, b):
            try:
                cells.append(f(r))
            except (KeyError, TypeError):
                cells.append("—")
        print(f"| {label.ljust(width)} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    sys.exit(main())
