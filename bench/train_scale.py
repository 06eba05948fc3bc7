"""What a Rasa retrain costs at city scale (issue 20 §4): NLU training with the 57 real guides and with
2,000 synthetic guides beside them, side by side, in one run.

    python -m bench.train_scale [--guides 2000] [--seed 20]

Guides an admin adds in the database never reach Rasa (they are found by the answer code's MatterLookup
over the published index), so this is the cost for a deployment that keeps its guides in the
repository's ``knowledge/`` and retrains for a new intent or wording. For each size: the generated
examples (``bot.training_data.build``: templated and per-guide examples from a seeded sample of at most
``MAX_EXAMPLE_MATTERS`` matters, every name in the lookup table and the jieba dictionary), written to a
scratch directory with the hand-written ``bot/data``; then ``rasa train nlu`` with ``config.yml`` (its
jieba dictionary pointed at the scratch copy). Prints examples, names, training wall time and the
training process's peak memory. The repository's ``var/rasa`` is not touched.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RASA = ROOT / ".venv/rasa/bin/rasa"
T0 = time.perf_counter()
_PEAK = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL); "
         "print(f'peak_kib={resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}'); sys.exit(r.returncode)")


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:7.1f}s] {msg}", flush=True)


def train(guides: list, scratch: Path) -> dict:
    from bot import training_data

    examples, names = training_data.build(guides=guides)
    training_data.write(examples, names, scratch)
    for f in (ROOT / "bot/data").glob("*.yml"):  # the hand-written data beside the generated (one --nlu dir)
        shutil.copy(f, scratch / "data" / f.name)
    config = (ROOT / "config.yml").read_text(encoding="utf-8").replace("var/rasa/jieba", str(scratch / "jieba"))
    (scratch / "config.yml").write_text(config, encoding="utf-8")
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "PYTHONPATH": str(ROOT)}
    t = time.perf_counter()
    # A fresh wrapper per run, so the peak (ru_maxrss of its children) is this training's, not the largest so far.
    proc = subprocess.run([sys.executable, "-c", _PEAK, str(RASA), "train", "nlu", "--config", str(scratch / "config.yml"),
                           "--nlu", str(scratch / "data"), "--out", str(scratch / "models"),
                           "--fixed-model-name", "scale"], cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"rasa train nlu failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    peak_kib = int(proc.stdout.strip().splitlines()[-1].removeprefix("peak_kib="))
    return {"guides": len(guides), "examples": sum(map(len, examples.values())), "names": len(names),
            "train_s": seconds, "peak_mb": peak_kib / 1024}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.train_scale", description=__doc__.split("\n\n")[0])
    ap.add_argument("--guides", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=20)
    args = ap.parse_args(argv)

    from bench.city_scale import synthetic_guides
    from knowledge.guides import Guide, load_guides

    real, problems = load_guides(ROOT / "knowledge/guides")
    assert not problems, problems
    synth = [Guide.model_validate(g) for g in synthetic_guides(args.guides, args.seed)]
    results = []
    for guides in (real, real + synth):
        scratch = Path(tempfile.mkdtemp(prefix="train-scale-"))
        try:
            log(f"{len(guides)} guides: generating the examples and training the NLU")
            results.append(train(guides, scratch))
            log(f"  {results[-1]}")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    a, b = results
    print(f"| measurement | {a['guides']} guides | {b['guides']} guides |")
    print("|---|---|---|")
    print(f"| generated NLU examples (+ hand-written bot/data) | {a['examples']} | {b['examples']} |")
    print(f"| names in the lookup table and jieba dictionary | {a['names']} | {b['names']} |")
    print(f"| `rasa train nlu` wall time | {a['train_s'] / 60:.1f} min | {b['train_s'] / 60:.1f} min |")
    print(f"| training process peak memory | {a['peak_mb']:.0f} MB | {b['peak_mb']:.0f} MB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
