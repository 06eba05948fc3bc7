"""Retrieval benchmark on the labelled question set, against the CURRENT index.

    python -m bench.retrieval [--set bench/retrieval_set.jsonl] [--no-calibration] [--runtimes torch,onnx]

1. Ranking: every in-scope question is asked in bm25, dense and hybrid mode. A question is a hit
   at rank r when the r-th passage belongs to its target: the guide (doc_id == guide id), or the
   policy clause (doc_id == seed prefix and clause == clause label). Prints hit@1, hit@3, MRR
   (over the top 10) and the median query latency, side by side, overall and per target type.
2. Calibration: the answer pipeline (assistant.answer.Answerer) refuses ("fallback") below its
   confidence threshold. For a few thresholds it reports how often out-of-scope questions are
   refused (want high) and how often in-scope questions are wrongly refused (want low), and
   recommends the middle of the thresholds whose margin between the two is within one question
   of the best.
3. Query runtimes: the ranking is run with the float query encoder (torch) and the int8 ONNX one
   against the same index (float passage vectors) and printed side by side, with the hit@1 change.
   Calibration uses the runtime the server uses (settings.encoder_runtime).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SET = Path(__file__).resolve().parent / "retrieval_set.jsonl"
MODES = ("bm25", "dense", "hybrid")
DEPTH = 10
THRESHOLDS = (0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7)


def load_set(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def is_target(item: dict, passage) -> bool:
    if "guide" in item:
        return passage.doc_id == item["guide"]
    return passage.doc_id == item["doc"] and passage.clause == item["clause"]


def target_rank(item: dict, hits) -> int | None:
    return next((i for i, h in enumerate(hits, 1) if is_target(item, h.passage)), None)


def summarise(ranks: list[int | None], latencies: list[float]) -> dict:
    n = max(1, len(ranks))
    return {
        "hit@1": sum(r == 1 for r in ranks) / n,
        "hit@3": sum(r is not None and r <= 3 for r in ranks) / n,
        "mrr": sum(1 / r for r in ranks if r) / n,
        "ms": statistics.median(latencies) * 1000 if latencies else 0.0,
        "n": len(ranks),
    }


class CachedEncoder:
    """Wraps the encoder so that the calibration runs encode each question once."""

    def __init__(self, encoder):
        self.inner, self.cache = encoder, {}
        self.dim, self.name = encoder.dim, encoder.name

    def queries(self, texts):
        import numpy as np

        missing = [t for t in texts if t not in self.cache]
        if missing:
            for t, v in zip(missing, self.inner.queries(missing)):
                self.cache[t] = v
        return np.stack([self.cache[t] for t in texts])

    def passages(self, texts, progress=False):
        return self.inner.passages(texts, progress)


def answered_target(item: dict, answer) -> bool:
    """Did the pipeline answer from the labelled target (guide answer, or the clause quoted)?"""
    if "guide" in item:
        return answer.matter == item["guide"] or any(f'"matter": "{item["guide"]}"' in b.payload for b in answer.buttons)
    return any(s.get("type") == "policy" and s.get("id", "").startswith(f"policy-{item['doc']}-")
               and s.get("clause") == item["clause"] for s in answer.sources)


def ranking(searcher, items: list[dict]) -> dict[str, dict[str, dict]]:
    out: dict[str, dict[str, dict]] = {}
    for mode in MODES:
        per: dict[str, tuple[list, list]] = {"all": ([], []), "guide": ([], []), "policy": ([], [])}
        for item in items:
            t0 = time.perf_counter()
            hits = searcher.run(item["q"], k=DEPTH, mode=mode)
            dt = time.perf_counter() - t0
            r = target_rank(item, hits)
            for key in ("all", "guide" if "guide" in item else "policy"):
                per[key][0].append(r)
                per[key][1].append(dt)
        out[mode] = {k: summarise(*v) for k, v in per.items()}
    return out


def print_ranking(res: dict, n_items: int) -> None:
    print(f"Labelled retrieval set: {n_items} in-scope questions "
          f"({res['hybrid']['guide']['n']} guide targets, {res['hybrid']['policy']['n']} policy-clause targets)")
    print(f"{'metric':<18}" + "".join(f"{m:>10}" for m in MODES))
    for part in ("all", "guide", "policy"):
        for key in ("hit@1", "hit@3", "mrr"):
            label = key if part == "all" else f"{part} {key}"
            print(f"{label:<18}" + "".join(f"{res[m][part][key]:>10.3f}" for m in MODES))
    print(f"{'median ms':<18}" + "".join(f"{res[m]['all']['ms']:>10.1f}" for m in MODES))


def print_runtime_comparison(per_runtime: dict[str, dict], keys=("hit@1", "hit@3", "mrr", "ms"),
                             part: str | None = "all") -> None:
    """Rows: metric × mode; columns: one per query runtime, then the change from the first."""
    names = list(per_runtime)
    print(f"{'':<18}" + "".join(f"{n:>10}" for n in names) + (f"{'change':>10}" if len(names) > 1 else ""))
    for mode in MODES:
        if not all(mode in r for r in per_runtime.values()):
            continue
        for key in keys:
            vals = [(r[mode][part] if part else r[mode])[key] for r in per_runtime.values()]
            fmt = "{:>10.1f}" if key == "ms" else "{:>10.3f}"
            label = "median ms" if key == "ms" else key
            print(f"{mode + ' ' + label:<18}" + "".join(fmt.format(v) for v in vals)
                  + (f"{vals[-1] - vals[0]:>+10.3f}" if len(vals) > 1 and key != "ms" else ""))


def encoding_ms(encoders: dict, texts: list[str]) -> dict[str, tuple[float, float]]:
    """Median and p90 ms of encoding one query at a time (what a server does per question).
    The runtimes take turns question by question, so a busy machine slows them alike."""
    lat: dict[str, list[float]] = {n: [] for n in encoders}
    for t in texts:
        for n, enc in encoders.items():
            t0 = time.perf_counter()
            enc.queries([t])
            lat[n].append(time.perf_counter() - t0)
    out = {}
    for n, v in lat.items():
        v.sort()
        out[n] = (statistics.median(v) * 1000, v[int(0.9 * (len(v) - 1))] * 1000)
    return out


def runtime_label(encoder) -> str:
    return "int8-onnx" if encoder.runtime == "onnx" else "float"


def calibration(searcher, items: list[dict], oos: list[dict]) -> None:
    from assistant.answer import Answerer

    print()
    print(f"Refusal calibration ({len(oos)} out-of-scope, {len(items)} in-scope questions; Answerer decisions)")
    print(f"{'threshold':>9} {'oos refused':>12} {'in-scope refused':>17} {'in-scope on target':>19} {'margin':>7}")
    rows = []
    for t in THRESHOLDS:
        ans = Answerer(searcher, min_confidence=t)
        oos_ref = sum(ans.run(i["q"]).kind == "fallback" for i in oos) / max(1, len(oos))
        refused = on_target = 0
        for i in items:
            a = ans.run(i["q"])
            refused += a.kind == "fallback"
            on_target += a.kind != "fallback" and answered_target(i, a)
        in_ref, in_ok = refused / max(1, len(items)), on_target / max(1, len(items))
        rows.append((t, oos_ref, in_ref, in_ok))
        print(f"{t:>9.2f} {oos_ref:>12.1%} {in_ref:>17.1%} {in_ok:>19.1%} {oos_ref - in_ref:>7.3f}")
    # Margin = out-of-scope refused minus in-scope refused. With a few dozen out-of-scope questions
    # one question moves it by 1/len(oos), so every threshold within that of the best margin is as
    # good as the data can tell: recommend the middle of that plateau (lower middle when even,
    # i.e. answer rather than refuse when in doubt).
    top = max(r[1] - r[2] for r in rows)
    plateau = [r for r in rows if top - (r[1] - r[2]) <= 1 / max(1, len(oos)) + 1e-9]
    best = plateau[(len(plateau) - 1) // 2]
    print(f"thresholds within one question of the best margin: {', '.join(f'{r[0]:.2f}' for r in plateau)}")
    print(f"recommended min_confidence = {best[0]:.2f}: refuses {best[1]:.1%} of out-of-scope questions, "
          f"wrongly refuses {best[2]:.1%} of in-scope ones")

    # The raw score alone, without the pipeline's name matching and clarifying questions.
    conf_in = [ans.confidence(searcher.run(i["q"], k=8), i["q"]) for i in items]
    conf_oos = [ans.confidence(searcher.run(i["q"], k=8), i["q"]) for i in oos]
    print("confidence() alone (top hybrid hits): "
          + "  ".join(f"t={t:.2f}: oos<t {sum(c < t for c in conf_oos) / max(1, len(conf_oos)):.0%} "
                      f"in<t {sum(c < t for c in conf_in) / max(1, len(conf_in)):.0%}" for t in THRESHOLDS[1:6]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.retrieval", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", type=Path, default=SET)
    ap.add_argument("--no-calibration", action="store_true")
    ap.add_argument("--runtimes", default="torch,onnx", help="query runtimes to compare (torch = float model)")
    args = ap.parse_args(argv)

    from embeddings import index as idx
    from embeddings.encoder import Encoder
    from embeddings.search import HybridSearcher
    from settings import get_settings

    s = get_settings()
    version = idx.load(s.index_dir)
    data = load_set(args.set)
    items = [d for d in data if not d.get("oos")]
    oos = [d for d in data if d.get("oos")]
    print(f"index {version.version}: {len(version.passages)} passages, {len(version.guides)} guides")
    per_runtime, encoders, served = {}, {}, None
    for runtime in args.runtimes.split(","):
        encoder = Encoder(s.encoder_dir, threads=s.torch_threads, runtime=runtime)
        searcher = HybridSearcher(version, encoder)
        searcher.run("预约办事", k=3)  # warm up
        print(f"\nquery encoder: {runtime_label(encoder)}")
        per_runtime[runtime_label(encoder)] = res = ranking(searcher, items)
        print_ranking(res, len(items))
        encoders[runtime_label(encoder)] = encoder
        if runtime == s.encoder_runtime:
            served = encoder
    if len(per_runtime) > 1:
        print("\nQuery runtimes side by side (same index, float passage vectors)")
        print_runtime_comparison(per_runtime)
    print("query encoding alone, one question at a time (no cache), median / p90 ms: " + "  ".join(
        f"{n} {m[0]:.1f} / {m[1]:.1f}" for n, m in encoding_ms(encoders, [i["q"] for i in items]).items()))
    if not args.no_calibration:
        served = served or Encoder(s.encoder_dir, threads=s.torch_threads, runtime=s.encoder_runtime)
        print(f"\ncalibration with the served query encoder: {runtime_label(served)}")
        calibration(HybridSearcher(version, CachedEncoder(served)), items, oos)
    if len(per_runtime) > 1:
        hit = [r["hybrid"]["all"]["hit@1"] for r in per_runtime.values()]
        print("retrieval hybrid hit@1 " + " ".join(f"{n}={h:.3f}" for n, h in zip(per_runtime, hit)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
