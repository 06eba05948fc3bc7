"""Candidate indexes: build one from the current knowledge revisions, test it against the golden
questions side by side with the live index, publish it or roll back to any earlier version.

A build is a background job: the app exports the current revisions to a staging folder and starts
a child process (`python -m assistant.publishing build ...`) that runs the existing builder
(`embeddings.index.build(..., activate=False)`, the same as `python -m embeddings build --stage`)
and then answers every golden question with both versions through the chat's own answer code
(`assistant.check`: an Answerer over the version). The child never touches CURRENT, so the live
index keeps answering; cancelling interrupts the child, whose builder removes its half-written
directory. Publishing loads the candidate beside the live version and swaps it in (Engine.reload)
before moving CURRENT, so no request fails while it happens; the action server follows CURRENT.

    python -m assistant.publishing build --from DIR --golden FILE --report FILE [--labelled FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from assistant import audit
from assistant import knowledge_base as kb
from assistant.db import GoldenQuestion, IndexBuild, utcnow
from embeddings import index as idx
from settings import ROOT, Settings

log = logging.getLogger("banshitong.publishing")
CHECKS_FILE = ROOT / "knowledge/checks.jsonl"
LABELLED_FILE = ROOT / "bench/retrieval_set.jsonl"
_PROGRESS = re.compile(r"^\[(index|check)\]\s+(\d+)/(\d+)")
_STARTED = re.compile(r"^\[index\] encoding (\d+) passages")


class PublishRefused(Exception):
    """Golden questions got worse and no override reason was given."""


class BuildRunning(Exception):
    pass


# ---------- golden questions ----------
def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def golden_questions(session: Session, labelled: bool = False) -> list[dict]:
    """The repository's checks, the admins' questions and (optionally) the labelled retrieval set."""
    out = [{**c, "source": "checks"} for c in read_jsonl(CHECKS_FILE)]
    for g in session.scalars(select(GoldenQuestion).where(GoldenQuestion.active.is_(True)).order_by(GoldenQuestion.id)):
        out.append({"id": f"adm-{g.id}", "turns": json.loads(g.turns), "must": json.loads(g.must),
                    "must_not": json.loads(g.must_not), "source": "admin"})
    if labelled:
        # A labelled question names the guide it is about, or the policy document and clause.
        out += [{"id": f"lab-{i + 1}", "turns": [x["q"]], "source": "labelled",
                 **({"guide": x["guide"]} if "guide" in x else {"doc": x["doc"], "clause": x.get("clause")})}
                for i, x in enumerate(read_jsonl(LABELLED_FILE))]
    return out


def add_golden(session: Session, question: str, must: list[list[str]], actor: str,
               must_not: list[str] | None = None, note: str | None = None) -> GoldenQuestion:
    if not question.strip() or not must or not all(group and all(x.strip() for x in group) for group in must):
        raise ValueError("请填写问题和答案中必须出现的内容")
    g = GoldenQuestion(turns=json.dumps([question.strip()], ensure_ascii=False), must=json.dumps(must, ensure_ascii=False),
                       must_not=json.dumps(must_not or [], ensure_ascii=False), note=note, author=actor)
    session.add(g)
    session.flush()
    audit.record(session, actor, "golden.add", f"golden/{g.id}", {"question": question, "must": must})
    return g


# ---------- the child process: build, then compare ----------
def compare(live, candidate, checks: list[dict], progress=lambda i, n: None) -> dict:
    """Answer every check with both versions (Loaded objects of assistant.engine); which changed, which got worse."""
    from assistant.answer import Context
    from assistant.check import passes, reply_of

    def judge(loaded, c) -> tuple[str, bool]:
        if loaded is None:
            return "", False
        if "guide" in c:  # labelled retrieval set: the answer must be about the labelled guide
            a = loaded.answerer.run(c["turns"][0], Context())
            return a.text, a.matter == c["guide"]
        if "doc" in c:  # … or cite the labelled policy clause
            a = loaded.answerer.run(c["turns"][0], Context())
            return a.text, any(s.get("type") == "policy" and str(s.get("id", "")).startswith(f"policy-{c['doc']}-")
                               and (c.get("clause") is None or s.get("clause") == c["clause"]) for s in a.sources)
        text = reply_of(loaded.answerer, c["turns"])
        return text, passes(c, text)

    items = []
    for i, c in enumerate(checks):
        lt, lok = judge(live, c)
        ct, cok = judge(candidate, c)
        items.append({"id": c["id"], "source": c["source"], "question": " / ".join(c["turns"]),
                      "live": lt, "candidate": ct, "live_ok": lok, "candidate_ok": cok,
                      "changed": lt != ct, "worse": lok and not cok, "better": cok and not lok})
        progress(i + 1, len(checks))
    return {
        "live": live.version if live else None, "candidate": candidate.version, "items": items,
        "summary": {"total": len(items), "live_passed": sum(x["live_ok"] for x in items),
                    "candidate_passed": sum(x["candidate_ok"] for x in items),
                    "changed": sum(x["changed"] for x in items), "worse": sum(x["worse"] for x in items),
                    "better": sum(x["better"] for x in items)},
    }


def _child(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m assistant.publishing")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--from", dest="src", type=Path, required=True, help="exported knowledge folder")
    b.add_argument("--golden", type=Path, required=True)
    b.add_argument("--report", type=Path, required=True)
    args = ap.parse_args(argv)

    from assistant.engine import Engine, Loaded
    from embeddings.encoder import Encoder
    from knowledge.records import load_knowledge
    from settings import get_settings

    s = get_settings()
    knowledge = load_knowledge(args.src / "guides", args.src / "sources")
    if knowledge.problems:
        for p in knowledge.problems:
            print(f"错误: {p}", file=sys.stderr)
        return 2
    try:
        engine = Engine(s)  # the live version, exactly as the chat loads it
        live: Loaded | None = engine.current
        encoder = engine.encoder
    except FileNotFoundError:  # a fresh machine without a live index yet
        engine, live, encoder = None, None, Encoder(s.encoder_dir, threads=s.torch_threads)
    path = idx.build(knowledge, encoder, s.index_dir, keep=s.keep_index_versions, activate=False)
    print(f"[stage] built {path.name}", file=sys.stderr, flush=True)
    if engine is not None:
        candidate = engine._load(path.name)
    else:
        from assistant.answer import Answerer
        from embeddings.search import HybridSearcher

        searcher = HybridSearcher(idx.load(s.index_dir, path.name), encoder)
        candidate = Loaded(path.name, searcher, Answerer(searcher, s.min_confidence))
    report = compare(live, candidate, read_jsonl(args.golden),
                     lambda i, n: print(f"[check] {i}/{n}", file=sys.stderr, flush=True))
    tmp = args.report.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, args.report)
    return 0


# ---------- the job, in the app process ----------
@dataclass
class Job:
    build_id: int
    proc: subprocess.Popen
    workdir: Path
    phase: str = "export"  # export | index | check | done | failed | cancelled
    done: int = 0
    total: int = 0
    version: str | None = None
    lines: list[str] = field(default_factory=list)
    cancelled: bool = False


_JOBS: dict[int, Job] = {}
_LOCK = threading.Lock()
# A build runs under the app process (of several workers or replicas) that started it; its progress
# and a cancel request travel through the shared store so any of them can show or stop it.
_SHARED_TTL = 6 * 3600


def _store(settings: Settings | None = None):
    from assistant.store import shared_store
    from settings import get_settings

    return shared_store(settings or get_settings())


def _share(job: Job, settings: Settings) -> None:
    _store(settings).set(f"build:{job.build_id}:progress", json.dumps(
        {"phase": job.phase, "done": job.done, "total": job.total, "lines": job.lines[-5:], "version": job.version},
        ensure_ascii=False), _SHARED_TTL)


def running_build(session: Session) -> int | None:
    """The build under way in any worker (a stale row of a crashed app expires after six hours)."""
    since = utcnow() - dt.timedelta(seconds=_SHARED_TTL)
    build = session.scalars(select(IndexBuild).where(IndexBuild.status == "running",
                                                     IndexBuild.started_at > since)).first()
    return build.id if build else None


def start_build(db: sessionmaker, settings: Settings, actor: str, labelled: bool = False) -> int:
    """Export the current revisions, start the child, return the build id. One build at a time."""
    with _LOCK:
        if any(j.proc.poll() is None for j in _JOBS.values()):
            raise BuildRunning("已有候选索引正在构建，请等待完成或取消")
        with db.begin() as session:
            if running_build(session) is not None:  # another worker's build counts too
                raise BuildRunning("已有候选索引正在构建，请等待完成或取消")
            build = IndexBuild(status="running", revisions="{}", started_by=actor,
                               live_version=idx.current_version(settings.index_dir))
            session.add(build)
            session.flush()
            workdir = settings.index_dir.parent / "staging" / f"build-{build.id}"
            shutil.rmtree(workdir, ignore_errors=True)
            build.revisions = json.dumps(kb.export_folder(session, workdir / "knowledge"), ensure_ascii=False)
            checks = golden_questions(session, labelled)
            (workdir / "golden.jsonl").write_text(
                "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in checks), encoding="utf-8")
            audit.record(session, actor, "index.build", f"build/{build.id}", {"golden": len(checks)})
            build_id = build.id
        env = {**os.environ, "PYTHONPATH": str(ROOT), "BST_INDEX_DIR": str(settings.index_dir),
               "BST_ENCODER_DIR": str(settings.encoder_dir), "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "assistant.publishing", "build", "--from", str(workdir / "knowledge"),
             "--golden", str(workdir / "golden.jsonl"), "--report", str(workdir / "report.json")],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
        job = Job(build_id, proc, workdir, phase="index")
        _JOBS[build_id] = job
    threading.Thread(target=_follow, args=(job, db, settings), daemon=True, name=f"index-build-{build_id}").start()
    return build_id


def _follow(job: Job, db: sessionmaker, settings: Settings) -> None:
    for line in job.proc.stderr:
        line = line.rstrip()
        if m := _PROGRESS.match(line):
            job.phase, job.done, job.total = m.group(1), int(m.group(2)), int(m.group(3))
        elif m := _STARTED.match(line):  # the builder names the passage count before the first batch
            job.phase, job.done, job.total = "index", 0, int(m.group(1))
        elif line.startswith("[stage] built "):
            job.version = line.split()[-1]
            job.phase, job.done, job.total = "check", 0, 0
        # Progress and the builder's own errors; of a crash, the exception's last line (not the traceback).
        if line.startswith(("[", "错误")) or re.match(r"^\w+(\.\w+)*(Error|Exception): ", line):
            job.lines = (job.lines + [line])[-20:]
        _share(job, settings)
        if not job.cancelled and _store(settings).get(f"build:{job.build_id}:cancel"):
            job.cancelled = True  # requested through another worker
            os.killpg(job.proc.pid, signal.SIGINT)
    code = job.proc.wait()
    report_file = job.workdir / "report.json"
    report = report_file.read_text(encoding="utf-8") if report_file.exists() else None
    shutil.rmtree(job.workdir, ignore_errors=True)  # before the status says it is over
    with db.begin() as session:
        build = session.get(IndexBuild, job.build_id)
        build.finished_at = utcnow()
        build.version = job.version
        if job.cancelled:
            build.status, job.phase = "cancelled", "cancelled"
            if job.version and job.version != idx.current_version(settings.index_dir):
                shutil.rmtree(settings.index_dir / job.version, ignore_errors=True)  # never half-tested
                build.version = None
        elif code == 0 and report is not None:
            build.status, job.phase = "done", "done"
            build.report = report
        else:
            build.status, job.phase = "failed", "failed"
            build.error = "\n".join(job.lines[-10:]) or f"构建进程退出码 {code}"


def cancel(db: sessionmaker, build_id: int, actor: str) -> bool:
    job = _JOBS.get(build_id)
    if job is None:  # started by another worker: ask it through the shared store
        with db.begin() as session:
            build = session.get(IndexBuild, build_id)
            if build is None or build.status != "running":
                return False
            _store().set(f"build:{build_id}:cancel", "1", _SHARED_TTL)
            audit.record(session, actor, "index.cancel", f"build/{build_id}")
        return True
    if job.proc.poll() is not None:
        return False
    job.cancelled = True
    # SIGINT: the builder's cleanup runs (KeyboardInterrupt removes its temp directory).
    os.killpg(job.proc.pid, signal.SIGINT)
    try:
        job.proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(job.proc.pid, signal.SIGKILL)
    with db.begin() as session:
        audit.record(session, actor, "index.cancel", f"build/{build_id}")
    return True


def stop_all() -> None:
    """On app shutdown: interrupt running builds (they run in their own process group, so nothing else would)."""
    for job in list(_JOBS.values()):
        if job.proc.poll() is None:
            job.cancelled = True
            os.killpg(job.proc.pid, signal.SIGINT)


def status(session: Session, build_id: int) -> dict | None:
    build = session.get(IndexBuild, build_id)
    if build is None:
        return None
    out = {"id": build.id, "status": build.status, "version": build.version, "live_version": build.live_version,
           "error": build.error, "started_by": build.started_by, "published_at": build.published_at,
           "phase": build.status, "done": 0, "total": 0, "lines": []}
    if build.status == "running":
        shared = _store().get(f"build:{build_id}:progress")
        if shared:
            out.update(json.loads(shared))
    if build.report:
        out["summary"] = json.loads(build.report)["summary"]
    return out


def report(session: Session, build_id: int) -> dict | None:
    build = session.get(IndexBuild, build_id)
    return json.loads(build.report) if build and build.report else None


# ---------- publish and roll back ----------
def activate(session: Session, engine, settings: Settings, version: str, actor: str, action: str = "index.activate",
             detail: dict | None = None) -> str:
    """Make `version` live: load it beside the serving one and swap (no request fails), then move CURRENT."""
    if not (settings.index_dir / version / "manifest.json").exists():
        raise FileNotFoundError(version)
    previous = idx.current_version(settings.index_dir)
    if engine is not None:
        engine.reload(version)  # a broken version raises here and never becomes CURRENT
    idx.set_current(settings.index_dir, version)
    audit.record(session, actor, action, f"index/{version}", {"previous": previous, **(detail or {})})
    return version


def publish(session: Session, engine, settings: Settings, build_id: int, actor: str,
            override_reason: str | None = None) -> str:
    build = session.get(IndexBuild, build_id)
    if build is None or build.status != "done" or not build.version:
        raise LookupError("这个候选索引尚未构建完成，不能发布")
    worse = json.loads(build.report)["summary"]["worse"] if build.report else 0
    reason = (override_reason or "").strip()
    if worse and not reason:
        raise PublishRefused(f"候选索引有 {worse} 个黄金问题的回答变差，不能发布；如确需发布，请填写理由")
    activate(session, engine, settings, build.version, actor, "index.publish",
             {"build": build_id, "worse": worse, "override_reason": reason or None})
    build.published_by, build.published_at = actor, utcnow()
    build.override_reason = reason or None
    return build.version


def versions(session: Session, settings: Settings) -> list[dict]:
    """Built versions (newest first) with who built and published them, for the roll-back list."""
    builds = {b.version: b for b in session.scalars(select(IndexBuild).where(IndexBuild.version.is_not(None)))}
    cur = idx.current_version(settings.index_dir)
    out = []
    for m in idx.list_versions(settings.index_dir):
        b = builds.get(m["version"])
        out.append({**m, "current": m["version"] == cur, "build_id": b.id if b else None,
                    "started_by": b.started_by if b else None, "published_by": b.published_by if b else None,
                    "built": dt.datetime.fromisoformat(m["built_at"]) if m.get("built_at") else None})
    return out


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
