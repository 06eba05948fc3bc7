"""MSGABench government Q&A: the retrieval engine measured on text nobody here wrote.

    python -m bench.msgabench [--workdir DIR] [--limit N] [--runtimes torch,onnx]

The 1,075 distinct answers of the citizen-service subset become plain-text documents in a
temporary folder with a generated documents.yaml, exactly what an admin hands in; they are
ingested by ``knowledge.policies.policy_passages`` (same cleaning and clause chunking as the real
policy documents), indexed by ``embeddings.index.build`` into a temporary index root, and the
1,089 questions are asked through ``HybridSearcher`` in bm25, dense and hybrid mode. A hit is the
row's own answer document; a document's rank is the rank of its best passage.

The data stays outside the repository (see /work/shared/external/msgabench/README.md): documents
and index live in a temporary directory, deleted afterwards unless --workdir names a directory to
keep (a later run with the same --workdir reuses the built index when the passages are unchanged).
Queries are encoded by each runtime named in --runtimes (torch = the float model, onnx = its int8
export) against the same index (float passage vectors), and printed side by side.
The LAST line printed is ``msgabench hybrid hit@1=… hit@5=… mrr=…`` (per runtime when several).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DATA = Path("/work/shared/external/msgabench/msgabench_gov_qa_citizen_service_subset.jsonl")
MODES = ("bm25", "dense", "hybrid")
DEPTH = 100  # passages asked for per question; a document beyond them counts as not found (MRR 0)


def load_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_documents(rows: list[dict], folder: Path) -> dict[str, str]:
    """One .txt per distinct answer plus documents.yaml; returns answer text → doc_id.

    Titles are neutral serial names: a document's title must not be derived from the questions
    (that would hand the answer to the retriever)."""
    folder.mkdir(parents=True, exist_ok=True)
    doc_of: dict[str, str] = {}
    docs = []
    for row in rows:
        if row["answer"] in doc_of:
            continue
        doc_id = f"m{len(doc_of) + 1:04d}"
        doc_of[row["answer"]] = doc_id
        name = f"{doc_id}_msgabench.txt"
        (folder / name).write_text(row["answer"] + "\n", encoding="utf-8")
        docs.append({
            "file": name, "title": f"政务问答{doc_id[1:]}", "short_title": f"政务问答{doc_id[1:]}",
            "issuer": row.get("dept") or "未注明", "date": "2023", "doc_number": None,
            "region": "厦门市", "layout": "clauses",
        })
    (folder / "documents.yaml").write_text(
        yaml.safe_dump({"documents": docs}, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return doc_of


def build_index(rows: list[dict], work: Path):
    """Documents → passages → index under work/index (reused when the passages are unchanged)."""
    from embeddings import index as idx
    from embeddings.encoder import Encoder
    from knowledge.policies import policy_passages
    from knowledge.records import KnowledgeBase
    from settings import get_settings

    docs_dir = work / "documents"
    if docs_dir.exists():
        shutil.rmtree(docs_dir)
    doc_of = write_documents(rows, docs_dir)
    passages = policy_passages(docs_dir)
    digest = hashlib.sha256("\n".join(p.model_dump_json() for p in passages).encode()).hexdigest()[:16]
    kb = KnowledgeBase(guides=[], passages=passages, checksums={"msgabench/passages.jsonl": digest})
    encoder = Encoder(get_settings().encoder_dir, threads=get_settings().torch_threads, runtime="torch")
    root = work / "index"
    t0 = time.perf_counter()
    if idx.is_stale(root, kb, encoder.name):
        idx.build(kb, encoder, root, keep=1, activate=True)
        built = f"built in {time.perf_counter() - t0:.0f}s"
    else:
        built = "reused"
    version = idx.load(root, encoder=encoder.signature)
    return version, encoder, doc_of, built


def doc_rank(hits, target: str) -> int | None:
    """1-based rank of target among the distinct documents of the hits (best passage per doc)."""
    seen: list[str] = []
    for h in hits:
        d = h.passage.doc_id
        if d not in seen:
            seen.append(d)
            if d == target:
                return len(seen)
    return None


def score(ranks: list[int | None], latencies: list[float]) -> dict:
    n = len(ranks)
    return {
        "hit@1": sum(r == 1 for r in ranks) / n,
        "hit@5": sum(r is not None and r <= 5 for r in ranks) / n,
        "mrr": sum(1 / r for r in ranks if r) / n,
        "ms": statistics.median(latencies) * 1000,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.msgabench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--workdir", type=Path, help="keep documents and index here (reused next time)")
    ap.add_argument("--limit", type=int, help="ask only the first N questions (quick check)")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--runtimes", default="torch,onnx", help="query runtimes to compare (torch = float model)")
    args = ap.parse_args(argv)

    from bench.retrieval import print_runtime_comparison, runtime_label
    from embeddings.encoder import Encoder
    from embeddings.search import HybridSearcher
    from settings import get_settings

    rows = load_rows(args.data)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="msgabench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        version, float_encoder, doc_of, built = build_index(rows, work)
        ndocs = len({p.doc_id for p in version.passages})
        print(f"corpus: {len(doc_of)} answers → {len(version.passages)} passages from {ndocs} documents "
              f"(index {built}); questions: {len(rows)}")
        questions = rows[: args.limit] if args.limit else rows
        modes = [m for m in args.modes.split(",") if m in MODES]
        per_runtime: dict[str, dict] = {}
        for runtime in args.runtimes.split(","):
            s = get_settings()
            encoder = float_encoder if runtime == "torch" else Encoder(
                s.encoder_dir, threads=s.torch_threads, runtime=runtime)
            searcher = HybridSearcher(version, encoder)
            searcher.run(questions[0]["question"], k=5)  # warm up (lazy tokenizer and model state)
            results = per_runtime[runtime_label(encoder)] = {}
            for mode in modes:
                if mode == "bm25" and len(per_runtime) > 1:  # no encoder involved: same for every runtime
                    results[mode] = next(iter(per_runtime.values()))[mode]
                    continue
                ranks, lat = [], []
                for row in questions:
                    t0 = time.perf_counter()
                    hits = searcher.run(row["question"], k=DEPTH, mode=mode)
                    lat.append(time.perf_counter() - t0)
                    ranks.append(doc_rank(hits, doc_of[row["answer"]]))
                results[mode] = score(ranks, lat)
                print(f"  {runtime_label(encoder)} {mode}: done", file=sys.stderr, flush=True)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)

    for name, results in per_runtime.items():
        print()
        print(f"MSGABench citizen-service subset: {len(questions)} questions, {len(doc_of)} answer documents; "
              f"query encoder {name}")
        print(f"{'metric':<12}" + "".join(f"{m:>10}" for m in modes))
        for key, fmt in (("hit@1", "{:>10.3f}"), ("hit@5", "{:>10.3f}"), ("mrr", "{:>10.3f}"), ("ms", "{:>10.1f}")):
            label = "median ms" if key == "ms" else key
            print(f"{label:<12}" + "".join(fmt.format(results[m][key]) for m in modes))
    if len(per_runtime) > 1:
        print("\nQuery runtimes side by side (same index, float passage vectors)")
        print_runtime_comparison(per_runtime, keys=("hit@1", "hit@5", "mrr", "ms"), part=None)
    for name, results in per_runtime.items():
        if "hybrid" in results:
            h = results["hybrid"]
            tag = f" ({name})" if len(per_runtime) > 1 else ""
            print(f"msgabench hybrid hit@1={h['hit@1']:.3f} hit@5={h['hit@5']:.3f} mrr={h['mrr']:.3f}{tag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
